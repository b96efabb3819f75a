import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.measure import Measured, notice, python
from bench.run import FULL, Bench
from launchrelay.broker.local import free_port
from launchrelay.broker.provide import provide_broker


async def main(rate, secs, out, idle_first):
    work = Path(tempfile.mkdtemp(prefix="lr-profr-"))
    with provide_broker(bootstrap=None, data_dir=work / "kafka", port=free_port(), controller_port=free_port()) as b:
        bench = Bench(FULL, b, work)
        topics = await bench.fresh()
        cmd = python("-m", "pyinstrument", "--renderer", "text", "--show-all", "--outfile", str(out), "-m", "launchrelay", "relay") if out != "-" else python("-m", "launchrelay", "relay")
        relay = Measured("relay-prof", cmd, bench.env(topics.prefix), work / "logs").start()
        await asyncio.to_thread(relay.wait_log, "relay.partitions_assigned")
        await asyncio.sleep(2)
        c0, t0 = relay.cpu_seconds(), time.monotonic()
        await asyncio.sleep(idle_first)
        print(f"idle: {(relay.cpu_seconds()-c0)/(time.monotonic()-t0)*100:.1f}% of a core", flush=True)
        p = AIOKafkaProducer(bootstrap_servers=b, acks="all", linger_ms=0)
        await p.start()
        c0, began = relay.cpu_seconds(), time.monotonic()
        sent = 0
        while (el := time.monotonic() - began) < secs:
            while sent < el * rate:
                k, v, h = notice(bench.signers["CN"], sent)
                await p.send(topics.outbound("CN"), v, key=k, headers=h)
                sent += 1
            await asyncio.sleep(0.005)
        await p.stop()
        await asyncio.sleep(1)
        print(f"at {rate}/s: {(relay.cpu_seconds()-c0)/sent*1000:.2f} ms CPU per notice ({sent} sent)", flush=True)
        relay.stop()
    shutil.rmtree(work, ignore_errors=True)

asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], float(sys.argv[4])))
