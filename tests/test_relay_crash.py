"""Exactly once under crashes and rebalances: every input ends once as a forward or once as a rejection.

Real broker, real relay processes, real SIGKILLs at random moments while a
publisher keeps writing a mix of valid and invalid messages.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from exactly_once import Source, assert_exactly_once, mixed_inputs, outcomes, publish, publish_through_kills
from harness import RelayProcess, make_deploy

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]


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
    inputs = mixed_inputs(deploy, messages, rng)
    sent: dict[Source, str | None] = {}
    relay = RelayProcess(deploy, "relay-crash").start()
    try:
        await relay.wait("relay.partitions_assigned")
        await publish_through_kills(deploy, relay, inputs, rate, sent, kills, rng)
        forwards, deads, kind, receipts, events = await outcomes(deploy, len(sent))
        assert relay.starts == kills + 1
        assert_exactly_once(sent, forwards, deads, kind, receipts, events)
        assert sum(1 for e in sent.values() if e == "forward") > messages / 2
    finally:
        relay.ensure_stopped()


async def test_two_relays_one_restarted_midway(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two relay processes share the work; one is stopped and restarted midway: each input ends exactly once."""
    rng = random.Random(1988)
    deploy = await make_deploy(kafka_bootstrap, tmp_path)
    inputs = mixed_inputs(deploy, 1500, rng)
    sent: dict[Source, str | None] = {}
    a = RelayProcess(deploy, "relay-a").start()
    b = RelayProcess(deploy, "relay-b").start()
    try:
        await a.wait("relay.partitions_assigned")
        await b.wait("relay.started")
        publishing = asyncio.create_task(publish(deploy, inputs, rate_per_s=150, sent=sent))
        await asyncio.sleep(4)
        assert b.terminate() == 0
        await asyncio.sleep(3)
        b.start()
        await b.wait("relay.started")
        await asyncio.sleep(3)
        a.kill()  # and the other one dies hard while it holds partitions
        await publishing
        forwards, deads, kind, receipts, events = await outcomes(deploy, len(sent))
        assert_exactly_once(sent, forwards, deads, kind, receipts, events)
        worked = {e.get("relay_id") for p in (a, b) for e in p.events()
                  if e.get("event") == "relay.committed" and e.get("forwarded")}  # fmt: skip
        assert worked == {"relay-a", "relay-b"}, "both instances took part"
    finally:
        a.ensure_stopped()
        b.ensure_stopped()
