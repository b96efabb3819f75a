"""Exactly once when brokers fail: a three-node KRaft cluster (replication 3, min.insync.replicas 2) loses the
broker that leads the most of the relay's partitions, gets it back, then loses another; and, separately, loses
the controller quorum's leader. Real nodes, SIGKILLed, while relay and tracker work."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from exactly_once import Source, assert_exactly_once, mixed_inputs, outcomes, publish
from harness import Deploy, RelayProcess, make_deploy, read_topic, source_of
from launchrelay.provision.cluster import LocalCluster
from launchrelay.provision.local import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.timeout(900)]

#: deadlines fall due while brokers are down and coming back
DEADLINE_S = 15
SHORT = f"""
[agreements.CN-RU-2009]
ack_deadline = "PT{DEADLINE_S}S"
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("cluster"), [(free_port(), free_port()) for _ in range(3)], heap_mb=384)
    c.start()
    try:
        yield c
    finally:
        c.stop()


async def leaders(bootstrap: str, topics: list[str]) -> dict[int, int]:
    """How many partitions of ``topics`` each node leads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        counts: Counter[int] = Counter()
        for desc in await admin.describe_topics(topics):
            for p in desc["partitions"]:
                counts[p["leader"]] += 1
        return dict(counts)
    finally:
        await admin.close()


async def replicas_of(bootstrap: str, topic: str) -> tuple[int, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
        (config,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        entries = {e[0]: e[1] for e in config.resources[0][4]}
        return len(desc["partitions"][0]["replicas"]), entries["min.insync.replicas"]
    finally:
        await admin.close()


def relevant(deploy: Deploy) -> list[str]:
    t = deploy.topics
    return [t.outbound("CN"), t.outbound("RU"), t.inbound("CN"), t.inbound("RU"), t.status, t.relay_state,
            "__transaction_state", "__consumer_offsets"]  # fmt: skip


async def forward_times(deploy: Deploy) -> list[int]:
    """LogAppend/Create times (ms) of every forward, in order."""
    out = []
    for party in ("CN", "RU"):
        for r in await read_topic(deploy.bootstrap, deploy.topics.inbound(party), lambda rs: True, timeout_s=120):
            if source_of(r) is not None:
                out.append(r.timestamp)
    return sorted(out)


def recovery_s(times: list[int], killed_at: float, next_kill: float | None = None) -> float:
    """The longest pause between forwards in the 30 s after a kill (and before the next one): how long the relay
    stood still."""
    start, end = int(killed_at * 1000), int(min(killed_at + 30, next_kill or killed_at + 30) * 1000)
    inside = [t for t in times if start <= t <= end]
    stamps = [start, *inside]
    return round(max(b - a for a, b in itertools.pairwise(stamps)) / 1000, 2) if inside else 30.0


async def order_kept(deploy: Deploy) -> None:
    """Per launch (record key), forwards appear in each in topic in the order their sources were written."""
    for party in ("CN", "RU"):
        by_key: dict[tuple[int, bytes], list[int]] = defaultdict(list)
        for r in await read_topic(deploy.bootstrap, deploy.topics.inbound(party), lambda rs: True, timeout_s=120):
            src = source_of(r)
            if src is not None and r.key is not None:
                by_key[(r.partition, r.key)].append(src[2])
        unordered = {k: v for k, v in by_key.items() if v != sorted(v)}
        assert not unordered, f"{len(unordered)} launches forwarded out of order, e.g. {next(iter(unordered.items()))}"


async def overdue_once(deploy: Deploy) -> int:
    """Each forwarded message that expects an acknowledgement ends acknowledged or alerted once; never twice."""
    status = [json.loads(r.value) for r in await read_topic(deploy.bootstrap, deploy.topics.status, lambda rs: True)]
    alerts = Counter(e["message_id"] for e in status if e["kind"] == "acknowledgement_overdue")
    twice = {k: v for k, v in alerts.items() if v > 1}
    assert not twice, f"{len(twice)} deadlines alerted more than once"
    receipts = Counter()
    for party in ("CN", "RU"):
        for r in await read_topic(deploy.bootstrap, deploy.topics.inbound(party), lambda rs: True):
            body = json.loads(r.value) if source_of(r) is None else {}
            if body.get("outcome") == "acknowledgement_overdue":
                receipts[body["refers_to"]] += 1
    assert receipts == alerts, "one overdue receipt to the sender per overdue event"
    return len(alerts)


async def run_with_faults(cluster: LocalCluster, tmp_path: Path, messages: int, faults: Any,
                          record_property: Any) -> None:  # fmt: skip
    rng = random.Random(2009)
    deploy = await make_deploy(cluster.bootstrap, tmp_path, replication=None, extra_config=SHORT)
    assert await replicas_of(cluster.bootstrap, deploy.topics.outbound("CN")) == (3, "2")
    inputs = mixed_inputs(deploy, messages, rng)
    sent: dict[Source, str | None] = {}
    relay = RelayProcess(deploy, "relay-cluster").start()
    tracker = RelayProcess(deploy, "tracker-cluster", command="tracker").start()
    try:
        await relay.wait("relay.partitions_assigned", 90)
        await tracker.wait("tracker.started", 90)
        publishing = asyncio.create_task(publish(deploy, inputs, rate_per_s=250, sent=sent))
        kills = await faults(deploy)
        await publishing
        forwards, deads, kind, receipts, events = await outcomes(deploy, len(sent))
        assert_exactly_once(sent, forwards, deads, kind, receipts, events)
        await order_kept(deploy)
        times = await forward_times(deploy)
        # every deadline falls due (the last forward's 15 s after it), and 5 s more: an alert fired twice shows
        await asyncio.sleep(max(0.0, times[-1] / 1000 + DEADLINE_S + 5 - time.time()))
        alerts = await overdue_once(deploy)
        assert alerts > 0, "deadlines fell due during the faults"
        for i, (node, at) in enumerate(kills):
            pause = recovery_s(times, at, kills[i + 1][1] if i + 1 < len(kills) else None)
            record_property(f"recovery_s_node_{node}", pause)
            print(f"node {node} killed: forwards paused at most {pause} s")
    finally:
        relay.ensure_stopped()
        tracker.ensure_stopped()
        for m in cluster.members:
            if not m.running:
                m.launch()
                m.wait_ready()


async def test_the_leading_broker_then_another_die(cluster: LocalCluster, tmp_path: Path, record_property: Any) -> None:
    """5,000 mixed messages; the node leading most of the relay's partitions (out, in, status, state, transaction
    state) is SIGKILLed and brought back, then a second node: nothing lost, nothing doubled, order per launch
    kept, every overdue deadline alerted exactly once."""

    async def faults(deploy: Deploy) -> list[tuple[int, float]]:
        kills = []
        for pause in (4.0, 6.0):
            await asyncio.sleep(pause)
            counts = await leaders(cluster.bootstrap, relevant(deploy))
            candidates = {n: c for n, c in counts.items() if all(n != k for k, _ in kills)}
            node = max(candidates, key=lambda n: candidates[n])
            kills.append((node, time.time()))
            await asyncio.to_thread(cluster.kill, node)
            await asyncio.sleep(6.0)
            await asyncio.to_thread(cluster.restart, node)
        return kills

    await run_with_faults(cluster, tmp_path, 5000, faults, record_property)


async def test_the_controller_quorum_leader_dies(cluster: LocalCluster, tmp_path: Path, record_property: Any) -> None:
    """The quorum's leader is SIGKILLed: the other two elect a new one and the relay goes on, exactly once."""

    async def faults(deploy: Deploy) -> list[tuple[int, float]]:
        await asyncio.sleep(3.0)
        leader = await asyncio.to_thread(cluster.quorum_leader)
        at = time.time()
        await asyncio.to_thread(cluster.kill, leader)
        await asyncio.sleep(4.0)
        new_leader = await asyncio.to_thread(cluster.quorum_leader)  # asked of the nodes still up
        assert new_leader != leader and cluster.node(new_leader).running
        await asyncio.to_thread(cluster.restart, leader)
        return [(leader, at)]

    await run_with_faults(cluster, tmp_path, 1500, faults, record_property)
