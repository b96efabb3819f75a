"""The decision log's cost: `python -m bench.decision_log [--rounds 3] [--messages 5000] [--seconds 15]`.

The relay with ``[relay] decision_log = true`` (a leaf per decision in its transaction, heads, the frontier in the
commit metadata) beside the same relay without it, in the same run, alternating which goes first each round: the
sustained rate draining a backlog (bench.run's throughput: pipeline frozen while the backlog is written) and the
latency publish -> visible to RU's read_committed reader at 100 notices a second. Targets (issue 29): at least 0.9
of the throughput, p99 at 100/s within 1.2x. Results: bench/results/decision_log.{json,md}, with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import percentiles, write_results
from bench.run import FULL, _commit, bench_session

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("relay", "relay_log")


async def measure(rounds: int, messages: int, seconds: float, out: Path, warm_rounds: int = 1) -> dict[str, Any]:
    mode = replace(FULL, messages=messages, latency_seconds=seconds, latency_warm_s=min(3.0, seconds / 4))
    runs: list[dict[str, Any]] = []
    pooled: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with bench_session(mode, "lr-bench-log-") as bench:
        # Rounds up to 0 are run and not counted: a broker just started is still compiling its hot paths (in
        # earlier runs the first round's p50 at 100/s was 64 ms, the fourth's 8 ms, whichever variant ran first).
        for r in range(1 - warm_rounds, rounds + 1):
            for name in VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS)):
                t = await bench.throughput(name)
                lat = await bench.latency(name, 100, pooled[name] if r > 0 else None)
                row = {"round": r, "variant": name, "msgs_per_s": t["msgs_per_s"],
                       "cpu_ms_per_msg": t["cpu_ms_per_msg"], "p50_ms": lat["latency_ms"]["p50"],
                       "p99_ms": lat["latency_ms"]["p99"], "load_1m": round(os.getloadavg()[0], 2),
                       "cpu_waited": [t.get("cpu_waited"), lat.get("cpu_waited")]}  # fmt: skip
                print(f"  {row}", flush=True)
                if r > 0:
                    runs.append(row)

    def per_round(key: str) -> list[float]:
        by = {(x["round"], x["variant"]): x[key] for x in runs}
        return [by[(r, "relay_log")] / max(1e-9, by[(r, "relay")]) for r in range(1, rounds + 1)]

    whole = {name: percentiles(lat) for name, lat in pooled.items()}
    doc = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "setup": {"rounds": rounds, "messages": messages, "latency_seconds": seconds, "rate": 100},
        "throughput_ratio": round(statistics.median(per_round("msgs_per_s")), 3),
        # the p99 of every latency measured in the counted rounds, each variant's pooled; per round, 1 % of a
        # round's samples is a few dozen, and one stall of the shared machine moves it (ratios 0.48-1.44 in one run)
        "p99_ratio_at_100": round(whole["relay_log"]["p99"] / max(1e-9, whole["relay"]["p99"]), 3),
        "p99_ratio_at_100_median_of_rounds": round(statistics.median(per_round("p99_ms")), 3),
        "pooled_ms": {name: {k: round(v, 1) for k, v in w.items()} for name, w in whole.items()},
        "targets": {"throughput_ratio": 0.9, "p99_ratio_at_100": 1.2},
        "runs": runs,
    }
    rows = "\n".join(f"| {x['round']} | {x['variant']} | {x['msgs_per_s']} | {x['cpu_ms_per_msg']} | {x['p50_ms']} | "
                     f"{x['p99_ms']} | {x['load_1m']} | {_shares(x.get('cpu_waited'))} |" for x in runs)  # fmt: skip
    text = (f"# The decision log's cost\n\n{doc['date']}, commit {doc['commit']}. The relay keeping the decision log "
            f"beside the relay without it, alternating, {rounds} rounds ({messages} notices drained; 100/s for "
            f"{seconds:g} s). Median of the per-round ratios: throughput **{doc['throughput_ratio']}** (target at "
            f"least 0.9); p99 at 100/s of every latency of the counted rounds pooled per variant **{doc['p99_ratio_at_100']}** "
            f"(target at most 1.2; {doc['pooled_ms']['relay_log']['p99']} ms against {doc['pooled_ms']['relay']['p99']}, "
            f"{doc['pooled_ms']['relay']['n']:g} and {doc['pooled_ms']['relay_log']['n']:g} samples), the median of the "
            f"rounds' own p99 ratios {doc['p99_ratio_at_100_median_of_rounds']}. {warm_rounds} round(s) of each "
            "variant warmed the broker first and are not counted.\n\n"
            "| round | variant | notices/s | CPU ms/notice | p50 ms | p99 ms | load (1 min) | CPU waited (drain, 100/s) |\n"
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" + rows + "\n\nCPU waited: the share of the "
            "drain, and of the 100/s run, in which some task waited for a CPU (the kernel's pressure stall "
            "information).\n")  # fmt: skip
    write_results(out, "decision_log", doc, text)
    return doc


def _shares(values: list[float | None] | None) -> str:
    return " / ".join("" if v is None else f"{v:g}" for v in values) if values else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warm-rounds", type=int, default=1, help="rounds run first and not counted")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    asyncio.run(measure(args.rounds, args.messages, args.seconds, args.out, args.warm_rounds))


if __name__ == "__main__":
    main()
