"""`make bench`: throughput, latency, CPU and memory of launchrelay beside its stack's limits and a peer.

    python -m bench.run --mode quick    # a smoke run of every variant, a few seconds each
    python -m bench.run --mode full     # the figures in bench/results/

All variants run in one session against the same local broker with the same ~800-byte notification.
Results: bench/results/<mode>.json and <mode>.md (machine, broker version, commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic

from bench.measure import Measured, notice, output_timestamps, percentiles, preload, python
from launchrelay.broker.admin import ensure_topics, topic_specs
from launchrelay.broker.consume import partitions_of
from launchrelay.broker.local import KAFKA_VERSION, free_port, resolve_classpath
from launchrelay.broker.provide import provide_broker
from launchrelay.contract.messages import RecordRef
from launchrelay.relay.state import SeenMessage
from launchrelay.settings import default_cache_dir
from launchrelay.signing import Signer
from launchrelay.topics import Topics

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mode:
    name: str
    messages: int
    latency_seconds: float
    rates: tuple[int, ...]
    pending: int
    deadline_spread_s: float  # the deadlines of all pending deliveries are spread over this long
    lead_s: float  # time for the tracker to start and catch up before the first deadline
    measure_s: float  # lateness is measured for the deadlines in the first this-many seconds
    remembered: int  # message ids in the relay's state topic for the restart measurement


QUICK = Mode(
    "quick",
    messages=300,
    latency_seconds=2,
    rates=(100,),
    pending=1000,
    deadline_spread_s=30,
    lead_s=10,
    measure_s=3,
    remembered=1000,
)
FULL = Mode(
    "full",
    messages=20000,
    latency_seconds=15,
    rates=(100, 1000),
    pending=100_000,
    deadline_spread_s=3600,
    lead_s=90,
    measure_s=30,
    remembered=100_000,
)


class Bench:
    def __init__(self, mode: Mode, bootstrap: str, work: Path) -> None:
        self.mode, self.bootstrap, self.work = mode, bootstrap, work
        self.results: dict[str, Any] = {}
        self.signers = {p: Signer.generate(f"{p.lower()}-bench") for p in ("CN", "RU", "relay")}
        (work / "relay.pem").write_bytes(self.signers["relay"].to_pem())

    # ------------------------------------------------------------------ deployments
    def config(self, prefix: str, extra: str = "") -> Path:
        lines = ["[relay]", f'topic_prefix = "{prefix}"', 'presets = ["CN-RU-2009"]', "partitions = 3", ""]
        for p in ("CN", "RU"):
            s = self.signers[p]
            lines += [f"[parties.{p}]", f'name = "{p}"', f'keys = {{ {s.key_id} = "{s.public_b64}" }}', ""]
        path = self.work / f"{prefix}.toml"
        path.write_text("\n".join(lines) + extra)
        return path

    def env(self, prefix: str, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHRELAY_")}
        env.update(
            LAUNCHRELAY_BOOTSTRAP_SERVERS=self.bootstrap,
            LAUNCHRELAY_CONFIG=str(self.work / f"{prefix}.toml"),
            LAUNCHRELAY_RELAY_KEY=str(self.work / "relay.pem"),
            LAUNCHRELAY_RELAY_KEY_ID="relay-bench",
            LAUNCHRELAY_LOG_FORMAT="json",
            LAUNCHRELAY_LOG_LEVEL="INFO",  # production setting: one event per state change
            LAUNCHRELAY_LEDGER=str(self.work / f"{prefix}.sqlite"),
            **more,
        )
        return env

    async def fresh(self, extra: str = "") -> Topics:
        prefix = f"b{uuid.uuid4().hex[:8]}"
        self.config(prefix, extra)
        topics = Topics(prefix)
        await ensure_topics(self.bootstrap, topic_specs(topics, ["CN", "RU"], 3))
        return topics

    # ------------------------------------------------------------------ 1. the broker's limit
    def broker_tools(self) -> dict[str, Any]:
        # Kafka's own perf tools (org.apache.kafka:kafka-tools), resolved once beside the broker's jars.
        libs = resolve_classpath(default_cache_dir() / f"kafka-tools-{KAFKA_VERSION}", "kafka-tools")
        java = shutil.which("java") or "java"
        topic = f"perf-{uuid.uuid4().hex[:6]}"
        asyncio.run(ensure_topics(self.bootstrap, [NewTopic(topic, 3, 1)]))
        n = self.mode.messages * 5
        prod = subprocess.run(
            [java, "-Xmx512m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance",
             "--topic", topic, "--num-records", str(n), "--record-size", "800", "--throughput", "-1",
             "--producer-props", f"bootstrap.servers={self.bootstrap}", "acks=all"],
            capture_output=True, text=True, timeout=600, check=True,
        ).stdout  # fmt: skip
        last = [line for line in prod.splitlines() if "records sent" in line][-1]
        m = re.search(
            r"([\d.]+) records/sec.*?([\d.]+) ms avg latency.*?(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th", last
        )
        cons = subprocess.run(
            [java, "-Xmx512m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ConsumerPerformance",
             "--bootstrap-server", self.bootstrap, "--topic", topic, "--messages", str(n), "--timeout", "60000"],
            capture_output=True, text=True, timeout=600, check=True,
        ).stdout  # fmt: skip
        row = [line for line in cons.splitlines() if line and line[0].isdigit()][-1].split(",")
        assert m is not None
        return {
            "producer_msgs_per_s": float(m.group(1)),
            "producer_latency_ms": {"avg": float(m.group(2)), "p50": int(m.group(3)), "p95": int(m.group(4)),
                                    "p99": int(m.group(5))},
            "consumer_msgs_per_s": float(row[5]),
            "records": n,
        }  # fmt: skip

    # ------------------------------------------------------------------ 2-4. pipelines
    def _pipeline(self, name: str, topics: Topics) -> list[Measured]:
        logs = self.work / "logs"
        src, sink = topics.outbound("CN"), topics.inbound("RU")
        group = f"{topics.prefix}.{name}"
        if name == "bare":
            return [Measured(name, python("-m", "bench.bare_pipe", "--bootstrap", self.bootstrap, "--source", src,
                                          "--sink", sink, "--group", group), self.env(topics.prefix), logs)]  # fmt: skip
        if name == "bare_txn":
            return [Measured(name, python("-m", "bench.bare_pipe", "--bootstrap", self.bootstrap, "--source", src,
                                          "--sink", sink, "--group", group, "--transactions"),
                             self.env(topics.prefix), logs)]  # fmt: skip
        if name == "peer":
            return [Measured(name, python("-m", "bench.peer_faststream", "--bootstrap", self.bootstrap, "--source",
                                          src, "--sink", sink, "--group", group), self.env(topics.prefix), logs)]  # fmt: skip
        count = 2 if name == "relay_x2" else 1
        return [
            Measured(f"{name}-{i}", python("-m", "launchrelay", "relay"),
                     self.env(topics.prefix, LAUNCHRELAY_RELAY_ID=f"{name}-{i}"), logs)
            for i in range(count)
        ]  # fmt: skip

    @staticmethod
    def _ready_text(name: str) -> str:
        return "relay.started" if name.startswith("relay") else "ready"

    async def throughput(self, name: str) -> dict[str, Any]:
        """Sustained rate: N notices preloaded, then the pipeline drains them; rate from output timestamps."""
        topics = await self.fresh()
        n = self.mode.messages
        items = [notice(self.signers["CN"], i) for i in range(n)]
        await preload(self.bootstrap, topics.outbound("CN"), items)
        procs = [p.start() for p in self._pipeline(name, topics)]
        try:
            for p in procs:
                await asyncio.to_thread(p.wait_log, self._ready_text(name))
            started = time.monotonic()
            stamps = await output_timestamps(self.bootstrap, topics.inbound("RU"), n, timeout_s=max(60, n / 20))
            elapsed = time.monotonic() - started
            cpu = sum(p.cpu_seconds() for p in procs)
            peak = max(p.peak_rss_mb() for p in procs)
        finally:
            for p in procs:
                p.stop()
        span_s = max(1e-3, (stamps[-1] - stamps[0]) / 1000)
        return {
            "messages": n,
            "msgs_per_s": round((n - 1) / span_s, 1),
            "cpu_s_per_1000": round(cpu / n * 1000, 3),
            "peak_rss_mb": round(peak, 1),
            "wall_s": round(elapsed, 2),
            "processes": len(procs),
            "record_bytes": len(items[0][1]),
        }

    async def latency(self, name: str, rate: int) -> dict[str, Any]:
        """End-to-end latency, publish -> visible to a read_committed counterpart, at a fixed offered load."""
        topics = await self.fresh()
        procs = [p.start() for p in self._pipeline(name, topics)]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    isolation_level="read_committed", enable_auto_commit=False)  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
        sent: dict[bytes, float] = {}
        lat: list[float] = []
        try:
            for p in procs:
                await asyncio.to_thread(p.wait_log, self._ready_text(name))
            await consumer.start()
            await producer.start()
            tps = await partitions_of(consumer, topics.inbound("RU"))
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)

            async def receive() -> None:
                while True:
                    batch = await consumer.getmany(timeout_ms=100)
                    now = time.perf_counter()
                    for rs in batch.values():
                        for r in rs:
                            mid = json.loads(r.value)["message_id"].encode()
                            if mid in sent:
                                lat.append((now - sent.pop(mid)) * 1000)

            # warm up: the first message pays for group join and first transactions
            key, value, headers = notice(self.signers["CN"], 0)
            sent[json.loads(value)["message_id"].encode()] = time.perf_counter()
            reader = asyncio.create_task(receive())
            await producer.send_and_wait(topics.outbound("CN"), value, key=key, headers=headers)
            async with asyncio.timeout(120):
                while not lat:
                    await asyncio.sleep(0.05)
            lat.clear()
            total = int(rate * self.mode.latency_seconds)
            items = [notice(self.signers["CN"], i) for i in range(total)]
            start = time.perf_counter()
            for i, (key, value, headers) in enumerate(items):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[json.loads(value)["message_id"].encode()] = time.perf_counter()
                await producer.send(topics.outbound("CN"), value, key=key, headers=headers)
            with suppress(TimeoutError):
                async with asyncio.timeout(60):
                    while len(lat) < total:
                        await asyncio.sleep(0.1)
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader
            achieved = total / max(1e-6, time.perf_counter() - start)
        finally:
            await producer.stop()
            await consumer.stop()
            for p in procs:
                p.stop()
        return {"offered_per_s": rate, "delivered": len(lat), "sent": total,
                "latency_ms": {k: round(v, 1) for k, v in percentiles(lat).items()},
                "achieved_per_s_incl_drain": round(achieved, 1)}  # fmt: skip

    # ------------------------------------------------------------------ 5. the tracker
    async def tracker(self) -> dict[str, Any]:
        """Timeout lateness with P pending deliveries, memory per pending, cold start and restart times."""
        extra = '\n[agreements.CN-RU-2009]\nack_deadline = "PT1H"\nretransmit = { every = "P1D", max_attempts = 0 }\n'
        topics = await self.fresh(extra)
        p = self.mode.pending
        logs = self.work / "logs"
        env = self.env(topics.prefix, LAUNCHRELAY_TRACKER_TICK_S="0.2")
        # baseline memory: an empty tracker
        empty = Measured("tracker-empty", python("-m", "launchrelay", "tracker"), env | {
            "LAUNCHRELAY_LEDGER": str(self.work / "empty.sqlite")}, logs).start()  # fmt: skip
        await asyncio.to_thread(empty.wait_log, "tracker.started")
        await asyncio.sleep(1)
        base_rss = empty.rss_mb()
        empty.stop()
        # P forwarded events whose deadlines fall over a window that opens after the tracker has caught up
        lead = self.mode.lead_s
        t0 = datetime.now(UTC)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=20)
        await producer.start()
        deadlines: dict[str, float] = {}
        futs = []
        for i in range(p):
            mid = f"cn-p-{i}"
            deadline_s = lead + self.mode.deadline_spread_s * i / p
            deadlines[mid] = t0.timestamp() + deadline_s
            event = {"event_id": f"e{i}", "kind": "forwarded", "at": t0.isoformat(), "message_id": mid,
                     "message_type": "planned_launch", "agreement": "CN-RU-2009", "sender": "CN",
                     "recipients": ["RU"], "launch_key": f"CN-P-{i % 1000}", "ack_deadline_s": deadline_s,
                     "source": {"topic": topics.outbound("CN"), "partition": 0, "offset": i}}  # fmt: skip
            futs.append(
                await producer.send(topics.status, json.dumps(event).encode(), key=event["launch_key"].encode())
            )
        await asyncio.gather(*futs)
        await producer.stop()
        loaded_at = time.monotonic()
        tracker = Measured("tracker", python("-m", "launchrelay", "tracker"), env, logs).start()
        cold_start = None
        try:
            await asyncio.to_thread(tracker.wait_log, "tracker.started", 600)
            cold_start = time.monotonic() - loaded_at
            rss_pending = tracker.rss_mb()
            # the first measure_s seconds of deadlines fire while the rest stay pending
            measured = {m for m, at in deadlines.items() if at <= t0.timestamp() + lead + self.mode.measure_s}
            remaining = t0.timestamp() + lead + self.mode.measure_s - time.time()
            await asyncio.sleep(max(0.0, remaining) + 2)
            lateness: list[float] = []
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                        isolation_level="read_committed", enable_auto_commit=False)  # fmt: skip
            await consumer.start()
            try:
                tps = await partitions_of(consumer, topics.status)
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                async with asyncio.timeout(600):
                    while len(lateness) < len(measured):
                        batch = await consumer.getmany(timeout_ms=1000, max_records=20000)
                        for rs in batch.values():
                            for r in rs:
                                e = json.loads(r.value)
                                if e["kind"] == "acknowledgement_overdue" and e["message_id"] in measured:
                                    at = datetime.fromisoformat(e["at"]).timestamp()
                                    lateness.append((at - deadlines[e["message_id"]]) * 1000)
            finally:
                await consumer.stop()
            peak = tracker.peak_rss_mb()
            cpu = tracker.cpu_seconds()
        finally:
            tracker.stop()
        # restart with everything in the ledger
        restart = Measured("tracker-restart", python("-m", "launchrelay", "tracker"), env, logs)
        began = time.monotonic()
        restart.start()
        try:
            await asyncio.to_thread(restart.wait_log, "tracker.started", 600)
            restart_s = time.monotonic() - began
        finally:
            restart.stop()
        return {
            "pending": p,
            "alerts_measured": len(measured),
            "deadline_spread_s": self.mode.deadline_spread_s,
            "timeout_lateness_ms": {k: round(v, 1) for k, v in percentiles(lateness).items()},
            "cold_start_with_pending_s": round(cold_start or 0, 2),
            "restart_s": round(restart_s, 2),
            "rss_mb_empty": round(base_rss, 1),
            "rss_mb_with_pending": round(rss_pending, 1),
            "kb_per_pending": round((rss_pending - base_rss) * 1024 / p, 3),
            "peak_rss_mb": round(peak, 1),
            "cpu_s": round(cpu, 1),
        }

    # ------------------------------------------------------------------ 6. what the relay remembers
    async def relay_state(self) -> dict[str, Any]:
        """Restart time and memory of a relay whose state topic holds N message ids (they are never forgotten)."""
        n = self.mode.remembered
        logs = self.work / "logs"
        empty_topics = await self.fresh()
        empty = Measured("relay-empty", python("-m", "launchrelay", "relay"), self.env(empty_topics.prefix), logs)
        empty.start()
        try:
            await asyncio.to_thread(empty.wait_log, "relay.started")
            await asyncio.sleep(1)
            base_rss = empty.rss_mb()
        finally:
            empty.stop()
        topics = await self.fresh()
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=20)
        await producer.start()
        futs = []
        for i in range(n):
            seen = SeenMessage(sender="CN", message_id=f"cn-s-{i:07d}", digest=f"{i:064x}",
                               message_type="planned_launch", agreement="CN-RU-2009", launch_key=f"CN-S-{i}",
                               recipients=("RU",), outcome="forwarded",
                               src=RecordRef(topic=topics.outbound("CN"), partition=i % 3, offset=i // 3))  # fmt: skip
            futs.append(await producer.send(topics.relay_state, seen.to_bytes(), key=seen.key.encode()))
        await asyncio.gather(*futs)
        await producer.stop()
        relay = Measured("relay-remembering", python("-m", "launchrelay", "relay"), self.env(topics.prefix), logs)
        began = time.monotonic()
        relay.start()
        try:
            await asyncio.to_thread(relay.wait_log, "relay.started", 600)
            restart_s = time.monotonic() - began
            await asyncio.sleep(1)
            rss = relay.rss_mb()
            peak = relay.peak_rss_mb()
        finally:
            relay.stop()
        return {
            "remembered": n,
            "restart_s": round(restart_s, 2),
            "rss_mb_empty": round(base_rss, 1),
            "rss_mb_remembering": round(rss, 1),
            "kb_per_id": round((rss - base_rss) * 1024 / n, 3),
            "peak_rss_mb": round(peak, 1),
        }


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"# Benchmark results ({r['mode']})", "",
             f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; Python {m['python']}; Kafka {r['kafka']} "
             f"(local, one node, 512 MiB heap); commit {r['commit']}; {r['date']}.", "",
             "## Throughput (sustained, ~800-byte notifications, drain of a preloaded backlog)", "",
             "| variant | msgs/s | CPU s / 1000 msgs | peak RSS MiB |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    b = r["broker"]
    lines.append(f"| Kafka producer-perf (acks=all) | {b['producer_msgs_per_s']:.0f} | – | – |")
    lines.append(f"| Kafka consumer-perf | {b['consumer_msgs_per_s']:.0f} | – | – |")
    labels = {"bare": "aiokafka consume→produce, no transactions", "bare_txn": "aiokafka consume→produce, transactional",
              "relay": "launchrelay relay (1 process)", "relay_x2": "launchrelay relay (2 processes)",
              "peer": "FastStream validate-and-forward (no txn, no signatures)"}  # fmt: skip
    for k, label in labels.items():
        t = r["throughput"].get(k)
        if t:
            lines.append(f"| {label} | {t['msgs_per_s']:.0f} | {t['cpu_s_per_1000']:.2f} | {t['peak_rss_mb']:.0f} |")
    ratios = r["ratios"]
    lines += ["", f"Ratios: relay ÷ bare transactional pipe = **{ratios['relay_vs_bare_txn']:.2f}**; "
              f"relay ÷ peer = **{ratios['relay_vs_peer']:.2f}**; two relays ÷ one = **{ratios['relay_x2_vs_relay']:.2f}**.",
              "", "## Latency, publish → visible to a read_committed counterpart", "",
              "| variant | offered/s | delivered | p50 ms | p95 ms | p99 ms |", "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for row in r["latency"]:
        lat = row["latency_ms"]
        lines.append(f"| {labels.get(row['variant'], row['variant'])} | {row['offered_per_s']} | "
                     f"{row['delivered']}/{row['sent']} | {lat['p50']} | {lat['p95']} | {lat['p99']} |")  # fmt: skip
    t = r["tracker"]
    lines += ["", f"## Tracker with {t['pending']:,} pending acknowledgements", "",
              f"- {t.get('alerts_measured', t['pending']):,} deadlines fell due in the first {r.get('measure_s', '')} s "
              f"while the rest stayed pending (deadlines spread over {t.get('deadline_spread_s', '')} s)",
              f"- timeout alert lateness after the deadline: p50 {t['timeout_lateness_ms']['p50']} ms, "
              f"p99 {t['timeout_lateness_ms']['p99']} ms, max {t['timeout_lateness_ms'].get('max')} ms",
              f"- memory: {t['rss_mb_empty']} MiB empty, {t['rss_mb_with_pending']} MiB with all pending "
              f"({t['kb_per_pending']} KiB per pending); peak {t['peak_rss_mb']} MiB",
              f"- start applying {t['pending']:,} events: {t['cold_start_with_pending_s']} s; "
              f"restart with them in the ledger: {t['restart_s']} s", ""]  # fmt: skip
    rs = r.get("relay_state")
    if rs:
        lines += [f"## Relay remembering {rs['remembered']:,} message ids (the state topic is never trimmed)", "",
                  f"- restart, reading them all back before taking partitions: {rs['restart_s']} s",
                  f"- memory: {rs['rss_mb_empty']} MiB with none, {rs['rss_mb_remembering']} MiB with them "
                  f"({rs['kb_per_id']} KiB per id); peak {rs['peak_rss_mb']} MiB", ""]  # fmt: skip
    commits = r.get("commits") or {}
    if len(set(commits.values())) > 1:
        lines += ["Sections measured at different commits: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(commits.items())) + ".", ""]  # fmt: skip
    return "\n".join(lines)


async def run(mode: Mode, out: Path, only: set[str] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lr-bench-"))
    env_bootstrap = os.environ.get("LAUNCHRELAY_BOOTSTRAP_SERVERS")
    results: dict[str, Any] = {
        "mode": mode.name,
        "measure_s": mode.measure_s,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "kafka": KAFKA_VERSION,
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
    }
    with provide_broker(bootstrap=env_bootstrap, data_dir=work / "kafka", port=free_port(),
                        controller_port=free_port()) as bootstrap:  # fmt: skip
        bench = Bench(mode, bootstrap, work)
        sections = {"broker", "throughput", "latency", "tracker", "relay_state"}
        wanted = only or sections
        previous = out / f"{mode.name}.json"
        results["commits"] = {k: results["commit"] for k in wanted}
        if only and previous.exists():  # keep the sections not rerun, with the commit each was measured at
            before = json.loads(previous.read_text())
            results |= {k: v for k, v in before.items() if k in sections - only}
            kept = before.get("commits") or {k: before.get("commit", "unknown") for k in sections}
            results["commits"] |= {
                k: kept.get(k, before.get("commit", "unknown")) for k in sections - only if k in before
            }
        if "broker" in wanted:
            print(f"[bench:{mode.name}] broker tools", flush=True)
            results["broker"] = await asyncio.to_thread(bench.broker_tools)
        if "throughput" in wanted:
            results["throughput"] = {}
            for name in ("bare", "bare_txn", "relay", "relay_x2", "peer"):
                print(f"[bench:{mode.name}] throughput {name}", flush=True)
                results["throughput"][name] = await bench.throughput(name)
                print(f"    {results['throughput'][name]}", flush=True)
        if "latency" in wanted:
            results["latency"] = []
            for name in ("bare_txn", "relay", "peer"):
                for rate in mode.rates:
                    print(f"[bench:{mode.name}] latency {name} at {rate}/s", flush=True)
                    row = {"variant": name, **(await bench.latency(name, rate))}
                    results["latency"].append(row)
                    print(f"    {row}", flush=True)
        if "tracker" in wanted:
            print(f"[bench:{mode.name}] tracker with {mode.pending} pending", flush=True)
            results["tracker"] = await bench.tracker()
            print(f"    {results['tracker']}", flush=True)
        if "relay_state" in wanted:
            print(f"[bench:{mode.name}] relay remembering {mode.remembered} message ids", flush=True)
            results["relay_state"] = await bench.relay_state()
            print(f"    {results['relay_state']}", flush=True)
    t = results["throughput"]
    results["ratios"] = {
        "relay_vs_bare_txn": round(t["relay"]["msgs_per_s"] / t["bare_txn"]["msgs_per_s"], 3),
        "relay_vs_peer": round(t["relay"]["msgs_per_s"] / t["peer"]["msgs_per_s"], 3),
        "relay_x2_vs_relay": round(t["relay_x2"]["msgs_per_s"] / t["relay"]["msgs_per_s"], 3),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{mode.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{mode.name}.md").write_text(markdown(results))
    shutil.rmtree(work, ignore_errors=True)
    print(markdown(results))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["quick", "full"], default="quick")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--only",
        action="append",
        choices=["broker", "throughput", "latency", "tracker", "relay_state"],
        help="rerun these sections; the others are kept from the last results file",
    )
    args = parser.parse_args()
    asyncio.run(run(QUICK if args.mode == "quick" else FULL, args.out, set(args.only) if args.only else None))


if __name__ == "__main__":
    main()
