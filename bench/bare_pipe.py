"""The Python client's limit: consume -> produce with aiokafka, no validation; optionally transactional.

``--tuned`` is the latency floor the relay is measured against: a 10 ms fetch wait (so no partition's
new data waits on another's fetch), no linger, the offsets sent while the records are in flight, short
retry backoffs and the relay's CONCURRENT_TRANSACTIONS wait. Without it, aiokafka's defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from launchrelay.kafka.produce import send_all, set_concurrent_transactions_backoff
from launchrelay.topics import OutRecord


async def main(args: argparse.Namespace) -> None:
    tuned = {"fetch_max_wait_ms": 10} if args.tuned else {}
    consumer = AIOKafkaConsumer(
        args.source, bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=500, **tuned,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True,
        transactional_id=f"{args.group}-tx" if args.transactions else None,
        **({"linger_ms": 0, "retry_backoff_ms": 5, "max_batch_size": 256 * 1024} if args.tuned else {"linger_ms": 5}),
    )  # fmt: skip
    if args.tuned:
        set_concurrent_transactions_backoff(0.005)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            if args.transactions and args.tuned:
                async with producer.transaction():
                    out = (OutRecord(args.sink, r.key, r.value, []) for rs in batch.values() for r in rs)
                    sends = await send_all(producer, out)
                    await asyncio.gather(*sends, producer.send_offsets_to_transaction(offsets, args.group))
            elif args.transactions:
                async with producer.transaction():
                    futs = [await producer.send(args.sink, r.value, key=r.key) for rs in batch.values() for r in rs]
                    await asyncio.gather(*futs)
                    await producer.send_offsets_to_transaction(offsets, args.group)
            else:
                futs = [await producer.send(args.sink, r.value, key=r.key) for rs in batch.values() for r in rs]
                await asyncio.gather(*futs)
                await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--transactions", action="store_true")
    p.add_argument("--tuned", action="store_true")
    asyncio.run(main(p.parse_args()))
