"""What a hostile record costs the relay: time and memory of decide() + plan() per kind of record.

    python -m bench.hostile [--repeat N] [--out bench/results]

No broker: each record of the hostile corpus (the one tests/test_hostile.py
publishes live) is decided and planned N times in this process; the figures
are the median and the worst time, and the peak memory allocated while
deciding one (tracemalloc). A valid notice of each agreement is measured
beside them, so the ratios say what a hostile record costs against real work.
Results: bench/results/hostile.{json,md}, with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from harness import deploy_config  # noqa: E402 - the tests' deployment of every preset, offline
from launchrelay.agreements.config import load_config  # noqa: E402
from launchrelay.relay.decide import InboundRecord, RelayContext, decide  # noqa: E402
from launchrelay.relay.outputs import plan  # noqa: E402
from launchrelay.relay.state import MemoryState  # noqa: E402

MAX_BYTES = 1 << 20
NOW = datetime.now(UTC)


def corpus(signed: Callable[[bytes], list[tuple[str, bytes | None]]]) -> dict[str, tuple[bytes | None, bytes]]:
    """Name -> (value, key): the hostile kinds, largest of each, and valid notices to compare with."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_decide import notice  # a valid notice relative to NOW in the tests; re-dated below

    def dated(**over: Any) -> dict[str, Any]:
        start, end = NOW.timestamp() + 4 * 86400, NOW.timestamp() + 5 * 86400
        d = notice(**over)
        d["created_at"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
        d["window"] = {"start": datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "end": datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
        return d

    base = json.dumps(dated())
    key = b"CN-L1"
    polygon = {"kind": "polygon", "points": [{"lat": 10 + i * 1e-4, "lon": 70 + (i % 7) * 1e-3} for i in range(27000)]}
    return {
        "valid CN-RU notice": (base.encode(), key),
        "valid IN-PK notice": (
            json.dumps(dated(sender="IN", recipients=["PK"], agreement="IN-PK-2005", launch_key="IN-L1")).encode(),
            b"IN-L1",
        ),
        "1 MiB + 1 (OVERSIZE)": (b"x" * (MAX_BYTES + 1), key),
        "invalid UTF-8": (b'{"a": "\xff"}' + b" " * 1000, key),
        "NaN": (base.replace('"range_km": 9000.0', '"range_km": NaN').encode(), key),
        "duplicate key": (base.replace('"range_km": 9000.0', '"range_km": 1, "range_km": 9000.0').encode(), key),
        "10**400": (base.replace('"range_km": 9000.0', '"range_km": 1' + "0" * 400).encode(), key),
        "1,000 nested arrays": (b"[" * 1000 + b"]" * 1000, key),
        "1 MiB of nested arrays": (b"[" * (MAX_BYTES // 2) + b"]" * (MAX_BYTES // 2), key),
        "1 MiB of numbers": (b"[" + b"1," * (MAX_BYTES // 2 - 2) + b"1]", key),
        "1 MiB string with repeated key": (b'{"a": "' + b"x" * (MAX_BYTES - 40) + b'", "a": 1}', key),
        "~900 KB polygon (27,000 points)": (json.dumps(json.loads(base) | {"impact_areas": [polygon]}).encode(), key),
    }


def measure(decide_one: Callable[[], Any], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        decide_one()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    decide_one()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000, "peak_mib": peak / 2**20}


def run(repeat: int, out: Path) -> dict[str, Any]:
    deploy = deploy_config("unused:9092", Path(tempfile.mkdtemp(prefix="bench-hostile")), "lr", max_bytes=MAX_BYTES)
    ctx = RelayContext.build(load_config(deploy.config))
    rows = {}
    for name, (value, key) in corpus(lambda raw: deploy.signers["CN"].headers(raw)).items():  # type: ignore[arg-type]
        sender = "IN" if name.startswith("valid IN") else "CN"
        headers = deploy.signers[sender].headers(value or b"")
        record = InboundRecord(deploy.topics.outbound(sender), 0, 1, key, value, headers,  # type: ignore[arg-type]
                               int(NOW.timestamp() * 1000))  # fmt: skip

        def one(record: InboundRecord = record) -> None:
            plan(decide(record, ctx, MemoryState()), ctx.topics, deploy.relay_signer, "bench", NOW)

        decision = decide(record, ctx, MemoryState())
        rows[name] = {"bytes": len(value or b""), "outcome": decision.kind, "reasons": decision.reason_codes,
                      **measure(one, repeat)}  # fmt: skip
        print(f"[bench:hostile] {name}: {rows[name]['median_ms']:.2f} ms, {rows[name]['peak_mib']:.1f} MiB", flush=True)
    results = {"when": NOW.isoformat(), "repeat": repeat, "loadavg": os.getloadavg(), "cpus": os.cpu_count(),
               "rows": rows}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "hostile.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "hostile.md").write_text(markdown(results))
    return results


def markdown(r: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in r["loadavg"])
    lines = [
        "# What a hostile record costs the relay", "",
        f"decide() + plan() of one record, {r['repeat']} times each, in one process ({r['cpus']} CPUs, load average "
        f"{load} at the start); peak memory allocated while deciding one (tracemalloc).", "",
        "| record | bytes | outcome | median ms | worst ms | peak MiB |", "| --- | ---: | --- | ---: | ---: | ---: |",
    ]  # fmt: skip
    for name, row in r["rows"].items():
        outcome = row["outcome"] + (f" ({', '.join(row['reasons'])})" if row["reasons"] else "")
        lines.append(f"| {name} | {row['bytes']:,} | {outcome} | {row['median_ms']:.2f} | {row['max_ms']:.2f} | "
                     f"{row['peak_mib']:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    run(args.repeat, args.out)


if __name__ == "__main__":
    main()
