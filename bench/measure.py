"""Processes measured from /proc (CPU seconds, peak memory), workloads, and percentile helpers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from launchrelay.contract import encode
from launchrelay.contract.messages import PlannedLaunch
from launchrelay.kafka.consume import partitions_of
from launchrelay.signing import Signer

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_stalled_s() -> float | None:
    """Seconds so far in which some runnable task waited for a CPU (the kernel's pressure stall information,
    ``/proc/pressure/cpu``; None where the kernel has none): a truer sign of a saturated machine than the load
    average, which also counts tasks waiting for the disk (on this machine it read 4-7 with one core busy)."""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(some.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


class CpuWaited:
    """The share of the time since it was made in which some task waited for a CPU (0-1; None without PSI)."""

    def __init__(self) -> None:
        self._began, self._stalled = time.monotonic(), cpu_stalled_s()

    def share(self) -> float | None:
        now = cpu_stalled_s()
        if now is None or self._stalled is None:
            return None
        return round((now - self._stalled) / max(1e-3, time.monotonic() - self._began), 2)

    def lap(self) -> float | None:
        """The share so far, and start measuring afresh (for samples taken one after another)."""
        share = self.share()
        self._began, self._stalled = time.monotonic(), cpu_stalled_s()
        return share


def share_range(shares: Iterable[float | None]) -> str:
    """Shares (0-1) as a range of percentages, "12%–40%"; "n/a" when none was measured (a kernel without PSI)."""
    known = [s for s in shares if s is not None]
    if not known:
        return "n/a"
    low, high = f"{min(known):.0%}", f"{max(known):.0%}"
    return low if low == high else f"{low}–{high}"


class Measured:
    """A child process whose CPU time and peak RSS are read from /proc while it runs."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.log = logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Measured:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        return self

    def wait_log(self, text: str, timeout_s: float = 90) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if text in self.log.read_text(errors="replace"):
                return
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} never logged {text!r}; see {self.log}")

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def _status_mb(self, field: str) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def peak_rss_mb(self) -> float:
        return self._status_mb("VmHWM")

    def rss_mb(self) -> float:
        return self._status_mb("VmRSS")

    def freeze(self) -> None:
        """Stop the process (SIGSTOP) while a backlog is written, so the writing takes none of its CPU."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def notice(
    signer: Signer, i: int, pad_to: int = 800, starts_in: timedelta = timedelta(days=3)
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A realistic CN -> RU planned-launch notification of about ``pad_to`` bytes, signed; its day-long window
    opens ``starts_in`` from now (in the past: refused, WINDOW_IN_PAST)."""
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "message_type": "planned_launch",
        "message_id": f"cn-bench-{uuid.uuid4().hex}",
        "agreement": "CN-RU-2009",
        "sender": "CN",
        "recipients": ["RU"],
        "launch_key": f"CN-B-{i % 512}",
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vehicle": {"category": "icbm", "generic_class": "DF-41", "range_km": 12000.0},
        "window": {
            "start": (now + starts_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (now + starts_in + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "launch_area": {"kind": "circle", "centre": {"lat": 40.96, "lon": 100.29}, "radius": 20, "unit": "km"},
        "impact_areas": [
            {
                "kind": "polygon",
                "points": [
                    {"lat": 45.0, "lon": 110.0},
                    {"lat": 45.5, "lon": 110.0},
                    {"lat": 45.5, "lon": 110.5},
                    {"lat": 45.0, "lon": 110.5},
                ],
            }
        ],
        "direction": {"azimuth_deg": 60.0},
    }
    base = len(encode(PlannedLaunch.model_validate_json(json.dumps(data))))
    data["notes"] = {"en": "x" * max(0, pad_to - base - 19)}
    raw = encode(PlannedLaunch.model_validate_json(json.dumps(data)))
    return data["launch_key"].encode(), raw, signer.headers(raw)


async def preload(bootstrap: str, topic: str, items: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=10)
    await producer.start()
    try:
        futs = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in items]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def output_timestamps(
    bootstrap: str, topic: str, n: int, timeout_s: float = 300, start: dict[TopicPartition, int] | None = None
) -> list[int]:
    """CreateTime (ms) of the first ``n`` committed records of ``topic`` (from ``start``, else the beginning)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    out: list[int] = []
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp, offset in (start or {}).items():
            consumer.seek(tp, offset)
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                out += [r.timestamp for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return sorted(out)[:n]


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "n": 0}
    s = sorted(values)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": s[-1], "n": len(s)}


async def overdue_lateness(bootstrap: str, topic: str, deadlines: dict[str, float], timeout_s: float) -> list[float]:
    """How late (ms) the tracker's ``acknowledgement_overdue`` event of each message id in ``deadlines`` (id ->
    deadline, Unix seconds) came, read from the status ``topic`` until every one is found."""
    late: dict[str, float] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(timeout_s):
            while len(late) < len(deadlines):
                batch = await consumer.getmany(timeout_ms=500, max_records=20000)
                for records in batch.values():
                    for r in records:
                        e = json.loads(r.value)
                        if e["kind"] == "acknowledgement_overdue" and e["message_id"] in deadlines:
                            at = datetime.fromisoformat(e["at"]).timestamp()
                            late[e["message_id"]] = (at - deadlines[e["message_id"]]) * 1000
    finally:
        await consumer.stop()
    return list(late.values())


def write_results(out: Path, name: str, doc: dict[str, Any], markdown: str) -> None:
    """``name``.json and ``name``.md into ``out``; the table printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)
