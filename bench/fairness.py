"""A quiet party's latency while another party floods: `python -m bench.fairness [--flood N] [--rounds R]`.

Per round: CN's out topic holds a backlog of ``--flood`` signed notices when a relay starts;
RU publishes one notice a second for CN while the backlog drains, then five more with the
relay idle. Publish→forwarded (the receipt is committed with the forward) is taken for each.
The ratio of the quiet party's p50 and p99 during the flood to its figures alone is the measure:
1.0 would be a flood that costs the quiet party nothing. Load average is recorded beside it.
Writes bench/results/fairness.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import CpuWaited, Measured, notice, preload, python, share_range
from bench.run import FULL, Bench, bench_session
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import PlannedLaunch

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


def _quiet(base: PlannedLaunch, i: int) -> PlannedLaunch:
    return base.model_copy(update={"message_id": f"ru-quiet-{i}-{time.monotonic_ns()}"})


async def one_round(bench: Bench, flood: int) -> dict[str, Any]:
    topics = await bench.fresh()
    await preload(bench.bootstrap, topics.outbound("CN"), [notice(bench.signers["CN"], i) for i in range(flood)])
    relay = Measured("relay-fair", python("-m", "launchrelay", "relay"), bench.env(topics.prefix),
                     bench.work / "logs").start()  # fmt: skip
    during: list[float] = []
    alone: list[float] = []
    load = [round(os.getloadavg()[0], 2)]
    waited = CpuWaited()
    try:
        await asyncio.to_thread(relay.wait_log, "relay.partitions_assigned")
        _, raw, _ = notice(bench.signers["RU"], 0)
        base = PlannedLaunch.model_validate_json(raw).model_copy(update={"sender": "RU", "recipients": ["CN"],
                                                                         "launch_key": "RU-QUIET"})  # fmt: skip
        async with Publisher(bench.bootstrap, "RU", bench.signers["RU"], topic_prefix=topics.prefix) as ru:
            i = 0
            while (drained := _forwarded(relay, topics.outbound("CN"))) < flood:
                started = time.monotonic()
                receipt = await ru.publish_and_wait(_quiet(base, i), timeout_s=120)
                assert receipt.outcome == "forwarded", receipt.reasons
                if drained < flood:
                    during.append(time.monotonic() - started)
                i += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            for j in range(5):
                started = time.monotonic()
                assert (await ru.publish_and_wait(_quiet(base, i + j), timeout_s=60)).outcome == "forwarded"
                alone.append(time.monotonic() - started)
                await asyncio.sleep(0.5)
    finally:
        relay.stop()
    load.append(round(os.getloadavg()[0], 2))
    return {"flood": flood, "quiet_during": len(during), "during_p50_ms": _pct(during, 0.5),
            "during_p99_ms": _pct(during, 0.99), "alone_p50_ms": _pct(alone, 0.5), "alone_p99_ms": _pct(alone, 0.99),
            "p50_ratio": round(_pct(during, 0.5) / max(1e-3, _pct(alone, 0.5)), 2),
            "p99_ratio": round(_pct(during, 0.99) / max(1e-3, _pct(alone, 0.99)), 2), "load_1m": load,
            "cpu_waited": waited.share()}  # fmt: skip


def _forwarded(relay: Measured, topic: str) -> int:
    total = 0
    for line in relay.log.read_text(errors="replace").splitlines():
        if '"relay.committed"' in line and f'"{topic}:' in line:
            total += json.loads(line).get("forwarded", 0)
    return total


async def main(flood: int, rounds: int, out: Path) -> None:
    runs = []
    with bench_session(FULL, "lr-fair-") as bench:
        for r in range(rounds):
            runs.append(await one_round(bench, flood))
            print(f"[fairness] round {r + 1}: {runs[-1]}", flush=True)
    median = {k: statistics.median(run[k] for run in runs) for k in runs[0] if k not in ("load_1m", "cpu_waited")}
    doc = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "rounds": runs, "median": median}
    lines = ["# Fairness: a quiet party while another floods", "",
             f"{rounds} round(s) of a {flood}-notice backlog on CN's out topic drained by one relay while RU sends "
             f"one notice a second; {doc['date']}; load average (1 min) "
             f"{min(x for r in runs for x in r['load_1m'])}–{max(x for r in runs for x in r['load_1m'])} on 2 cores; "
             "some task waited for a CPU "
             f"{share_range(r['cpu_waited'] for r in runs)} of each round (the kernel's pressure stall information).",
             "", "| round | quiet notices during | p50 during ms | p99 during ms | p50 alone ms | p99 alone ms |"
             " p50 ratio | p99 ratio |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for n, run in enumerate(runs, 1):
        lines.append(f"| {n} | {run['quiet_during']} | {run['during_p50_ms']} | {run['during_p99_ms']} | "
                     f"{run['alone_p50_ms']} | {run['alone_p99_ms']} | {run['p50_ratio']} | {run['p99_ratio']} |")  # fmt: skip
    lines += ["", f"Median ratio during ÷ alone: p50 **{median['p50_ratio']}**, p99 **{median['p99_ratio']}**."]
    out.mkdir(parents=True, exist_ok=True)
    (out / "fairness.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "fairness.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flood", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    a = p.parse_args()
    asyncio.run(main(a.flood, a.rounds, a.out))
