"""The throughput limit of this design in Python: the relay's irreducible work and nothing else.

Per record: verify the sender's Ed25519 signature, read the message under the contract (strict JSON and
the models), then write exactly the records the relay writes for a forward, built by the relay's own
:func:`~launchrelay.relay.outputs.plan` (the forward with its headers, a signed receipt, the status event
with the notice, the state record with the notice), in one transaction per fetch with the input offsets,
tuned as ``bare_pipe --tuned``, with the relay's collector settings. No agreement rules, no duplicate or
reference lookups, no per-partition producers, no stall watch: the relay is compared with this to see what
its decisions and its structure cost.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from launchrelay.agreements.config import load_config
from launchrelay.contract.codec import read
from launchrelay.contract.messages import PlannedLaunch
from launchrelay.contract.notice import Notice
from launchrelay.contract.outcomes import Outcome
from launchrelay.kafka.produce import send_all, set_concurrent_transactions_backoff
from launchrelay.relay.decide import Decision, RelayContext, forget_time
from launchrelay.relay.outputs import plan
from launchrelay.relay.service import inbound
from launchrelay.relay.state import SeenMessage, Src
from launchrelay.runtime.process import tune_gc
from launchrelay.signing import Signer, verify_headers
from launchrelay.topics import OutRecord


def outputs(ctx: RelayContext, signer: Signer, r: Any) -> list[OutRecord]:
    """What the relay writes for one valid forward of a planned launch, byte for byte."""
    record = inbound(r)
    owner = ctx.topics.owner_of(record.topic)
    assert owner is not None
    checked = verify_headers(record.value or b"", record.headers, ctx.keys[owner])
    assert checked, checked
    msg = read(record.value or b"").message
    assert isinstance(msg, PlannedLaunch), msg
    agreement = ctx.deployment.agreement(msg.agreement)
    assert agreement is not None
    notice = Notice.of(msg)
    text = notice.to_text()
    forget_at = forget_time(msg, record.received_at, notice, agreement, ctx.deployment.relay.remember_for)
    digest = hashlib.sha256(record.value or b"").hexdigest()
    seen = SeenMessage(sender=msg.sender, message_id=msg.message_id, digest=digest, message_type=msg.message_type,
                       agreement=msg.agreement, launch_key=msg.launch_key, recipients=tuple(msg.recipients),
                       outcome="forwarded", src=Src.of(record.ref), notice=text, forget_at=forget_at)  # fmt: skip
    decision = Decision(Outcome.FORWARDED, record, owner, seen.digest, message=msg, recipients=list(msg.recipients),
                        state_writes=[seen], agreement=agreement, notice=notice, notice_text=text)  # fmt: skip
    return plan(decision, ctx.topics, signer, "same-work", datetime.now(UTC))


async def main(args: argparse.Namespace) -> None:
    ctx = RelayContext.build(load_config(Path(os.environ["LAUNCHRELAY_CONFIG"])))
    signer = Signer.from_file("relay-bench", Path(args.relay_key))
    source = ctx.topics.outbound(args.sender)
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
            out = [o for rs in batch.values() for r in rs for o in outputs(ctx, signer, r)]
            async with producer.transaction():
                sends = await send_all(producer, out)
                await asyncio.gather(*sends, producer.send_offsets_to_transaction(offsets, args.group))
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--sender", default="CN")
    p.add_argument("--group", required=True)
    p.add_argument("--relay-key", required=True)
    asyncio.run(main(p.parse_args()))
