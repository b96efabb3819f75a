"""Exactly once under crashes and rebalances: every input ends once as a forward or once as a rejection.

Real broker, real relay processes, real SIGKILLs at random moments while a
publisher keeps writing a mix of valid and invalid messages.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from harness import Deploy, RelayProcess, make_deploy, message, read_topic, source_of
from launchrelay.contract import encode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

Source = tuple[str, int, int]


def _inputs(
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


async def _publish(deploy: Deploy, inputs: list, rate_per_s: float, sent: dict[Source, str | None]) -> None:
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


async def _outcomes(
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
        if body.get("message_type") == "receipt" and body.get("source"):
            src = body["source"]
            receipts[(src["topic"], src["partition"], src["offset"])] += 1
    events: Counter[Source] = Counter()
    for r in status:
        src = json.loads(r.value)["source"]
        events[(src["topic"], src["partition"], src["offset"])] += 1
    return forwards, deads, kind, receipts, events


def _assert_exactly_once(
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


@pytest.mark.parametrize(
    ("messages", "kills", "rate"),
    [
        pytest.param(1500, 3, 120, id="1500-messages-3-kills"),
        # the outside audit's run: make test-slow
        pytest.param(20_000, 12, 250, id="20000-messages-12-kills", marks=pytest.mark.slow),
    ],
)
async def test_sigkill_nothing_lost_nothing_doubled(
    kafka_bootstrap: str, tmp_path: Path, messages: int, kills: int, rate: int
) -> None:
    """Mixed messages while the relay is SIGKILLed at random moments: each input ends exactly once."""
    rng = random.Random(20091013)
    deploy = await make_deploy(kafka_bootstrap, tmp_path)
    inputs = _inputs(deploy, messages, rng)
    sent: dict[Source, str | None] = {}
    relay = RelayProcess(deploy, "relay-crash").start()
    try:
        await relay.wait("relay.partitions_assigned")
        publishing = asyncio.create_task(_publish(deploy, inputs, rate_per_s=rate, sent=sent))
        for _ in range(kills):
            await asyncio.sleep(rng.uniform(2.0, 6.0))
            relay.kill()
            relay.start()
            await relay.wait("relay.partitions_assigned", 90)
        await publishing
        forwards, deads, kind, receipts, events = await _outcomes(deploy, len(sent))
        assert relay.starts == kills + 1
        _assert_exactly_once(sent, forwards, deads, kind, receipts, events)
        assert sum(1 for e in sent.values() if e == "forward") > messages / 2
    finally:
        relay.ensure_stopped()


async def test_two_relays_one_restarted_midway(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two relay processes share the work; one is stopped and restarted midway: each input ends exactly once."""
    rng = random.Random(1988)
    deploy = await make_deploy(kafka_bootstrap, tmp_path)
    inputs = _inputs(deploy, 1500, rng)
    sent: dict[Source, str | None] = {}
    a = RelayProcess(deploy, "relay-a").start()
    b = RelayProcess(deploy, "relay-b").start()
    try:
        await a.wait("relay.partitions_assigned")
        await b.wait("relay.started")
        publishing = asyncio.create_task(_publish(deploy, inputs, rate_per_s=150, sent=sent))
        await asyncio.sleep(4)
        assert b.terminate() == 0
        await asyncio.sleep(3)
        b.start()
        await b.wait("relay.started")
        await asyncio.sleep(3)
        a.kill()  # and the other one dies hard while it holds partitions
        await publishing
        forwards, deads, kind, receipts, events = await _outcomes(deploy, len(sent))
        _assert_exactly_once(sent, forwards, deads, kind, receipts, events)
        worked = {e.get("relay_id") for p in (a, b) for e in p.events()
                  if e.get("event") == "relay.committed" and e.get("forwarded")}  # fmt: skip
        assert worked == {"relay-a", "relay-b"}, "both instances took part"
    finally:
        a.ensure_stopped()
        b.ensure_stopped()
