"""Topic administration: create the convention's topics, idempotently."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)

from launchrelay.errors import KafkaRequestFailed, kafka_errors
from launchrelay.topics import Topics, size_limits

log = structlog.get_logger(__name__)

#: a spec's replication factor when the cluster's size decides it (resolved by :func:`ensure_topics`; not
#: -1, which aiokafka's NewTopic reads as "not given")
AUTO = 0


def replication_for(brokers: int) -> int:
    """Three copies where the cluster has three brokers or more; every broker's otherwise."""
    return max(1, min(3, brokers))


def min_insync_for(replication: int) -> int:
    """With three copies a write needs two (one broker may fail, none is lost); with fewer, one."""
    return 2 if replication >= 3 else 1


def topic_specs(
    topics: Topics,
    parties: list[str],
    partitions: int = 3,
    replication: int | None = None,
    max_message_bytes: int = 1 << 20,
    *,
    decision_log: bool = False,
) -> list[NewTopic]:
    """Topics with the settings the relay relies on (and the decision log's, when it is kept).

    Out topics stamp records with the broker's append time: that is the
    "received at" the agreement rules use, identical on every replay. The sizes
    form a chain (see :func:`size_limits`): an out topic takes records up to
    twice the relay's limit, so an oversize record reaches the relay and its
    sender gets an ``OVERSIZE`` receipt rather than a producer error; the topics
    the relay copies original bytes into take a little more again, so a copy
    never fails for size and blocks its partition.
    """
    limits = size_limits(max_message_bytes)
    if replication is None:
        replication = AUTO
    # with three copies a write needs two (see :func:`min_insync_for`); AUTO gets it when resolved
    isr = {"min.insync.replicas": str(min_insync_for(replication))} if replication >= 3 else {}
    roomy = {"max.message.bytes": str(limits.copies), **isr}
    specs = [
        NewTopic(topics.status, partitions, replication, topic_configs=dict(isr)),
        NewTopic(topics.deadletter, partitions, replication, topic_configs=roomy),
        NewTopic(
            topics.relay_state,
            partitions,
            replication,
            topic_configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000", **isr},
        ),
    ]
    stamped = {"message.timestamp.type": "LogAppendTime", "max.message.bytes": str(limits.copies), **isr}
    for party in sorted(topics.linked):
        # what this centre sends that party's centre, and what that centre sends here as the mirror copies it:
        # stamped with the broker's time, so each side judges a notice by when it reached its own cluster
        specs.append(NewTopic(topics.link_out(party), partitions, replication, topic_configs=dict(stamped)))
        specs.append(NewTopic(topics.link_in(party), partitions, replication, topic_configs=dict(stamped)))
    if decision_log:
        specs.append(NewTopic(topics.decision_log, partitions, replication, topic_configs=dict(isr)))
        for party in sorted(parties):  # a linked party's view is here for its centre's mirror to copy
            specs.append(NewTopic(topics.proofs(party), partitions, replication, topic_configs=dict(isr)))
        for party in sorted(topics.linked):  # and what that centre proves to this centre's party, copied here
            specs.append(NewTopic(topics.proofs_in(party), partitions, replication, topic_configs=dict(isr)))
    for party in sorted(p for p in parties if topics.is_local(p)):
        specs.append(
            NewTopic(
                topics.outbound(party),
                partitions,
                replication,
                topic_configs={
                    "message.timestamp.type": "LogAppendTime",
                    "max.message.bytes": str(limits.out_topic),
                    **isr,
                },
            )
        )
        specs.append(NewTopic(topics.inbound(party), partitions, replication, topic_configs=roomy))
    return specs


def _resolved(spec: NewTopic, brokers: int) -> NewTopic:
    """``spec`` with an :data:`AUTO` replication factor (and its min.insync.replicas) set for ``brokers``."""
    if spec.replication_factor != AUTO:
        return spec
    replication = replication_for(brokers)
    configs = dict(spec.topic_configs or {})
    if replication >= 3:
        configs["min.insync.replicas"] = str(min_insync_for(replication))
    return NewTopic(spec.name, spec.num_partitions, replication, topic_configs=configs)


async def ensure_topics(
    bootstrap: str, specs: list[NewTopic], timeout_s: float = 30.0, client_options: dict[str, Any] | None = None
) -> list[str]:
    """Create each topic that does not exist yet; returns the names created."""
    created: list[str] = []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **(client_options or {})
    )
    try:
        with kafka_errors(f"cannot create topics on {bootstrap}"):
            await asyncio.wait_for(admin.start(), timeout_s)
            existing = set(await admin.list_topics())
            wanted = [s for s in specs if s.name not in existing]
            if any(s.replication_factor == AUTO for s in wanted):
                brokers = len((await admin.describe_cluster())["brokers"])
                wanted = [_resolved(s, brokers) for s in wanted]
            for spec in wanted:
                try:
                    await admin.create_topics([spec])
                    created.append(spec.name)
                except TopicAlreadyExistsError:
                    pass
                except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError) as exc:
                    raise KafkaRequestFailed(
                        f"topic {spec.name} does not exist and this principal may not create it: "
                        "create the topics as an administrator (`launchrelay topics create`, or KafkaTopic resources)"
                    ) from exc
            if created:
                await _await_visible(admin, created, timeout_s)
    finally:
        await admin.close()
    if created:
        log.info("topics.created", topics=created)
    return created


async def _await_visible(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Wait until the broker's metadata lists every partition of ``names`` with a leader.

    CreateTopics returns once the controller has accepted the topics; brokers
    learn of them a moment later. A client that asks for the partitions in that
    gap is told the topic does not exist, so creation waits the gap out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = set(names)
    while True:
        for desc in await admin.describe_topics(sorted(pending)):
            if (
                desc.get("error_code", 1) == 0
                and desc.get("partitions")
                and all(p.get("leader", -1) >= 0 for p in desc["partitions"])
            ):
                pending.discard(desc["topic"])
        if not pending:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics not visible after {timeout_s}s: {sorted(pending)}")
        await asyncio.sleep(0.1)


async def cluster_id(bootstrap: str, client_options: dict[str, Any] | None = None, timeout_s: float = 60.0) -> str:
    """The Kafka cluster's id: random when its storage was formatted, so no two clusters share one.

    The relay and the tracker fold it into every id they mint (see :mod:`launchrelay.relay.outputs`), so two
    deployments with the same topic names and offsets never issue the same receipt id. aiokafka reads it in
    every metadata answer (v2 and later) but keeps it to itself; this asks for it directly."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.metadata import MetadataRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap, **(client_options or {}))
    try:
        with kafka_errors(f"cannot read the cluster id of {bootstrap}"):
            async with asyncio.timeout(timeout_s):
                await client.bootstrap()
                node = client.get_random_node()
                answer = await client.send(node, MetadataRequest([]))
    finally:
        await client.close()
    found = getattr(answer, "cluster_id", None)
    if not found:
        raise KafkaRequestFailed(f"the brokers at {bootstrap} did not say their cluster id")
    return str(found)
