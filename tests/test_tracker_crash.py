"""Exactly one alert per deadline across tracker crashes: SIGKILL while deadlines are pending and firing."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from harness import Deploy, RelayProcess, cli, hdr, make_deploy, message, read_topic
from launchrelay.audit.verify import verify_statements
from launchrelay.clients.inbox import Inbox
from launchrelay.clients.publisher import Publisher
from launchrelay.ops.auditlog import read_log
from launchrelay.signing import public_key_from_b64
from launchrelay.tracker.auditlog import log_id
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.lifecycle import Delivery, DeliveryKind
from test_audit_relay import keep_the_log, party_view

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

SHORT = """
[agreements.CN-RU-2009]
ack_deadline = "PT5S"
retransmit = { every = "PT2S", max_attempts = 2 }
"""
NOTICES = 45


async def russia(deploy: Deploy, acked: set[str], stop: asyncio.Event) -> None:
    """RU's system until ``stop``: acknowledges the first copy of each notice in ``acked``, ignores the rest."""
    keys = {p: {s.key_id: s.private_key.public_key()} for p, s in deploy.signers.items()}
    async with Inbox(deploy.bootstrap, "RU", deploy.signers["RU"], sender_keys=keys, relay_keys={},
                     topic_prefix=deploy.prefix) as inbox:  # fmt: skip

        async def handle(item: Any) -> None:
            if item.message.message_id in acked and item.retransmission == 0:
                await inbox.acknowledge(item.message)

        await inbox.run(handle, stop)


def acks(ledger: SqliteLedger, message_id: str) -> list[Delivery]:
    """The acknowledgements a notice waits for (not the report its sender owes a day after the window)."""
    return [d for d in ledger.deliveries(f"CN/{message_id}") if d.kind is DeliveryKind.ACK]


async def test_tracker_killed_every_deadline_fires_exactly_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    """45 notices, a third acknowledged; the tracker is SIGKILLed three times while deadlines are pending and
    firing: afterwards each unacknowledged notice has exactly one overdue receipt and one overdue event, no
    retransmission is repeated, and no acknowledged notice is alerted. With the decision log kept, each alert is
    one leaf of the tracker's log (numbered without a gap through the kills), and CN's verifier finds every
    overdue receipt it was given in the log."""
    rng = random.Random(2010)
    deploy = await make_deploy(kafka_bootstrap, tmp_path, extra_config=SHORT)
    keep_the_log(deploy.config)
    relay = RelayProcess(deploy, "relay-tc").start()
    tracker = RelayProcess(deploy, "tracker-tc", command="tracker").start()
    proofs = RelayProcess(deploy, "proofs-tc", command="audit publish").start()
    notices = [message("CN", ["RU"]) for _ in range(NOTICES)]
    acked = {m.message_id for i, m in enumerate(notices) if i % 3 == 0}
    stop = asyncio.Event()
    try:
        await relay.wait("relay.started")
        await tracker.wait("tracker.started")

        ru = asyncio.create_task(russia(deploy, acked, stop))

        async def publish() -> None:
            async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix,
                                 watch_receipts=False) as cn:  # fmt: skip
                for m in notices:
                    await cn.publish(m)
                    await asyncio.sleep(0.2)

        publishing = asyncio.create_task(publish())
        for low, high in ((1.0, 3.0), (2.0, 5.0), (2.0, 5.0)):
            await asyncio.sleep(rng.uniform(low, high))
            tracker.kill()
            await asyncio.sleep(rng.uniform(0.5, 3.0))  # deadlines fall due while it is down
            tracker.start()
            await tracker.wait("tracker.started")
        await publishing

        ledger_path = deploy.dir / "ledger.sqlite"

        def settled() -> bool:
            ledger = SqliteLedger(ledger_path)
            try:
                states = [d.state.value for m in notices for d in acks(ledger, m.message_id)]
            finally:
                ledger.close()
            return len(states) == NOTICES and "pending" not in states

        async with asyncio.timeout(120):
            while not settled():
                await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # anything fired twice would show up now
        stop.set()
        await ru

        cn_in = await read_topic(deploy.bootstrap, deploy.topics.inbound("CN"), lambda rs: True)
        overdue = Counter(
            json.loads(r.value)["refers_to"] for r in cn_in
            if json.loads(r.value).get("outcome") == "acknowledgement_overdue"
        )  # fmt: skip
        status = await read_topic(deploy.bootstrap, deploy.topics.status, lambda rs: True)
        events = [json.loads(r.value) for r in status]
        overdue_events = Counter(e["message_id"] for e in events if e["kind"] == "acknowledgement_overdue")
        retx_events = Counter((e["message_id"], e["attempt"]) for e in events if e["kind"] == "retransmitted")
        ru_in = await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"), lambda rs: True)
        retx_records = Counter(
            (json.loads(r.value)["message_id"], int(hdr(r, "lr-retransmission") or 0)) for r in ru_in
            if hdr(r, "lr-retransmission")
        )  # fmt: skip

        unacked = [m.message_id for m in notices if m.message_id not in acked]
        assert {k: v for k, v in overdue.items() if v != 1} == {}, "an alert fired twice"
        assert sorted(overdue) == sorted(unacked), "every unacknowledged notice alerted, no acknowledged one"
        assert {k: v for k, v in overdue_events.items() if v != 1} == {}
        assert sorted(overdue_events) == sorted(unacked)
        assert all(v == 1 for v in retx_events.values()), "a retransmission event repeated"
        assert retx_records == retx_events, "each retransmission event matches exactly one re-sent record"
        assert tracker.starts == 4
        ledger = SqliteLedger(ledger_path)
        try:
            for m in notices:
                (d,) = acks(ledger, m.message_id)
                assert d.state.value == ("acknowledged" if m.message_id in acked else "timed_out")
        finally:
            ledger.close()

        # the decision log: one leaf per alert in the tracker's own log, 0..n-1, whatever the kills interrupted
        exported = await read_log(deploy.bootstrap, deploy.topics)
        mine = [s for s in exported if s["type"] == "leaf" and s["log"] == log_id(deploy.topics)]
        bodies = [json.loads(base64.b64decode(s["leaf"])) for s in mine]
        assert sorted(s["index"] for s in mine) == list(range(len(mine)))
        assert Counter(b["message_id"] for b in bodies) == Counter(unacked)
        assert {b["outcome"] for b in bodies} == {"acknowledgement_overdue"} and all(
            len(b["sha256"]) == 64 for b in bodies
        )
        # CN holds an overdue receipt for each; with its view of the log, each is proved to be in it
        view = await party_view(deploy, "CN", exported)
        keys = {deploy.relay_signer.key_id: public_key_from_b64(deploy.relay_signer.public_b64)}
        report = verify_statements(view, keys)
        overdue_told = [s for s in view if s["type"] == "receipt" and s["outcome"] == "acknowledgement_overdue"]
        assert report.problems == [] and len(overdue_told) == len(unacked), report.as_dict()
    finally:
        stop.set()
        relay.ensure_stopped()
        tracker.ensure_stopped()
        proofs.ensure_stopped()


