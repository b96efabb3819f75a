"""The publisher of proofs: each party's view of the decision log, on its own topic (``launchrelay audit publish``).

It reads the log topic (read_committed, every partition, one instance per deployment) and, for each signed head,
writes what :class:`launchrelay.audit.views.Views` makes due to each party's ``PREFIX.<PARTY>.proofs`` topic:
the head, the consistency proof from the log's previous head, and the inclusion proof of each of the party's own
leaves. Exactly once: the statements and the offsets read to commit in one transaction (transactional id
:data:`launchrelay.access.PROOFS_ID`, which fences an older instance still running). On a start it reads the log
from its beginning, making the statements again only to build its trees, and sends those of the records past
the committed offsets: the same log gives the same statements, so none is lost or sent twice. Reading the whole
log on a start costs time in proportion to it (docs/audit-log.md says so; a checkpoint is for later).

A broker lost (restarted, unreachable, a request timed out), or not there yet when the publisher starts, is such
a start: the publisher says so, waits, and starts again in the same process, so it needs no supervisor to outlast
an outage; only a newer instance fencing it (the same transactional id) or a refusal of its rights ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    ProducerFenced,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from launchrelay.access import PROOFS_ID
from launchrelay.agreements.config import Deployment
from launchrelay.audit.log import KIND_HEADER, log_record
from launchrelay.audit.views import LogBroken, Views
from launchrelay.errors import ConfigError, KafkaRequestFailed
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.kafka.clients import running
from launchrelay.kafka.consume import partitions_of
from launchrelay.kafka.produce import transact
from launchrelay.relay.metrics import ProofMetrics
from launchrelay.runtime.health import OpsServer
from launchrelay.runtime.process import stop_on_signals
from launchrelay.settings import Settings
from launchrelay.topics import OutRecord

log = structlog.get_logger("launchrelay.proofs")

#: what the broker answers a principal without the rights it needs (the access plan's grants)
_REFUSED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError, ClusterAuthorizationFailedError,
            TransactionalIdAuthorizationFailed)  # fmt: skip


class ProofPublisher:
    def __init__(self, bootstrap: str, deployment: Deployment, client_options: dict[str, Any] | None = None) -> None:
        self.bootstrap, self.topics = bootstrap, deployment.topics
        self.options = client_options or {}
        self._parties = deployment.parties
        self.views = self._new_views()
        r, topics = deployment.relay, deployment.topics
        # the topics the relay's user may make (a linked centre's proofs, mirrored here, are made with the others)
        wanted = {topics.decision_log, *(topics.proofs(p) for p in deployment.parties)}
        specs = topic_specs(topics, list(deployment.parties), r.partitions, r.replication_factor, r.max_message_bytes,
                            decision_log=True)  # fmt: skip
        self._topic_specs = [s for s in specs if s.name in wanted]
        self.id = PROOFS_ID.format(prefix=self.topics.prefix)
        #: statements sent, by party (for the log line at the end)
        self.sent: dict[str, int] = {}
        self.metrics = ProofMetrics()
        self.started = False
        #: why the last run ended, while the publisher waits to start again (None: running, or never lost)
        self.lost: str | None = None
        for party in self.views.parties:
            self.metrics.statements.labels(party)

    def _new_views(self) -> Views:
        topics = self.topics
        # every party, a linked one too: its centre's mirror copies its view there (two-centre mode)
        return Views(self._parties, owner=lambda log: topics.owner_of(log.rsplit(":", 1)[0]))

    def statements(self, record: ConsumerRecord) -> list[tuple[str, OutRecord]]:
        """What one record of the log topic makes due, as records of the parties' proofs topics (with the party)."""
        found = log_record(record.key, record.value, record.headers)
        if found is None:
            return []
        name = found.log
        try:
            if found.kind == "leaf":
                self.views.leaf(name, found.index, found.value)
                return []
            try:
                head = json.loads(found.value)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser
                head = None
            if not isinstance(head, dict):
                raise self.views.mark_broken(name, "a head that is not a JSON object")
            due = self.views.head(head)
        except LogBroken as exc:
            self.metrics.broken.set(len(self.views.broken))
            log.error(  # noqa: TRY400 - the reason is in `error`; a traceback would add nothing
                "proofs.log_broken",
                log=name,
                offset=record.offset,
                partition=record.partition,
                error=str(exc),
                hint="nothing more is proved for this log; its leaves stay on the log topic",
            )
            return []
        self._proved(name, head)
        return [
            (party, OutRecord(self.topics.proofs(party), name.encode(), json.dumps(s, separators=(",", ":")).encode(),
                              [(KIND_HEADER, s["type"].encode())]))
            for party, s in due
        ]  # fmt: skip

    def _proved(self, log: str, head: dict[str, Any]) -> None:
        self.metrics.checked.inc()
        self.metrics.head_size.labels(log).set(head["size"])
        with contextlib.suppress(TypeError, ValueError):
            self.metrics.head_time.labels(log).set(datetime.fromisoformat(str(head.get("at"))).timestamp())

    def ready(self) -> tuple[bool, str]:
        if self.lost is not None:
            return False, f"starting again after losing the broker: {self.lost}"
        if not self.started:
            return False, "reading the log topic's partitions"
        broken = sorted(self.views.broken)
        return (True, "proving heads") if not broken else (True, f"proving heads; broken logs: {', '.join(broken)}")

    async def serve(self, stop: asyncio.Event, *, backoff_s: float = 1.0, max_backoff_s: float = 10.0) -> int:
        """:meth:`run` until ``stop``, started again (trees rebuilt from the log's beginning) after the broker is
        lost (or not there yet), waiting longer each time up to ``max_backoff_s``; 1 when fenced by a newer
        instance, else 0. A refusal of its rights is raised: starting again would not mend it."""
        while not stop.is_set():
            try:
                await self.run(stop)
            except ProducerFenced:
                log.error(  # noqa: TRY400 - a newer instance, not a fault: no traceback
                    "proofs.fenced", hint="another publisher of proofs started with the same transactional id; "
                    "this one stops",
                )  # fmt: skip
                return 1
            except (KafkaError, KafkaRequestFailed, OSError, TimeoutError) as exc:
                if isinstance(exc, _REFUSED) or isinstance(exc.__cause__, _REFUSED):
                    raise  # its rights, not the broker's health: starting again would not change them
                self.started, self.lost = False, repr(exc)[:300]
                self.metrics.restarts.inc()
                log.warning("proofs.restarting", error=self.lost, retry_in_s=backoff_s,
                            hint="the log is read again from its start; nothing committed is sent again")  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff_s)
                backoff_s = min(backoff_s * 2, max_backoff_s)
            else:
                return 0
        return 0

    async def run(self, stop: asyncio.Event) -> None:
        """Make the log and proofs topics when missing, read the log topic from its beginning and prove each head
        as it comes, until ``stop``; a Kafka error ends it (see :meth:`serve`)."""
        await ensure_topics(self.bootstrap, self._topic_specs, client_options=self.options)  # made when missing
        self.views = self._new_views()  # a start rebuilds every tree from the log's beginning
        self.metrics.broken.set(0)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.id, enable_auto_commit=False,
                                    isolation_level="read_committed", **self.options)  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=self.id, acks="all",
                                    enable_idempotence=True, **self.options)  # fmt: skip
        async with running(consumer), running(producer):
            try:
                tps = await partitions_of(consumer, self.topics.decision_log)
                consumer.assign(tps)
                committed = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
                await consumer.seek_to_beginning(*tps)
                log.info("proofs.started", log_topic=self.topics.decision_log, parties=self.views.parties,
                         committed={str(tp.partition): o for tp, o in committed.items()})  # fmt: skip
                self.started, self.lost = True, None
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=300, max_records=2000)
                    await self._publish(producer, batch, committed)
            finally:
                log.info("proofs.stopped", sent=self.sent)

    async def _publish(
        self, producer: AIOKafkaProducer, batch: dict[TopicPartition, list[ConsumerRecord]],
        committed: dict[TopicPartition, int],
    ) -> None:  # fmt: skip
        out: list[tuple[str, OutRecord]] = []
        offsets: dict[TopicPartition, int] = {}
        for tp in sorted(batch):
            for record in batch[tp]:
                made = self.statements(record)
                if record.offset >= committed[tp]:  # below: sent before this start, made again only to build trees
                    out += made
                    offsets[tp] = record.offset + 1
        if not offsets:
            return
        await transact(producer, (r for _, r in out), offsets, self.id)
        committed.update(offsets)
        for party, _ in out:
            self.sent[party] = self.sent.get(party, 0) + 1
            self.metrics.statements.labels(party).inc()
        if out:
            log.info(
                "proofs.published", statements=len(out), offsets={f"{tp.partition}": o for tp, o in offsets.items()}
            )


async def run_publisher(deployment: Deployment, settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT (``launchrelay audit publish``): the proofs topics made when missing, then
    every head on the log topic proved to the parties, as it comes."""
    if not deployment.relay.decision_log:
        raise ConfigError("no decision log is kept: set [relay] decision_log = true (the relay writes it)")
    bootstrap, options = settings.bootstrap(), settings.kafka_options()
    stop = asyncio.Event()
    stop_on_signals(stop.set)
    publisher = ProofPublisher(bootstrap, deployment, options)
    ops = None
    if settings.metrics_port is not None:
        ops = OpsServer(settings.metrics_host, settings.metrics_port, publisher.metrics.registry, publisher.ready,
                        publisher.metrics.ready)  # fmt: skip
        await ops.start()
    try:
        return await publisher.serve(stop)
    finally:
        if ops is not None:
            await ops.stop()
