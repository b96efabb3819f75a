"""The tracker's costs against what it holds: `python -m bench.tracker_scale [--levels 0,100000,1000000]`.

For each level of pending acknowledgements (the ledger grown from one level to the next, in process,
through the ledger's own ``apply`` so the rows are the tracker's), a tracker process is started on it and
measured:

- restart to ready (the ``tracker.started`` line), and memory once ready;
- timeout lateness: a few probe deliveries fall due some seconds after the start; their
  ``acknowledgement_overdue`` events are read back and compared with the deadlines;
- idle CPU, as a share of one core, over a quiet interval after the probes;
- CPU per status event: a burst of forwarded events is published and the process's CPU is taken
  until every one of them is pending in the ledger.

The pending deliveries at a level have deadlines a day away, so they only sit there, as a watch
centre's backlog would. Flatness is the ratio of the largest level's figures to the smallest's.
Writes bench/results/tracker_scale.{json,md}; the load average is recorded beside each level.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.measure import CpuWaited, Measured, overdue_lateness, percentiles, python, share_range, write_results
from bench.run import FULL, Bench, bench_session
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.messages import RecordRef
from launchrelay.tracker.ledger import SqliteLedger

ROOT = Path(__file__).resolve().parent.parent
#: the agreement's acknowledgement deadline in this bench: a day, and no re-sends
CONFIG = '\n[agreements.CN-RU-2009]\nack_deadline = "P1D"\nretransmit = { every = "P1D", max_attempts = 0 }\n'
PROBES = 20
#: by default the first probe falls due this long after the tracker is started (at a million pending it takes some
#: seconds to be ready; a short run on a small ledger may set less, ``--probe-lead-s``)
PROBE_LEAD_S = 20.0
PROBE_SPREAD_S = 5.0


def _forwarded(i: int, prefix: str, at: datetime, deadline_s: float, tag: str) -> StatusEvent:
    return StatusEvent(
        event_id=f"evt-{tag}-{i}", kind=EventKind.FORWARDED, at=at, message_id=f"cn-{tag}-{i}",
        message_type="planned_launch", agreement="CN-RU-2009", sender="CN", recipients=["RU"],
        launch_key=f"CN-{tag.upper()}-{i}", ack_deadline_s=deadline_s,
        source=RecordRef(topic=f"{prefix}.CN.out", partition=0, offset=i),
    )  # fmt: skip


def grow(ledger: Path, prefix: str, start: int, stop: int) -> float:
    """Add pending deliveries ``start`` .. ``stop`` (deadlines a day away); seconds taken."""
    began = time.monotonic()
    now = datetime.now(UTC)
    with SqliteLedger(ledger) as led:
        for lo in range(start, stop, 5000):
            led.apply([_forwarded(i, prefix, now, 86400.0, "p") for i in range(lo, min(stop, lo + 5000))], {})
    return time.monotonic() - began


def _size_mb(ledger: Path) -> float:
    parts = [Path(f"{ledger}{suffix}") for suffix in ("", "-wal")]
    return round(sum(p.stat().st_size for p in parts if p.exists()) / 2**20, 1)


def _pending(ledger: Path) -> int:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT coalesce(sum(n), 0) FROM delivery_counts WHERE state = 'pending'").fetchone()
        return int(row[0])
    finally:
        db.close()


async def level(bench: Bench, env: dict[str, str], ledger: Path, prefix: str, pending: int, burst: int,
                idle_s: float, round_: int, lead_s: float) -> dict[str, Any]:  # fmt: skip
    """Start a tracker on a ledger holding ``pending`` deliveries and measure it."""
    status_topic = f"{prefix}.status"
    started_at = datetime.now(UTC)
    probes = {}
    with SqliteLedger(ledger) as led:  # the probes: due some seconds after the start
        events = []
        for i in range(PROBES):
            deadline_s = lead_s + PROBE_SPREAD_S * i / PROBES
            e = _forwarded(i, prefix, started_at, deadline_s, f"probe{round_}")
            probes[e.message_id or ""] = started_at.timestamp() + deadline_s
            events.append(e)
        led.apply(events, {})
    load = [round(os.getloadavg()[0], 2)]
    waited = CpuWaited()
    tracker = Measured(f"tracker-{pending}", python("-m", "launchrelay", "tracker"), env, bench.work / "logs")
    began = time.monotonic()
    tracker.start()
    try:
        await asyncio.to_thread(tracker.wait_log, "tracker.started", 600)
        ready_s = time.monotonic() - began
        rss = tracker.rss_mb()
        lateness = await overdue_lateness(bench.bootstrap, status_topic, probes, lead_s + PROBE_SPREAD_S + 120)
        await asyncio.sleep(1)
        cpu0, t0 = tracker.cpu_seconds(), time.monotonic()
        await asyncio.sleep(idle_s)
        idle_share = (tracker.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        # a burst of forwarded events, each a new pending delivery
        before = _pending(ledger)
        producer = AIOKafkaProducer(bootstrap_servers=bench.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        now = datetime.now(UTC)
        cpu1 = tracker.cpu_seconds()
        try:
            sends = [
                await producer.send(status_topic, e.model_dump_json(exclude_none=True).encode(),
                                    key=(e.launch_key or "").encode())
                for e in (_forwarded(i, prefix, now, 86400.0, f"burst{round_}") for i in range(burst))
            ]  # fmt: skip
            await asyncio.gather(*sends)
        finally:
            await producer.stop()
        async with asyncio.timeout(600):
            while _pending(ledger) < before + burst:
                await asyncio.sleep(0.2)
        cpu_per_event_ms = (tracker.cpu_seconds() - cpu1) / burst * 1000
        load.append(round(os.getloadavg()[0], 2))
    finally:
        tracker.stop()
    return {
        "pending": pending,
        "ready_s": round(ready_s, 2),
        "rss_mb": round(rss, 1),
        "lateness_ms": {k: round(v, 1) for k, v in percentiles(lateness).items()},
        "probes": len(lateness),
        "idle_cpu_pct_of_core": round(idle_share * 100, 2),
        "cpu_ms_per_event": round(cpu_per_event_ms, 3),
        "burst": burst,
        "ledger_mb": _size_mb(ledger),
        "loadavg_1m": load,
        "cpu_waited": waited.share(),
    }


async def run(levels: list[int], burst: int, idle_s: float, lead_s: float = PROBE_LEAD_S) -> dict[str, Any]:
    rows = []
    with bench_session(FULL, "lr-tscale-") as bench:
        topics = await bench.fresh(CONFIG)
        ledger = bench.work / f"{topics.prefix}.sqlite"  # the ledger bench.env() names
        env = bench.env(topics.prefix, LAUNCHRELAY_TRACKER_TICK_S="0.2")
        held = 0
        for i, target in enumerate(levels):
            grow_s = grow(ledger, topics.prefix, held, target) if target > held else 0.0
            held = max(held, target)
            print(f"[tracker_scale] {held} pending (grown in {grow_s:.0f}s)", flush=True)
            row = await level(bench, env, ledger, topics.prefix, held, burst, idle_s, i, lead_s)
            print(f"    {row}", flush=True)
            rows.append(row)
            held = _pending(ledger)  # the bursts stay pending too
    first, last = rows[0], rows[-1]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "levels": rows,
        "probe_lead_s": lead_s,
        "flatness": {
            "cpu_per_event": round(last["cpu_ms_per_event"] / first["cpu_ms_per_event"], 2),
            "rss": round(last["rss_mb"] / first["rss_mb"], 2),
        },
    }


def markdown(doc: dict[str, Any]) -> str:
    lead = doc.get("probe_lead_s", PROBE_LEAD_S)
    lines = [
        "# Tracker against the pending count",
        "",
        f"{doc['date']}. Each level: a tracker started on a ledger holding that many pending acknowledgements "
        f"(deadlines a day away); {PROBES} probe deliveries fall due {lead:g}–"
        f"{lead + PROBE_SPREAD_S:g} s after the start; idle CPU after them; then a burst of forwarded "
        "events, CPU taken until all are pending. Load average (1 min) before and after each level, and the share of "
        "the level in which some task waited for a CPU (the kernel's pressure stall information).",
        "",
        "| pending | ready after restart s | RSS MiB | lateness p50 / p99 / max ms | idle CPU % of a core "
        "| CPU ms per status event | ledger MiB | load | CPU waited |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in doc["levels"]:
        lat = r["lateness_ms"]
        lines.append(
            f"| {r['pending']:,} | {r['ready_s']} | {r['rss_mb']} | {lat.get('p50')} / {lat.get('p99')} / "
            f"{lat.get('max')} | {r['idle_cpu_pct_of_core']} | {r['cpu_ms_per_event']} | {r['ledger_mb']} "
            f"| {' → '.join(str(x) for x in r['loadavg_1m'])} | {share_range([r.get('cpu_waited')])} |"
        )
    f = doc["flatness"]
    lines += ["", f"Largest ÷ smallest level: CPU per status event **{f['cpu_per_event']}**, memory **{f['rss']}**."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="0,100000,1000000", help="pending counts, ascending")
    parser.add_argument("--burst", type=int, default=5000, help="status events published at each level")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument(
        "--probe-lead-s",
        type=float,
        default=PROBE_LEAD_S,
        help="seconds from the tracker's start to the first probe's deadline",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    doc = asyncio.run(run([int(x) for x in args.levels.split(",")], args.burst, args.idle_s, args.probe_lead_s))
    write_results(args.out, "tracker_scale", doc, markdown(doc))


if __name__ == "__main__":
    main()