async def test_a_corrupt_ledger_is_moved_aside_and_rebuilt_without_a_second_alert(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The ledger is a view of the status topic: a corrupt file is set aside with one ERROR line, the tracker
    rebuilds the same states from the topic, and no deadline alerts again; `status` meanwhile says what is
    wrong in one line."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path, extra_config=SHORT)
    relay = RelayProcess(deploy, "relay-lc").start()
    tracker = RelayProcess(deploy, "tracker-lc", command="tracker").start()
    notices = [message("CN", ["RU"]) for _ in range(6)]
    acked = {m.message_id for m in notices[:2]}
    ledger_path = deploy.dir / "ledger.sqlite"
    stop = asyncio.Event()

    def states() -> dict[str, str]:
        ledger = SqliteLedger(ledger_path)
        try:
            return {m.message_id: d.state.value for m in notices for d in acks(ledger, m.message_id)}
        finally:
            ledger.close()

    async def overdue_alerts() -> Counter[str]:
        cn_in = await read_topic(deploy.bootstrap, deploy.topics.inbound("CN"), lambda rs: True)
        bodies = [json.loads(r.value) for r in cn_in]
        return Counter(b["refers_to"] for b in bodies if b.get("outcome") == "acknowledgement_overdue")

    try:
        await relay.wait("relay.started")
        await tracker.wait("tracker.started")
        ru = asyncio.create_task(russia(deploy, acked, stop))
        async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix,
                             watch_receipts=False) as cn:  # fmt: skip
            for m in notices:
                await cn.publish(m)
        async with asyncio.timeout(120):
            while len(before := states()) < len(notices) or "pending" in before.values():
                await asyncio.sleep(0.5)
        stop.set()
        await ru
        alerts_before = await overdue_alerts()
        assert tracker.terminate() == 0

        with ledger_path.open("r+b") as f:  # the header and the first pages overwritten
            f.write(b"\xde\xad" * 4096)
        shown = cli(deploy.env("cli"), "status")
        assert shown.returncode == 2 and shown.stderr.count("\n") == 1 and "Traceback" not in shown.stderr
        assert f"the ledger {ledger_path} is corrupt" in shown.stderr and "rebuilds it" in shown.stderr

        tracker.start()
        corrupt = await tracker.wait("tracker.ledger_corrupt")
        assert corrupt["level"] == "error" and Path(corrupt["moved_to"]).exists()
        await tracker.wait("tracker.started")
        async with asyncio.timeout(60):
            while states() != before:
                await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # a deadline alerted again would show up now
        assert await overdue_alerts() == alerts_before
        assert sorted(alerts_before) == sorted(m.message_id for m in notices if m.message_id not in acked)
        assert cli(deploy.env("cli"), "status").returncode == 0
    finally:
        stop.set()
        relay.ensure_stopped()
        tracker.ensure_stopped()
