"""Profile the relay's hot path at full load: `python -m bench.profile_relay [N]` (pyinstrument, text report)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Measured, notice, output_timestamps, preload, python
from bench.run import FULL, Bench
from launchrelay.provision.local import free_port
from launchrelay.provision.provide import provide_broker


async def main(n: int, out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="lr-prof-"))
    with provide_broker(
        bootstrap=os.environ.get("LAUNCHRELAY_BOOTSTRAP_SERVERS"),
        data_dir=work / "kafka",
        port=free_port(),
        controller_port=free_port(),
    ) as b:
        bench = Bench(FULL, b, work)
        topics = await bench.fresh()
        await preload(b, topics.outbound("CN"), [notice(bench.signers["CN"], i) for i in range(n)])
        relay = Measured(
            "relay-profiled",
            python("-m", "pyinstrument", "--renderer", "text", "--outfile", str(out), "-m", "launchrelay", "relay"),
            bench.env(topics.prefix),
            work / "logs",
        )
        relay.start()
        started = time.monotonic()
        stamps = await output_timestamps(b, topics.inbound("RU"), n, timeout_s=600)
        print(
            f"{n} forwarded in {time.monotonic() - started:.1f}s; {(n - 1) / ((stamps[-1] - stamps[0]) / 1000):.0f}/s"
        )
        relay.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(f"profile: {out}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    asyncio.run(main(count, Path(sys.argv[2]) if len(sys.argv) > 2 else Path("bench/results/relay-profile.txt")))
