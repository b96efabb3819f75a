"""A soak: `python -m bench.soak [--minutes 10] [--rate 100] [--every 10]`.

A relay and a tracker run against a local broker while CN publishes signed notices at a fixed
rate (none is acknowledged, so each stays pending in the tracker, as the worst case of a watch
centre's day). Every ``--every`` seconds both processes are sampled: resident memory, CPU seconds,
the tracker's pending count and ledger size, and how far the tracker is behind what was published
(published − pending: a notice counts once it is forwarded and recorded). Least-squares slopes of
memory and CPU against the notices published give the cost per notice, and the extrapolation to a
million and ten million notices. Writes bench/results/soak.{json,md}; the load average is in every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.measure import CpuWaited, Measured, notice, python, share_range, write_results
from bench.run import FULL, bench_session

ROOT = Path(__file__).resolve().parent.parent


def slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line through the points: (slope, intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0, my
    k = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return k, my - k * mx


def _ledger(path: Path) -> tuple[int, int, float]:
    """Notices the tracker has recorded, acknowledgements pending, and the ledger's size on disk (MiB), read
    beside the running tracker."""
    if not path.exists():
        return 0, 0, 0.0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        recorded = int(db.execute("SELECT count(*) FROM notifications").fetchone()[0])
        row = db.execute(  # acknowledgements owed: one per forwarded notice (a report owed is a delivery too)
            "SELECT coalesce(sum(n), 0) FROM delivery_counts WHERE kind = 'ack' AND state = 'pending'"
        ).fetchone()
        pending = int(row[0])
    except sqlite3.OperationalError:  # not created yet
        recorded = pending = 0
    finally:
        db.close()
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return recorded, pending, size / 2**20


async def soak(minutes: float, rate: int, every_s: float, horizon: str | None = None) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    with bench_session(FULL, "lr-soak-") as bench:
        # with a horizon: ids are remembered that long, the forget sweep runs at every sample, and every
        # notice's window is past (refused, but remembered like any authentic message): memory must level off
        # (the sweep sets its clock back by the tolerated clock skew, 5 minutes by default: 5 seconds here)
        forgetting = (f'remember_for = "{horizon}"', 'created_at_skew = "PT5S"')
        topics = await bench.fresh(relay_lines=forgetting if horizon else ())
        env = bench.env(topics.prefix, **({"LAUNCHRELAY_RELAY_FORGET_EVERY_S": str(every_s)} if horizon else {}))
        starts_in = timedelta(days=-2) if horizon else timedelta(days=3)
        ledger = Path(env["LAUNCHRELAY_LEDGER"])
        logs = bench.work / "logs"
        relay = Measured("relay-soak", python("-m", "launchrelay", "relay"), env, logs).start()
        tracker = Measured("tracker-soak", python("-m", "launchrelay", "tracker"), env, logs).start()
        producer = AIOKafkaProducer(bootstrap_servers=bench.bootstrap, acks="all", linger_ms=5)
        try:
            await asyncio.to_thread(relay.wait_log, "relay.partitions_assigned")
            await asyncio.to_thread(tracker.wait_log, "tracker.started")
            await producer.start()
            began = time.monotonic()
            published = 0
            next_sample = 0.0
            waited = CpuWaited()  # lapped at each sample after the first: the share since the sample before

            def sample(at: float) -> None:
                recorded, pending, ledger_mb = _ledger(ledger)
                samples.append({
                    "t_s": round(at, 1), "published": published, "tracker_pending": pending,
                    "behind": published - recorded, "relay_rss_mb": round(relay.rss_mb(), 1),
                    "relay_cpu_s": round(relay.cpu_seconds(), 2), "tracker_rss_mb": round(tracker.rss_mb(), 1),
                    "tracker_cpu_s": round(tracker.cpu_seconds(), 2), "ledger_mb": round(ledger_mb, 1),
                    "load_1m": round(os.getloadavg()[0], 2),
                    "cpu_waited": waited.lap() if samples else None,  # the first has no span before it
                })  # fmt: skip
                print(f"    {samples[-1]}", flush=True)

            while (elapsed := time.monotonic() - began) < minutes * 60:
                if elapsed >= next_sample:
                    sample(elapsed)
                    next_sample += every_s
                due = int(elapsed * rate) + 1 - published  # paced: what the rate owes by now
                for _ in range(max(0, due)):
                    key, value, headers = notice(bench.signers["CN"], published, starts_in=starts_in)
                    await producer.send(topics.outbound("CN"), value, key=key, headers=headers)
                    published += 1
                await asyncio.sleep(0.01)
            await producer.flush()
            async with asyncio.timeout(120):  # let the last notices through, then the final sample
                while _ledger(ledger)[0] < published:  # every notice forwarded or refused, and recorded
                    await asyncio.sleep(0.5)
            sample(time.monotonic() - began)
        finally:
            await producer.stop()
            relay.stop()
            tracker.stop()
    return summarise(samples, minutes, rate, every_s) | {"horizon": horizon}


def summarise(samples: list[dict[str, Any]], minutes: float, rate: int, every_s: float) -> dict[str, Any]:
    xs = [float(s["published"]) for s in samples]
    fits: dict[str, Any] = {}
    for who in ("relay", "tracker"):
        rss_k, rss_b = slope(xs, [s[f"{who}_rss_mb"] for s in samples])
        # CPU from the first sample on: start-up is not a cost per notice
        cpu_k, _ = slope(xs, [s[f"{who}_cpu_s"] for s in samples])
        fits[who] = {
            "kib_per_notice": round(rss_k * 1024, 4),
            "cpu_ms_per_notice": round(cpu_k * 1000, 3),
            "rss_mb_at_1m": round(rss_b + rss_k * 1e6, 0),
            "rss_mb_at_10m": round(rss_b + rss_k * 1e7, 0),
        }
    # CPU per notice early and late in the run: flat if the work per notice does not grow with what is held
    half = len(samples) // 2
    for who in ("relay", "tracker"):
        parts = []
        for lo, hi in ((0, half), (half, len(samples) - 1)):
            a, b = samples[lo], samples[hi]
            n = b["published"] - a["published"]
            parts.append(round((b[f"{who}_cpu_s"] - a[f"{who}_cpu_s"]) / n * 1000, 3) if n else None)
        fits[who]["cpu_ms_per_notice_first_half"], fits[who]["cpu_ms_per_notice_second_half"] = parts
        # memory per notice in each half: with a horizon, the second half's is what remains once ids are forgotten
        halves = [samples[: half + 1], samples[half:]]
        fits[who]["kib_per_notice_first_half"], fits[who]["kib_per_notice_second_half"] = [
            round(slope([float(x["published"]) for x in part], [x[f"{who}_rss_mb"] for x in part])[0] * 1024, 4)
            if len(part) > 1 else None
            for part in halves
        ]  # fmt: skip
    lk, _ = slope(xs, [s["ledger_mb"] for s in samples])
    fits["ledger"] = {"kib_per_notice": round(lk * 1024, 3), "mb_at_1m": round(lk * 1e6, 0),
                      "mb_at_10m": round(lk * 1e7, 0)}  # fmt: skip
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "minutes": minutes,
        "rate_per_s": rate,
        "every_s": every_s,
        "published": samples[-1]["published"] if samples else 0,
        "max_behind": max((s["behind"] for s in samples[:-1]), default=0),
        "fits": fits,
        "samples": samples,
    }


def markdown(doc: dict[str, Any]) -> str:
    f = doc["fits"]
    loads = [s["load_1m"] for s in doc["samples"]]
    horizon = doc.get("horizon")
    what = (
        f'each refused (its window past) and remembered for `remember_for = "{horizon}"` (clock skew tolerated: 5 s), '
        "the forget sweep at every sample: the relay's memory must level off once ids are forgotten as fast as they "
        "come"
        if horizon
        else "each left pending (no acknowledgements)"
    )
    lines = [
        "# Soak: cost per notice against what the processes hold"
        + (f", ids forgotten after {horizon}" if horizon else ""),
        "",
        f"{doc['date']}. {doc['published']:,} notices at {doc['rate_per_s']}/s for {doc['minutes']:g} min, {what}; "
        f"sampled every {doc['every_s']:g} s. Load average (1 min) {min(loads, default=0)}–{max(loads, default=0)}; "
        f"some task waited for a CPU {share_range(s.get('cpu_waited') for s in doc['samples'])} of the time "
        "between samples (the kernel's pressure stall information). "
        f"The tracker was at most {doc['max_behind']} notices behind what was published at a sample.",
        "",
        "| process | memory KiB per notice (slope) | first half | second half | at 1M notices MiB | at 10M MiB "
        "| CPU ms per notice (slope) | first half | second half |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for who in ("relay", "tracker"):
        r = f[who]
        lines.append(
            f"| {who} | {r['kib_per_notice']} | {r['kib_per_notice_first_half']} | {r['kib_per_notice_second_half']} "
            f"| {r['rss_mb_at_1m']:g} | {r['rss_mb_at_10m']:g} | {r['cpu_ms_per_notice']} "
            f"| {r['cpu_ms_per_notice_first_half']} | {r['cpu_ms_per_notice_second_half']} |"
        )
    led = f["ledger"]
    lines += [
        "",
        f"Ledger on disk: {led['kib_per_notice']} KiB per notice ({led['mb_at_1m']:g} MiB at 1M, "
        f"{led['mb_at_10m']:g} MiB at 10M).",
        "",
        "The relay's memory per notice holds until an id is forgotten: `[relay] remember_for` (30 days by default) "
        "after its notice expires, so it levels off at rate × (notice validity + remember_for) ids"
        + (" (bench/results/soak_horizon.md shows it with a horizon of minutes)." if not horizon else "."),
        "",
        "| t s | published | tracker pending | behind | relay RSS MiB | relay CPU s | tracker RSS MiB | tracker CPU s "
        "| ledger MiB | load | CPU waited |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in doc["samples"]:
        lines.append(
            f"| {s['t_s']} | {s['published']} | {s['tracker_pending']} | {s['behind']} | {s['relay_rss_mb']} "
            f"| {s['relay_cpu_s']} | {s['tracker_rss_mb']} | {s['tracker_cpu_s']} | {s['ledger_mb']} | {s['load_1m']} "
            f"| {share_range([s.get('cpu_waited')])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=100, help="notices per second")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--horizon", help="remember ids this long (ISO 8601, e.g. PT1M) and publish notices the "
                        "relay refuses: shows memory levelling off; results go to soak_horizon.*")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    doc = asyncio.run(soak(args.minutes, args.rate, args.every, args.horizon))
    write_results(args.out, "soak_horizon" if args.horizon else "soak", doc, markdown(doc))


if __name__ == "__main__":
    main()
