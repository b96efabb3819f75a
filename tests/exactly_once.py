"""What the exactly-once tests share: a mix of valid and invalid inputs, a publisher that records where each
landed, and the accounting that every input ended exactly once (forwarded or rejected, one receipt, one event)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from harness import Deploy, RelayProcess, message, read_topic, source_of
from launchrelay.contract import encode

Source = tuple[str, int, int]


def mixed_inputs(
    deploy: Deploy, n: int, rng: random.Random
) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]], str | None]]:
    """(party, key, value, headers, expected) for n messages; expected None where order across topics decides."""
    out: list[tuple[str, bytes, bytes, list[tuple[str, bytes]], str | None]] = []
    forwarded: list = []
    for i in range(n):
        party, other = ("CN", "RU") if i % 2 == 0 else ("RU", "CN")
        signer = deploy.signers[party]
        roll = rng.random()
        if roll < 0.60:
            m = message(party, [other])
            forwarded.append(m)
            raw = encode(m)
            out.append((party, m.launch_key.encode(), raw, signer.headers(raw), "forward"))
        elif roll < 0.70 and forwarded:
            ref = rng.choice(forwarded[-50:])
            if ref.sender == party:
                m = message(
                    party,
                    [other],
                    message_type="amendment",
                    refers_to=ref.message_id,
                    launch_key=ref.launch_key,
                    direction={"sector": "NE"},
                )
                expected = "forward"
            else:  # an acknowledgement: whether its notice was forwarded first depends on timing
                m = message(
                    party, [other], message_type="acknowledgement", refers_to=ref.message_id, launch_key=ref.launch_key
                )
                expected = None
            raw = encode(m)
            out.append((party, m.launch_key.encode(), raw, signer.headers(raw), expected))
        elif roll < 0.78:
            out.append((party, b"junk", f"not json {i}".encode(), [], "reject"))
        elif roll < 0.86:
            raw = encode(message(party, [other]))
            out.append((party, b"bad-sig", raw, signer.headers(raw + b"x"), "reject"))
        elif roll < 0.93:
            raw = encode(message(party, [other], lead=timedelta(hours=2)))
            out.append((party, b"late", raw, signer.headers(raw), "reject"))
        else:
            raw = encode(message(party, [other], vehicle={"category": "icbm", "generic_class": "x", "range_km": 900.0}))
            out.append((party, b"scope", raw, signer.headers(raw), "reject"))
    return out


async def publish(deploy: Deploy, inputs: list, rate_per_s: float, sent: dict[Source, str | None]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=deploy.bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        chunk = max(1, int(rate_per_s / 10))
        for start in range(0, len(inputs), chunk):
            futures = []
            for party, key, value, headers, expected in inputs[start : start + chunk]:
                fut = await producer.send(deploy.topics.outbound(party), value=value, key=key, headers=headers)
                futures.append((fut, expected))
            for fut, expected in futures:
                meta = await fut
                sent[(meta.topic, meta.partition, meta.offset)] = expected
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


async def publish_through_kills(
    deploy: Deploy,
    relay: RelayProcess,
    inputs: list,
    rate_per_s: float,
    sent: dict[Source, str | None],
    kills: int,
    rng: random.Random,
    pause_s: tuple[float, float] = (2.0, 6.0),
) -> None:
    """Publish ``inputs`` while ``relay`` is SIGKILLed ``kills`` times, each after a random pause in ``pause_s`` and
    restarted at once (until it holds partitions again)."""
    publishing = asyncio.create_task(publish(deploy, inputs, rate_per_s=rate_per_s, sent=sent))
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(*pause_s))
        relay.kill()
        relay.start()
        await relay.wait("relay.partitions_assigned", 90)
    await publishing


async def outcomes(
    deploy: Deploy, expect: int
) -> tuple[Counter[Source], Counter[Source], dict[Source, str], Counter[Source], Counter[Source]]:
    """Forwards and dead letters per source, read_committed, once at least ``expect`` sources are accounted for."""
    in_topics = [deploy.topics.inbound(p) for p in ("CN", "RU")]

    async def read_all() -> tuple[list[ConsumerRecord], list[ConsumerRecord], list[ConsumerRecord]]:
        dead = await read_topic(deploy.bootstrap, deploy.topics.deadletter, lambda rs: True, timeout_s=120)
        fwd: list[ConsumerRecord] = []
        for t in in_topics:
            fwd += await read_topic(deploy.bootstrap, t, lambda rs: True, timeout_s=120)
        status = await read_topic(deploy.bootstrap, deploy.topics.status, lambda rs: True, timeout_s=120)
        return dead, fwd, status

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 300
    while True:
        dead, fwd, status = await read_all()
        forwards = Counter(source_of(r) for r in fwd if source_of(r) is not None)
        deads = Counter(source_of(r) for r in dead)
        if len(set(forwards) | set(deads)) >= expect or loop.time() > deadline:
            break
        await asyncio.sleep(2)
    kind = {s: "forward" for s in forwards} | {s: "reject" for s in deads}
    receipts: Counter[Source] = Counter()
    for r in fwd:
        body = json.loads(r.value) if source_of(r) is None else {}
        # the relay's verdicts; the tracker's overdue notices name the same source but are not a decision
        verdict = body.get("outcome") in ("forwarded", "rejected", "duplicate")
        if body.get("message_type") == "receipt" and body.get("source") and verdict:
            src = body["source"]
            receipts[(src["topic"], src["partition"], src["offset"])] += 1
    events: Counter[Source] = Counter()
    for r in status:
        src = json.loads(r.value).get("source")  # the relay's decisions; the tracker's own events have none
        if src is not None:
            events[(src["topic"], src["partition"], src["offset"])] += 1
    return forwards, deads, kind, receipts, events


def assert_exactly_once(
    sent: dict[Source, str | None], forwards: Counter, deads: Counter, kind: dict, receipts: Counter, events: Counter
) -> None:
    both = set(forwards) & set(deads)
    assert not both, f"{len(both)} inputs were both forwarded and rejected"
    doubled = [s for s, c in (forwards + deads).items() if c > 1]
    assert not doubled, f"{len(doubled)} inputs ended more than once, e.g. {doubled[:3]}"
    lost = [s for s in sent if s not in kind]
    assert not lost, f"{len(lost)} inputs were lost, e.g. {lost[:3]}"
    strays = [s for s in kind if s not in sent]
    assert not strays, f"{len(strays)} outputs have no input"
    wrong = [s for s, exp in sent.items() if exp is not None and kind[s] != exp]
    assert not wrong, f"{len(wrong)} inputs had the wrong outcome, e.g. {wrong[:3]}"
    assert all(receipts[s] == 1 for s in sent), "every input gets exactly one receipt"
    assert all(events[s] == 1 for s in sent), "every input gets exactly one status event"
