"""The Python client's limit: consume -> produce with aiokafka, no validation; optionally transactional."""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def main(args: argparse.Namespace) -> None:
    consumer = AIOKafkaConsumer(
        args.source, bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=500,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True,
        transactional_id=f"{args.group}-tx" if args.transactions else None, linger_ms=5,
    )  # fmt: skip
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
            if args.transactions:
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
    asyncio.run(main(p.parse_args()))
