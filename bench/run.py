"""`make bench`: throughput, latency, CPU and memory of launchrelay beside its stack's limits and a peer.

    python -m bench.run --mode quick    # a smoke run of every variant, a few seconds each
    python -m bench.run --mode full     # the figures in bench/results/

All variants run in one session against the same local broker with the same ~800-byte notification,
in rounds: each round runs every variant once, in an order rotated from the last, so a noisy spell on
this shared machine falls on different variants; each figure is the median of the rounds with its range,
and the 1-minute load average is recorded beside every run. Every input partition is warmed (a notice
through each, end to end) before anything is measured, and CPU is counted from then on.

Anchors: the tuned bare transactional pipe (`bare_pipe --transactions --tuned`) is the latency floor;
the same-work pipe (`same_work_pipe`: verify, validate, and the relay's own four records built by its
`plan()`, one transaction per fetch) is the throughput limit of this design in Python.
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
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic

from bench.measure import CpuWaited, Measured, notice, output_timestamps, overdue_lateness, percentiles, preload, python
from bench.workloads import PARTY_SIDES, boundary, in_pk_notice
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.kafka.consume import FETCH_WAIT_MS, partitions_of
from launchrelay.kafka.produce import partition_for
from launchrelay.provision.local import KAFKA_VERSION, ensure_tools, free_port
from launchrelay.provision.provide import provide_broker
from launchrelay.relay.state import SeenMessage, Src
from launchrelay.signing import Signer
from launchrelay.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
PARTITIONS = 3
Item = tuple[bytes, bytes, list[tuple[str, bytes]]]


@dataclass(frozen=True)
class Mode:
    name: str
    messages: int
    latency_seconds: float
    latency_warm_s: float  # sent at the offered rate before the measured window, not measured
    rounds: int
    pending: int
    deadline_spread_s: float  # the deadlines of all pending deliveries are spread over this long
    lead_s: float  # time for the tracker to start and catch up before the first deadline
    measure_s: float  # lateness is measured for the deadlines in the first this-many seconds
    remembered: int  # message ids in the relay's state topic for the restart measurement


QUICK = Mode("quick", messages=300, latency_seconds=1.5, latency_warm_s=0.3, rounds=1, pending=1000,
             deadline_spread_s=30, lead_s=6, measure_s=2, remembered=1000)  # fmt: skip
FULL = Mode("full", messages=20000, latency_seconds=15, latency_warm_s=3, rounds=3, pending=100_000,
            deadline_spread_s=3600, lead_s=90, measure_s=30, remembered=1_000_000)  # fmt: skip

#: throughput variants, in the order of the first round
THROUGHPUT = ("bare", "bare_txn", "floor", "same_work", "relay", "relay_x2", "relay_inpk", "peer")
#: latency variants and offered rates
LATENCY = (("floor", 100), ("relay", 100), ("relay_inpk", 100), ("peer", 100), ("floor", 1000), ("relay", 1000),
           ("relay_x2", 1000))  # fmt: skip
#: variants that are the relay with settings of their own (the [relay] lines added to its config)
RELAY_LINES: dict[str, tuple[str, ...]] = {"relay_log": ("decision_log = true",)}
LABELS = {
    "bare": "aiokafka consume→produce, no transactions",
    "bare_txn": "aiokafka consume→produce, transactional (defaults)",
    "floor": "tuned bare transactional pipe (latency floor)",
    "same_work": "same-work pipe: verify, validate, the relay's 4 records (plan), 1 txn/fetch",
    "relay": "launchrelay relay, CN-RU (1 process)",
    "relay_x2": "launchrelay relay, CN-RU (2 processes)",
    "relay_inpk": "launchrelay relay, IN-PK, ~700-point boundary (1 process)",
    "relay_log": "launchrelay relay, CN-RU, keeping the decision log (1 process)",
    "peer": "FastStream validate-and-forward (no txn, no signatures)",
}


def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    """Median and range of one figure over the rounds."""
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits)}  # fmt: skip


def rotated(items: tuple[Any, ...], by: int) -> list[Any]:
    k = by % len(items)
    return [*items[k:], *items[:k]]


def load_1m() -> float:
    return round(os.getloadavg()[0], 2)


class Bench:
    def __init__(self, mode: Mode, bootstrap: str, work: Path) -> None:
        self.mode, self.bootstrap, self.work = mode, bootstrap, work
        self.results: dict[str, Any] = {}
        self.signers = {p: Signer.generate(f"{p.lower()}-bench") for p in ("CN", "RU", "IN", "PK", "relay")}
        (work / "relay.pem").write_bytes(self.signers["relay"].to_pem())
        (work / "boundary.geojson").write_text(json.dumps(boundary()))

    # ------------------------------------------------------------------ deployments
    def config(self, prefix: str, extra: str = "", relay_lines: tuple[str, ...] = ()) -> Path:
        relay = self.signers["relay"]
        lines = ["[relay]", f'topic_prefix = "{prefix}"', 'presets = ["CN-RU-2009", "IN-PK-2005"]',
                 f"partitions = {PARTITIONS}", f'keys = {{ relay-bench = "{relay.public_b64}" }}', *relay_lines, "",
                 "[agreements.IN-PK-2005.geometry]", 'boundary_file = "boundary.geojson"',
                 "party_sides = { " + ", ".join(f'{k} = "{v}"' for k, v in PARTY_SIDES.items()) + " }", ""]  # fmt: skip
        for p in ("CN", "RU", "IN", "PK"):
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
            LAUNCHRELAY_LOG_LEVEL="INFO",  # production setting
            LAUNCHRELAY_LEDGER=str(self.work / f"{prefix}.sqlite"),
            **more,
        )
        return env

    async def fresh(self, extra: str = "", relay_lines: tuple[str, ...] = ()) -> Topics:
        prefix = f"b{uuid.uuid4().hex[:8]}"
        self.config(prefix, extra, relay_lines)
        topics = Topics(prefix)
        await ensure_topics(self.bootstrap, topic_specs(topics, ["CN", "RU", "IN", "PK"], PARTITIONS))
        return topics

    # ------------------------------------------------------------------ 1. the broker's limit
    def broker_tools(self) -> dict[str, Any]:
        libs = ensure_tools()  # Kafka's own perf tools (org.apache.kafka:kafka-tools), resolved once
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
    @staticmethod
    def parties(name: str) -> tuple[str, str]:
        return ("IN", "PK") if name == "relay_inpk" else ("CN", "RU")

    def item(self, name: str, i: int) -> Item:
        if self.parties(name)[0] == "IN":
            return in_pk_notice(self.signers["IN"], i)
        return notice(self.signers["CN"], i)

    def _pipeline(self, name: str, topics: Topics) -> list[Measured]:
        logs = self.work / "logs"
        sender, recipient = self.parties(name)
        src, sink = topics.outbound(sender), topics.inbound(recipient)
        group = f"{topics.prefix}.{name}"
        env = self.env(topics.prefix)
        pipe = ["--bootstrap", self.bootstrap, "--source", src, "--sink", sink, "--group", group]
        commands = {
            "bare": ["-m", "bench.bare_pipe", *pipe],
            "bare_txn": ["-m", "bench.bare_pipe", *pipe, "--transactions"],
            "floor": ["-m", "bench.bare_pipe", *pipe, "--transactions", "--tuned"],
            "peer": ["-m", "bench.peer_faststream", *pipe],
            "same_work": ["-m", "bench.same_work_pipe", "--bootstrap", self.bootstrap, "--group", group,
                          "--relay-key", str(self.work / "relay.pem")],
        }  # fmt: skip
        if name in commands:
            return [Measured(name, python(*commands[name]), env, logs)]
        count = 2 if name == "relay_x2" else 1
        return [Measured(f"{name}-{i}", python("-m", "launchrelay", "relay"),
                         self.env(topics.prefix, LAUNCHRELAY_RELAY_ID=f"{name}-{i}"), logs)
                for i in range(count)]  # fmt: skip

    async def _started(self, name: str, procs: list[Measured]) -> None:
        relay = name.startswith("relay")
        for p in procs:
            await asyncio.to_thread(p.wait_log, "relay.started" if relay else "ready")
        if relay:  # every process holds partitions before the warm-up, so no rebalance follows it
            for p in procs:
                await asyncio.to_thread(p.wait_log, "relay.partitions_assigned")

    async def warm(self, name: str, topics: Topics) -> dict[TopicPartition, int]:
        """A notice through every input partition, end to end; the sink's end offsets afterwards."""
        sender, recipient = self.parties(name)
        items: dict[int, Item] = {}
        i = 0
        while len(items) < PARTITIONS:
            item = self.item(name, 10_000_000 + i)
            items.setdefault(partition_for(item[0], PARTITIONS), item)
            i += 1
        await preload(self.bootstrap, topics.outbound(sender), list(items.values()))
        sink = topics.inbound(recipient)
        await output_timestamps(self.bootstrap, sink, PARTITIONS, timeout_s=120)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, isolation_level="read_committed")
        await consumer.start()
        try:
            tps = await partitions_of(consumer, sink)
            return dict(await consumer.end_offsets(tps))
        finally:
            await consumer.stop()

    async def throughput(self, name: str) -> dict[str, Any]:
        """Sustained rate: warm, freeze the pipeline, preload N notices, thaw it; rate from output timestamps.

        The pipeline is stopped (SIGSTOP) while the backlog is written, so writing it takes no CPU from
        the drain; CPU per notice counts only the drain."""
        topics = await self.fresh(relay_lines=RELAY_LINES.get(name, ()))
        n = self.mode.messages
        sender, recipient = self.parties(name)
        items = [self.item(name, i) for i in range(n)]
        procs = [p.start() for p in self._pipeline(name, topics)]
        try:
            await self._started(name, procs)
            ends = await self.warm(name, topics)
            load_before = load_1m()
            for p in procs:
                p.freeze()
            try:
                await preload(self.bootstrap, topics.outbound(sender), items)
            finally:
                for p in procs:
                    p.thaw()
            cpu0 = sum(p.cpu_seconds() for p in procs)
            waited = CpuWaited()
            started = time.monotonic()
            stamps = await output_timestamps(self.bootstrap, topics.inbound(recipient), n,
                                             timeout_s=max(60, n / 20), start=ends)  # fmt: skip
            elapsed = time.monotonic() - started
            cpu_waited = waited.share()
            cpu = sum(p.cpu_seconds() for p in procs) - cpu0
            peak = max(p.peak_rss_mb() for p in procs)
        finally:
            for p in procs:
                p.stop()
        span_s = max(1e-3, (stamps[-1] - stamps[0]) / 1000)
        return {
            "msgs_per_s": round((n - 1) / span_s, 1),
            "cpu_ms_per_msg": round(cpu / n * 1000, 3),
            "peak_rss_mb": round(peak, 1),
            "wall_s": round(elapsed, 2),
            "processes": len(procs),
            "record_bytes": len(items[0][1]),
            "load_1m": [load_before, load_1m()],
            "cpu_waited": cpu_waited,
        }

    async def latency(self, name: str, rate: int, samples: list[float] | None = None) -> dict[str, Any]:
        """End-to-end latency, publish -> visible to a read_committed counterpart, at a fixed offered load; each
        measured latency (ms) is also appended to ``samples`` when given (to pool rounds)."""
        topics = await self.fresh(relay_lines=RELAY_LINES.get(name, ()))
        sender = self.parties(name)[0]
        procs = [p.start() for p in self._pipeline(name, topics)]
        # the counterpart reads as the SDK's inbox does (short fetch wait), so no variant's figure includes
        # the measuring consumer's own fetch stalls
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, isolation_level="read_committed",
                                    enable_auto_commit=False, fetch_max_wait_ms=FETCH_WAIT_MS)  # fmt: skip
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
        sent: dict[bytes, float] = {}
        lat: list[float] = []
        total = int(rate * self.mode.latency_seconds)
        # the first seconds at the offered rate are sent but not measured: a process's first transactions
        # (and a broker's, after a start) are slower than its steady state for every variant alike
        warm = int(rate * self.mode.latency_warm_s)
        items = [self.item(name, i) for i in range(warm + total)]
        try:
            await self._started(name, procs)
            ends = await self.warm(name, topics)
            await consumer.start()
            await producer.start()
            consumer.assign(list(ends))
            for tp, offset in ends.items():
                consumer.seek(tp, offset)

            async def receive() -> None:
                while True:
                    batch = await consumer.getmany(timeout_ms=100)
                    now = time.perf_counter()
                    for rs in batch.values():
                        for r in rs:
                            mid = json.loads(r.value)["message_id"].encode()
                            if mid in sent:
                                lat.append((now - sent.pop(mid)) * 1000)

            reader = asyncio.create_task(receive())
            load_before = load_1m()
            waited = CpuWaited()
            start = time.perf_counter()
            for i, (key, value, headers) in enumerate(items):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if i >= warm:
                    sent[json.loads(value)["message_id"].encode()] = time.perf_counter()
                await producer.send(topics.outbound(sender), value, key=key, headers=headers)
            with suppress(TimeoutError):
                async with asyncio.timeout(60):
                    while len(lat) < total:
                        await asyncio.sleep(0.1)
            cpu_waited = waited.share()
            reader.cancel()
            with suppress(asyncio.CancelledError):
                await reader
        finally:
            await producer.stop()
            await consumer.stop()
            for p in procs:
                p.stop()
        if samples is not None:
            samples.extend(lat)
        return {"offered_per_s": rate, "delivered": len(lat), "sent": total, "warm_up_s": self.mode.latency_warm_s,
                "latency_ms": {k: round(v, 1) for k, v in percentiles(lat).items()},
                "load_1m": [load_before, load_1m()], "cpu_waited": cpu_waited}  # fmt: skip

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
            lateness = await overdue_lateness(
                self.bootstrap, topics.status, {m: deadlines[m] for m in measured}, timeout_s=600
            )
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
            seen = SeenMessage(sender="CN", message_id=f"cn-2026-11-29-notice-{i:09d}", digest=f"{i:064x}",
                               message_type="planned_launch", agreement="CN-RU-2009", launch_key=f"CN-S-{i}",
                               recipients=("RU",), outcome="forwarded",
                               src=Src(topics.outbound("CN"), i % 3, i // 3))  # fmt: skip
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


@contextmanager
def bench_session(mode: Mode, prefix: str) -> Iterator[Bench]:
    """One benchmark's work directory and broker (``LAUNCHRELAY_BOOTSTRAP_SERVERS``, else one started in the
    directory on free ports), as a :class:`Bench`; the directory is removed after, whatever happened."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        with provide_broker(bootstrap=os.environ.get("LAUNCHRELAY_BOOTSTRAP_SERVERS"), data_dir=work / "kafka",
                            port=free_port(), controller_port=free_port()) as bootstrap:  # fmt: skip
            yield Bench(mode, bootstrap, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def summarise_throughput(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "msgs_per_s": spread([r["msgs_per_s"] for r in runs])["median"],
        "msgs_per_s_range": spread([r["msgs_per_s"] for r in runs]),
        "cpu_ms_per_msg": spread([r["cpu_ms_per_msg"] for r in runs], 3)["median"],
        "cpu_ms_per_msg_range": spread([r["cpu_ms_per_msg"] for r in runs], 3),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "record_bytes": runs[0]["record_bytes"],
        "processes": runs[0]["processes"],
        "rounds": runs,
    }


def summarise_latency(name: str, rate: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    pct = {k: spread([r["latency_ms"][k] for r in runs]) for k in ("p50", "p95", "p99")}
    return {"variant": name, "offered_per_s": rate, "delivered": sum(r["delivered"] for r in runs),
            "sent": sum(r["sent"] for r in runs), "latency_ms": {k: v["median"] for k, v in pct.items()},
            "latency_range_ms": pct, "rounds": runs}  # fmt: skip


def same_round_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Ratios taken within each round (both variants measured minutes apart), then their median and range."""
    t = {name: row["rounds"] for name, row in results["throughput"].items()}
    lat = {(row["variant"], row["offered_per_s"]): row["rounds"] for row in results["latency"]}

    def per_round(a: list[dict[str, Any]], b: list[dict[str, Any]], get: Callable[[dict[str, Any]], float]) -> dict[
            str, float]:  # fmt: skip
        return spread([get(x) / max(1e-9, get(y)) for x, y in zip(a, b, strict=True)], 3)

    rate = lambda r: r["msgs_per_s"]  # noqa: E731
    p99 = lambda r: r["latency_ms"]["p99"]  # noqa: E731
    return {
        "relay_vs_same_work": per_round(t["relay"], t["same_work"], rate),
        "relay_vs_bare_txn": per_round(t["relay"], t["bare_txn"], rate),
        "relay_vs_peer": per_round(t["relay"], t["peer"], rate),
        "relay_x2_vs_relay": per_round(t["relay_x2"], t["relay"], rate),
        "relay_inpk_vs_relay": per_round(t["relay_inpk"], t["relay"], rate),
        "relay_p99_vs_floor_p99_at_100": per_round(lat[("relay", 100)], lat[("floor", 100)], p99),
        "relay_p99_vs_floor_p99_at_1000": per_round(lat[("relay", 1000)], lat[("floor", 1000)], p99),
    }


def _r(d: dict[str, float]) -> str:
    return f"{d['median']} ({d['min']}–{d['max']})" if d["min"] != d["max"] else f"{d['median']}"


def _latency_warm_up(r: dict[str, Any]) -> str:
    warm = {run.get("warm_up_s") for row in r["latency"] for run in row["rounds"]}
    if warm == {None}:  # results written before the warm-up at the offered rate
        return "after a warm-up"
    seconds = "/".join(str(w) for w in sorted(warm, key=str))
    return f"after a warm-up, then {seconds} s at the offered rate, not measured"


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    loads = [x for row in r["throughput"].values() for run in row["rounds"] for x in run["load_1m"]]
    loads += [x for row in r["latency"] for run in row["rounds"] for x in run["load_1m"]]
    lines = [f"# Benchmark results ({r['mode']})", "",
             f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; Python {m['python']}; Kafka {r['kafka']} "
             f"(local, one node, 512 MiB heap); commit {r['commit']}; {r['date']}.", "",
             f"{r['rounds']} round(s), variants alternating (order rotated each round); figures are medians with "
             f"the range over rounds in brackets. Load average (1 min) during the runs: {min(loads):.2f}–"
             f"{max(loads):.2f} on {m['cores']} cores (the broker and the load generator share them).", "",
             "## Throughput (drain of a preloaded backlog of ~800-byte notices, after a warm-up)", "",
             "| variant | msgs/s | CPU ms / msg | peak RSS MiB |", "| --- | ---: | ---: | ---: |"]  # fmt: skip
    b = r["broker"]
    lines.append(f"| Kafka producer-perf (acks=all) | {b['producer_msgs_per_s']:.0f} | – | – |")
    lines.append(f"| Kafka consumer-perf | {b['consumer_msgs_per_s']:.0f} | – | – |")
    for k, label in LABELS.items():
        t = r["throughput"].get(k)
        if t:
            lines.append(f"| {label} | {_r(t['msgs_per_s_range'])} | {_r(t['cpu_ms_per_msg_range'])} | "
                         f"{t['peak_rss_mb']:.0f} |")  # fmt: skip
    ratios = r["ratios"]
    lines += ["", "Same-round ratios (median, range):", "",
              f"- relay ÷ same-work pipe (throughput): **{_r(ratios['relay_vs_same_work'])}**",
              f"- two relay processes ÷ one: **{_r(ratios['relay_x2_vs_relay'])}**",
              f"- IN-PK ÷ CN-RU relay throughput: **{_r(ratios['relay_inpk_vs_relay'])}**",
              f"- relay ÷ bare transactional pipe with aiokafka defaults: {_r(ratios['relay_vs_bare_txn'])}; "
              f"relay ÷ peer: {_r(ratios['relay_vs_peer'])}",
              f"- relay p99 ÷ floor p99: **{_r(ratios['relay_p99_vs_floor_p99_at_100'])}** at 100/s, "
              f"{_r(ratios['relay_p99_vs_floor_p99_at_1000'])} at 1,000/s",
              "", f"## Latency, publish → visible to a read_committed counterpart ({_latency_warm_up(r)})", "",
              "| variant | offered/s | delivered | p50 ms | p95 ms | p99 ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for row in r["latency"]:
        rng = row["latency_range_ms"]
        lines.append(f"| {LABELS.get(row['variant'], row['variant'])} | {row['offered_per_s']} | "
                     f"{row['delivered']}/{row['sent']} | {_r(rng['p50'])} | {_r(rng['p95'])} | {_r(rng['p99'])} |")  # fmt: skip
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
        lines += [f"## Relay remembering {rs['remembered']:,} message ids (records without a time of their own: none is forgotten during the run)", "",
                  f"- restart, reading them all back before taking partitions: {rs['restart_s']} s",
                  f"- memory: {rs['rss_mb_empty']} MiB with none, {rs['rss_mb_remembering']} MiB with them "
                  f"({rs['kb_per_id']} KiB per id); peak {rs['peak_rss_mb']} MiB", ""]  # fmt: skip
    commits = r.get("commits") or {}
    if len(set(commits.values())) > 1:
        lines += ["Sections measured at different commits: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(commits.items())) + ".", ""]  # fmt: skip
    return "\n".join(lines)


SECTIONS = ("broker", "throughput", "latency", "tracker", "relay_state")


async def run(mode: Mode, out: Path, only: set[str] | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="lr-bench-"))
    env_bootstrap = os.environ.get("LAUNCHRELAY_BOOTSTRAP_SERVERS")
    results: dict[str, Any] = {
        "mode": mode.name,
        "rounds": mode.rounds,
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
        wanted = only or set(SECTIONS)
        previous = out / f"{mode.name}.json"
        results["commits"] = {k: results["commit"] for k in wanted}
        if only and previous.exists():  # keep the sections not rerun, with the commit each was measured at
            before = json.loads(previous.read_text())
            results |= {k: v for k, v in before.items() if k in set(SECTIONS) - only}
            kept = before.get("commits") or {k: before.get("commit", "unknown") for k in SECTIONS}
            results["commits"] |= {
                k: kept.get(k, before.get("commit", "unknown")) for k in set(SECTIONS) - only if k in before
            }
        if "broker" in wanted:
            print(f"[bench:{mode.name}] broker tools", flush=True)
            results["broker"] = await asyncio.to_thread(bench.broker_tools)
        if "throughput" in wanted:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in THROUGHPUT}
            for round_ in range(mode.rounds):
                for name in rotated(THROUGHPUT, round_):
                    print(f"[bench:{mode.name}] round {round_ + 1}: throughput {name}", flush=True)
                    runs[name].append(await bench.throughput(name))
                    print(f"    {runs[name][-1]}", flush=True)
            results["throughput"] = {name: summarise_throughput(rows) for name, rows in runs.items()}
        if "latency" in wanted:
            lat_runs: dict[tuple[str, int], list[dict[str, Any]]] = {case: [] for case in LATENCY}
            for round_ in range(mode.rounds):
                for name, rate in rotated(LATENCY, round_):
                    print(f"[bench:{mode.name}] round {round_ + 1}: latency {name} at {rate}/s", flush=True)
                    lat_runs[(name, rate)].append(await bench.latency(name, rate))
                    print(f"    {lat_runs[(name, rate)][-1]}", flush=True)
            results["latency"] = [summarise_latency(name, rate, rows) for (name, rate), rows in lat_runs.items()]
        if "tracker" in wanted:
            print(f"[bench:{mode.name}] tracker with {mode.pending} pending", flush=True)
            results["tracker"] = await bench.tracker()
            print(f"    {results['tracker']}", flush=True)
        if "relay_state" in wanted:
            print(f"[bench:{mode.name}] relay remembering {mode.remembered} message ids", flush=True)
            results["relay_state"] = await bench.relay_state()
            print(f"    {results['relay_state']}", flush=True)
    results["ratios"] = same_round_ratios(results)
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
    parser.add_argument("--only", action="append", choices=list(SECTIONS),
                        help="rerun these sections; the others are kept from the last results file")  # fmt: skip
    args = parser.parse_args()
    asyncio.run(run(QUICK if args.mode == "quick" else FULL, args.out, set(args.only) if args.only else None))


if __name__ == "__main__":
    main()
