"""The throughput limit of this design in Python: the relay's irreducible work and nothing else.

Per record: verify the sender's Ed25519 signature, validate the message with the contract's models,
then write what the relay writes for a forward (the forward with its headers, a signed receipt, a
status event, a state record) in one transaction per fetch with the input offsets, tuned as
``bare_pipe --tuned``, with the relay's collector settings. No agreement rules, no state lookups, no per-partition producers, no stall
watch: the relay is compared with this to see what its own structure costs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from launchrelay.broker.produce import send_all, set_concurrent_transactions_backoff
from launchrelay.contract import decode
from launchrelay.contract.codec import encode_fast
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.headers import from_record
from launchrelay.contract.messages import Receipt, ReceiptOutcome, RecordRef
from launchrelay.relay.state import SeenMessage, Src
from launchrelay.runtime.process import tune_gc
from launchrelay.signing import Signer, public_key_from_b64, verify_headers
from launchrelay.topics import OutRecord, Topics


def outputs(topics: Topics, signer: Signer, keys: dict[str, Ed25519PublicKey], r: Any) -> list[OutRecord]:
    """What the relay writes for one valid forward: forward, signed receipt, status event, state record."""
    headers = from_record(r.headers)
    checked = verify_headers(r.value, headers, keys)
    assert checked, checked
    msg = decode(r.value)
    src = RecordRef(topic=r.topic, partition=r.partition, offset=r.offset)
    now = datetime.now(UTC)
    receipt = Receipt(message_id=f"rcpt-{src}", issued_by="same-work", recipient=msg.sender,
                      outcome=ReceiptOutcome.FORWARDED, created_at=now, refers_to=msg.message_id,
                      agreement=msg.agreement, launch_key=msg.launch_key, forwarded_to=list(msg.recipients),
                      source=src)  # fmt: skip
    body = encode_fast(receipt)
    event = StatusEvent(event_id=f"evt-{src}", kind=EventKind.FORWARDED, at=now, source=src,
                        message_id=msg.message_id, message_type=msg.message_type, agreement=msg.agreement,
                        sender=msg.sender, recipients=list(msg.recipients), launch_key=msg.launch_key)  # fmt: skip
    seen = SeenMessage(sender=msg.sender, message_id=msg.message_id, digest="0" * 64,
                       message_type=msg.message_type, agreement=msg.agreement, launch_key=msg.launch_key,
                       recipients=tuple(msg.recipients), outcome="forwarded", src=Src.of(src))  # fmt: skip
    key = msg.launch_key.encode()
    return [
        *(OutRecord(topics.inbound(p), key, r.value, headers) for p in msg.recipients),
        OutRecord(topics.inbound(msg.sender), key, body, signer.headers(body)),
        OutRecord(topics.status, key, encode_fast(event), []),
        OutRecord(topics.relay_state, seen.key.encode(), seen.to_bytes(), []),
    ]


async def main(args: argparse.Namespace) -> None:
    topics = Topics(args.prefix)
    signer = Signer.from_file("relay-bench", Path(args.relay_key))
    keys = {args.key_id: public_key_from_b64(args.public_key)}
    source = topics.outbound(args.sender)
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=200, fetch_max_wait_ms=10,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=True,
                                transactional_id=f"{args.group}-tx", linger_ms=0, retry_backoff_ms=5,
                                max_batch_size=256 * 1024)  # fmt: skip
    set_concurrent_transactions_backoff(0.005)
    await consumer.start()
    await producer.start()
    tune_gc()  # the relay's collector settings, so the comparison is of the work, not of the collector
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            if not batch:
                continue
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            out = [o for rs in batch.values() for r in rs for o in outputs(topics, signer, keys, r)]
            async with producer.transaction():
                sends = await send_all(producer, out)
                await asyncio.gather(*sends, producer.send_offsets_to_transaction(offsets, args.group))
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--sender", default="CN")
    p.add_argument("--group", required=True)
    p.add_argument("--relay-key", required=True)
    p.add_argument("--key-id", required=True, help="the sender's key id")
    p.add_argument("--public-key", required=True, help="the sender's public key (base64)")
    asyncio.run(main(p.parse_args()))
