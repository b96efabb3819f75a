"""Failover: `python -m bench.failover [--kills 3] [--rate 100]`.

A three-node local cluster (the project's failover settings: broker.session.timeout.ms 2000, heartbeats every
250 ms, controller quorum fetch timeout 1000 ms; see launchrelay.provision.local.FAILOVER) with a relay and a
steady publisher. Alternately, the node leading most of the relay's partitions (out, in, status, state and the
internal topics) and the controller quorum's leader are SIGKILLed, each brought back once the relay moves again.
The pause after a kill is the longest gap between forwards (their broker append times) from the kill to the
next kill or 30 s. Writes bench/results/failover.{json,md} with the median and worst per kind of kill and the
machine's load at each.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench.measure import CpuWaited, Measured, notice, python, share_range, write_results
from bench.run import FULL, Bench
from launchrelay.kafka.consume import partitions_of
from launchrelay.provision.cluster import LocalCluster
from launchrelay.provision.local import free_port

ROOT = Path(__file__).resolve().parent.parent


async def leader_of_most(bootstrap: str, topics: list[str]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        counts: Counter[int] = Counter()
        for desc in await admin.describe_topics(topics):
            for p in desc["partitions"]:
                counts[p["leader"]] += 1
        return counts.most_common(1)[0][0]
    finally:
        await admin.close()


async def forward_times(bootstrap: str, topic: str) -> list[int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    out: list[int] = []
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        quiet = 0
        while quiet < 6:  # 3 s without a record: all read
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            out += [r.timestamp for rs in batch.values() for r in rs]
            quiet = 0 if batch else quiet + 1
    finally:
        await consumer.stop()
    return sorted(out)


def pause_s(times: list[int], start: float, end: float) -> float:
    stamps = [int(start * 1000), *[t for t in times if start * 1000 <= t <= end * 1000]]
    if len(stamps) == 1:
        return round(end - start, 2)
    return round(max(b - a for a, b in itertools.pairwise(stamps)) / 1000, 2)


async def failover(kills: int, rate: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lr-failover-"))
    events: list[dict[str, Any]] = []
    try:
        cluster = LocalCluster(work / "cluster", [(free_port(), free_port()) for _ in range(3)], heap_mb=384)
        cluster.start()
        try:
            bench = Bench(FULL, cluster.bootstrap, work)
            topics = await bench.fresh()  # replication by the cluster's size: three copies, two in sync
            env = bench.env(topics.prefix)
            relay = Measured("relay-failover", python("-m", "launchrelay", "relay"), env, work / "logs").start()
            producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True)
            try:
                await asyncio.to_thread(relay.wait_log, "relay.partitions_assigned")
                await producer.start()
                stop = asyncio.Event()

                async def publish() -> None:
                    i = 0
                    while not stop.is_set():
                        key, value, headers = notice(bench.signers["CN"], i)
                        await producer.send(topics.outbound("CN"), value, key=key, headers=headers)
                        i += 1
                        await asyncio.sleep(1 / rate)

                publishing = asyncio.create_task(publish())
                await asyncio.sleep(5)
                watched = [topics.outbound("CN"), topics.inbound("RU"), topics.inbound("CN"), topics.status,
                           topics.relay_state, "__transaction_state", "__consumer_offsets"]  # fmt: skip
                for k in range(2 * kills):
                    kind = "broker" if k % 2 == 0 else "controller"
                    node = (await leader_of_most(cluster.bootstrap, watched) if kind == "broker"
                            else await asyncio.to_thread(cluster.quorum_leader))  # fmt: skip
                    at, waited = time.time(), CpuWaited()
                    await asyncio.to_thread(cluster.kill, node)
                    events.append({"kind": kind, "node": node, "at": at, "load_1m": round(os.getloadavg()[0], 2)})
                    print(f"  killed node {node} ({kind})", flush=True)
                    await asyncio.sleep(12)
                    await asyncio.to_thread(cluster.restart, node)
                    await asyncio.sleep(8)  # back in every ISR before the next kill
                    events[-1]["cpu_waited"] = waited.share()  # from the kill to here
                stop.set()
                await publishing
                await producer.flush()
                await asyncio.sleep(3)
                times = await forward_times(cluster.bootstrap, topics.inbound("RU"))
            finally:
                await producer.stop()
                relay.stop()
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for i, e in enumerate(events):
        end = events[i + 1]["at"] if i + 1 < len(events) else e["at"] + 30
        e["pause_s"] = pause_s(times, e["at"], min(end, e["at"] + 30))
    summary = {}
    for kind in ("broker", "controller"):
        pauses = [e["pause_s"] for e in events if e["kind"] == kind]
        summary[kind] = {"median_s": statistics.median(pauses), "worst_s": max(pauses), "kills": len(pauses)}
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "rate_per_s": rate, "kills": events,
            "summary": summary}  # fmt: skip


def markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    lines = [
        "# Failover: forwarding pause after a node is SIGKILLed (three-node cluster)",
        "",
        f"{doc['date']}. A relay forwarding {doc['rate_per_s']} notices a second; each kill is followed 12 s later "
        "by the node's restart. Pause: the longest gap between forwards from the kill on. Target: 5 s. CPU waited: the "
        "share of the 20 s from the kill to the next in which some task waited for a CPU (pressure stall "
        "information).",
        "",
        "| kill | kills | median pause s | worst s |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {k} | {v['kills']} | {v['median_s']} | {v['worst_s']} |" for k, v in s.items()],
        "",
        "| # | kind | node | pause s | load (1 min) | CPU waited |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
        *[
            f"| {i + 1} | {e['kind']} | {e['node']} | {e['pause_s']} | {e['load_1m']} | {share_range([e.get('cpu_waited')])} |"
            for i, e in enumerate(doc["kills"])
        ],
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=3, help="kills of each kind")
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    doc = asyncio.run(failover(args.kills, args.rate))
    write_results(ROOT / "bench" / "results", "failover", doc, markdown(doc))
    print(json.dumps(doc["summary"]))


if __name__ == "__main__":
    main()
