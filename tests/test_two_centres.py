"""Two centres, two clusters, MirrorMaker 2 between them: real brokers, real mirrors, real relays and trackers.

CN's centre and RU's each run their own single-node Kafka, relay and tracker, and the mirror for what they
receive. RU's centre is configured a little stricter than CN's (a 72-hour minimum lead where the preset says 24)
so that the two sides can disagree. Every check reads what the parties' systems would read."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from harness import assert_forwarded_once, iso, message, read_forwards, read_topic, source_of
from launchrelay.agreements.config import load_config
from launchrelay.audit.verify import verify_statements
from launchrelay.centres import LocalCentre, TwoCentres, centre_keys
from launchrelay.clients import Inbox, InboxItem, Publisher
from launchrelay.contract.messages import Acknowledgement, PartyMessage, Receipt
from launchrelay.errors import PublishError
from launchrelay.ops.auditlog import read_party
from launchrelay.signing import public_key_from_b64
from launchrelay.tracker import status
from launchrelay.tracker.ledger import SqliteLedger

pytestmark = [pytest.mark.kafka, pytest.mark.two_centres, pytest.mark.timeout(900)]

STRICTER_RU = """
[agreements.CN-RU-2009]
min_lead = "PT72H"
ack_deadline = "PT40S"
"""
CN_DEADLINE = """
[agreements.CN-RU-2009]
ack_deadline = "PT40S"
"""


@pytest.fixture(scope="module")
def centres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoCentres]:
    base = tmp_path_factory.mktemp("centres")
    tc = TwoCentres(base, centre_keys(base / "keys"), extra={"RU": STRICTER_RU, "CN": CN_DEADLINE}, decision_log=True)
    tc.start_brokers()
    try:
        asyncio.run(tc.make_topics())
        tc.start_mirrors()
        tc.start_services()
        yield tc
    finally:
        tc.stop()


def publisher(tc: TwoCentres) -> Publisher:
    cn = tc["CN"]
    relays = [tc.keys["relay-CN"], tc.keys["relay-RU"]]  # its own centre's receipts, and those RU's centre sends back
    return Publisher(cn.bootstrap, "CN", tc.keys["CN"], topic_prefix=tc.prefix,
                     relay_keys={r.key_id: public_key_from_b64(r.public_b64) for r in relays})  # fmt: skip


def inbox(tc: TwoCentres) -> Inbox:
    ru, cn_key, relay = tc["RU"], tc.keys["CN"], tc.keys["relay-RU"]
    return Inbox(ru.bootstrap, "RU", tc.keys["RU"], topic_prefix=tc.prefix,
                 sender_keys={"CN": {cn_key.key_id: public_key_from_b64(cn_key.public_b64)}},
                 relay_keys={relay.key_id: public_key_from_b64(relay.public_b64)})  # fmt: skip


async def publish_all(pub: Publisher, notices: list[PartyMessage], rate_per_s: float = 20.0) -> None:
    for m in notices:
        while True:
            try:
                await pub.publish(m, timeout_s=10)
                break
            except PublishError as exc:
                assert exc.retriable, exc
        await asyncio.sleep(1 / rate_per_s)


async def forwards_in(tc: TwoCentres, ids: set[str], timeout_s: float = 240) -> list[Any]:
    """Every forward on RU's in topic (RU's own cluster), once each of ``ids`` has arrived."""
    return await read_forwards(tc["RU"].bootstrap, f"{tc.prefix}.RU.in", ids, timeout_s)


def ledger_state(path: Path, message_id: str) -> dict[str, Any] | None:
    from datetime import UTC, datetime

    if not path.exists():
        return None
    ledger = SqliteLedger(path)
    try:
        return status.timeline(ledger, message_id, datetime.now(UTC))
    finally:
        ledger.close()


def restart_relay(centre: LocalCentre) -> None:
    """After a change to its config: the relay reads it when it starts."""
    centre.stop("relay")
    centre.start("relay")
    centre.wait_for("relay", "relay.partitions_assigned")


async def until(check: Any, timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        if check():
            return True
        await asyncio.sleep(0.5)
    return bool(check())


async def test_notices_cross_both_centres_and_acknowledgements_come_back(centres: TwoCentres) -> None:
    """CN publishes to its own centre; RU's system reads its own centre and acknowledges. Each notice is verified
    by both relays, reaches RU once and in order per launch; CN sees its own centre's receipt, RU's centre's receipt
    (signed by RU's relay) and RU's acknowledgement, and CN's tracker records the acknowledgement."""
    tc = centres
    notices: list[PartyMessage] = []
    for n in range(10):
        first = message("CN", ["RU"], lead=timedelta(days=5))  # past RU's stricter 72 hours too
        notices.append(first)
        # an amendment of the same launch right after: RU must see them in this order
        notices.append(message("CN", ["RU"], message_type="amendment", refers_to=first.message_id,
                               launch_key=first.launch_key, reason={"en": f"moved {n}"},
                               window={"start": iso(timedelta(days=6)), "end": iso(timedelta(days=7))}))  # fmt: skip
    ids = {m.message_id for m in notices}
    planned = [m.message_id for m in notices if m.message_type == "planned_launch"]
    stop = asyncio.Event()
    acked: set[str] = set()
    async with inbox(tc) as ru:

        async def acknowledge(item: InboxItem) -> None:
            msg = item.message
            if isinstance(msg, Receipt | Acknowledgement) or msg.message_type != "planned_launch":
                return
            await ru.acknowledge(msg)  # type: ignore[arg-type]
            acked.add(msg.message_id)

        reading = asyncio.create_task(ru.run(acknowledge, stop))
        async with publisher(tc) as cn:
            await publish_all(cn, notices)
            for m in notices:  # the first receipt is CN's own centre's: it accepted each
                first_receipt = await cn.wait_receipt(m.message_id, 60)
                assert (first_receipt.outcome, first_receipt.issued_by) == ("forwarded", "relay-cn")
        records = await forwards_in(tc, ids)
        assert_forwarded_once(records, ids)
        order = defaultdict(list)
        for r in sorted((r for r in records if source_of(r)), key=lambda r: (r.partition, r.offset)):
            body = json.loads(r.value)
            order[body["launch_key"]].append(body["message_type"])
        assert all(v == ["planned_launch", "amendment"] for v in order.values()), order
        assert await until(lambda: set(planned) <= acked, 120)
        stop.set()
        await reading

    cn_in = await read_topic(tc["CN"].bootstrap, f"{tc.prefix}.CN.in",
                             lambda rs: len(rs) >= 2 * len(ids) + len(planned), timeout_s=180)  # fmt: skip
    receipts: dict[str, set[str]] = defaultdict(set)
    acks = set()
    for r in cn_in:
        body = json.loads(r.value)
        if body["message_type"] == "receipt":
            receipts[body["refers_to"]].add(body["issued_by"])
        elif body["message_type"] == "acknowledgement":
            acks.add(body["refers_to"])
    both = {"relay-cn", "relay-ru"}
    assert all(receipts[i] == both for i in ids), "each notice: a receipt from each centre's relay"
    assert set(planned) <= acks
    ledger = tc["CN"].ledger
    assert await until(lambda: all((ledger_state(ledger, i) or {}).get("state") == "acknowledged"
                                   for i in planned), 60)  # fmt: skip
    view = ledger_state(ledger, planned[0])
    assert view is not None and "received_there" in [e["event"] for e in view["timeline"]]


async def test_each_party_checks_both_centres_logs(centres: TwoCentres) -> None:
    """Issue 29 between centres: each centre keeps its decision log and proves it to both parties, a linked one's
    view crossing beside the link (RU's mirror copies CN's proofs for RU, and CN's copies RU's). Each party's
    own fetch holds both centres' heads and proofs; with both relays' public keys its verifier finds each
    notice it was told of in both centres' logs, and no split view or rewrite."""
    tc = centres
    notices = [message("CN", ["RU"], lead=timedelta(days=5)) for _ in range(4)]
    ids = {m.message_id for m in notices}
    async with publisher(tc) as cn:
        await publish_all(cn, notices)
    await forwards_in(tc, ids)
    keys = {k.key_id: public_key_from_b64(k.public_b64) for k in (tc.keys["relay-CN"], tc.keys["relay-RU"])}

    async def view_of(party: str) -> list[dict[str, Any]]:
        """What ``party`` holds once it has proofs of each new notice from both centres' logs."""
        centre = tc[party]
        topics = load_config(centre.config).topics
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            held = await read_party(centre.bootstrap, topics, party)
            proved: dict[str, set[str]] = defaultdict(set)
            for s in held:
                if s["type"] == "inclusion":
                    body = json.loads(base64.b64decode(s["leaf"]))
                    proved[body["message_id"]].add(s["log"])
            logs = {i: proved[i] for i in ids}
            if all(len(v) >= 2 for v in logs.values()):  # the sender's centre's log, and the receiver's
                return held
            assert asyncio.get_running_loop().time() < deadline, f"{party}: proofs so far {logs}"
            await asyncio.sleep(1)

    for party in ("CN", "RU"):
        held = await view_of(party)
        report = verify_statements(held, keys)
        assert report.problems == [], (party, report.as_dict()["problems"][:5])
        assert report.checked["inclusion"] > 0 and report.checked["receipts"] >= len(ids)
        heads_from = {s["key_id"] for s in held if s["type"] == "tree_head"}
        assert heads_from == set(keys), f"{party} holds heads of both centres' relays"


async def test_a_notice_not_acknowledged_is_sent_again_across_the_link(centres: TwoCentres) -> None:
    """CN's tracker re-sends a notice RU does not acknowledge (here every 6 s, twice): each attempt, the original
    bytes marked with its number, crosses the link, is verified again by RU's relay and reaches RU's system once;
    CN's ledger counts both re-sends and, past the deadline, says overdue."""
    tc = centres
    cn, ru = tc["CN"], tc["RU"]
    resend = CN_DEADLINE + 'retransmit = { every = "PT6S", max_attempts = 2 }\n'
    cn.write(ru.bootstrap, resend)
    await asyncio.to_thread(restart_relay, cn)  # the relay's forward carries the agreement's re-send schedule
    try:
        notice = message("CN", ["RU"], lead=timedelta(days=5))
        async with publisher(tc) as pub:
            await pub.publish(notice)

        def copies(rs: list[Any]) -> list[Any]:
            return [r for r in rs if source_of(r) and json.loads(r.value)["message_id"] == notice.message_id]

        ru_in = await read_topic(ru.bootstrap, f"{tc.prefix}.RU.in", lambda rs: len(copies(rs)) >= 3, timeout_s=120)
        await asyncio.sleep(5)  # a fourth copy (a repeat forwarded again) would show by now
        ru_in = await read_topic(ru.bootstrap, f"{tc.prefix}.RU.in", lambda rs: True, timeout_s=30)
        got = copies(ru_in)
        attempts = [dict(r.headers).get("lr-retransmission") for r in got]
        assert attempts == [None, b"1", b"2"], attempts
        assert {r.value for r in got} == {got[0].value}, "the original bytes each time"
        assert await until(lambda: (ledger_state(cn.ledger, notice.message_id) or {}).get("state") == "overdue", 90)
        view = ledger_state(cn.ledger, notice.message_id)
        assert view is not None and [e["event"] for e in view["timeline"]].count("retransmitted") == 2
    finally:
        cn.write(ru.bootstrap, CN_DEADLINE)
        await asyncio.to_thread(restart_relay, cn)


async def test_when_the_two_sides_disagree_both_see_it(centres: TwoCentres) -> None:
    """A notice 48 hours ahead: CN's centre (24 h minimum) forwards it, RU's (72 h) refuses it. RU's centre records
    the refusal and keeps the dead letter; CN gets RU's centre's signed refusal with its reasons, CN's ledger says
    "refused_there" and the disagreement counter moves; RU's system never receives it."""
    tc = centres
    short = message("CN", ["RU"], window={"start": iso(timedelta(hours=48)), "end": iso(timedelta(hours=60))})
    async with publisher(tc) as cn:
        await cn.publish(short)
        mine = await cn.wait_receipt(short.message_id, 60)
        assert (mine.outcome, mine.issued_by) == ("forwarded", "relay-cn")  # CN's own verdict
    ledger = tc["CN"].ledger
    assert await until(lambda: (ledger_state(ledger, short.message_id) or {}).get("state") == "refused_there", 120)
    view = ledger_state(ledger, short.message_id)
    assert view is not None
    refusal = next(e for e in view["timeline"] if e["event"] == "refused_there")
    assert "LEAD_TIME_TOO_SHORT" in json.dumps(refusal)
    there = ledger_state(tc["RU"].ledger, short.message_id)
    assert there is not None and there["state"] == "rejected"
    cn_in = await read_topic(tc["CN"].bootstrap, f"{tc.prefix}.CN.in",
                             lambda rs: any(short.message_id in r.value.decode() and b"relay-ru" in r.value
                                            for r in rs), timeout_s=60)  # fmt: skip
    theirs = [json.loads(r.value) for r in cn_in if short.message_id in r.value.decode() and b"relay-ru" in r.value]
    assert theirs[0]["outcome"] == "rejected" and theirs[0]["reasons"][0]["code"] == "LEAD_TIME_TOO_SHORT"
    relay_log = tc["CN"].log("relay").read_text()
    assert '"relay.refused_there"' in relay_log
    ru_in = await read_topic(tc["RU"].bootstrap, f"{tc.prefix}.RU.in", lambda rs: True, timeout_s=30)
    assert not any(short.message_id in r.value.decode() for r in ru_in)


async def test_nothing_lost_or_doubled_across_the_link_through_faults(centres: TwoCentres) -> None:
    """CN keeps publishing (10 a second for 70 s, one Publisher throughout) while RU's mirror is SIGKILLed and
    restarted, RU's relay is SIGKILLed and restarted, the link is cut (RU's mirror stopped) for 12 s, CN's
    cluster is stopped and started, then RU's: every notice reaches RU's system exactly once and in order per
    launch; the mirror's repeats are absorbed by RU's relay."""
    tc = centres
    ru = tc["RU"]
    assert ru.mirror is not None
    notices = [message("CN", ["RU"], lead=timedelta(days=5), launch_key=f"CN-F{n % 20}") for n in range(700)]
    ids = {m.message_id for m in notices}

    async def faults() -> None:
        assert ru.mirror is not None
        await asyncio.sleep(3)
        await asyncio.to_thread(ru.mirror.kill)  # mid-copy: what it copied but had not recorded comes again
        await asyncio.sleep(2)
        ru.mirror.launch()
        await asyncio.to_thread(ru.mirror.wait_ready, 180)
        ru.kill("relay")  # mid-transaction
        await asyncio.sleep(1)
        ru.start("relay")
        await asyncio.to_thread(ru.wait_for, "relay", "relay.partitions_assigned")
        await asyncio.to_thread(ru.mirror.stop)  # the link is cut while CN keeps publishing
        await asyncio.sleep(12)
        ru.mirror.launch()
        await asyncio.to_thread(ru.mirror.wait_ready, 180)
        cn = tc["CN"]  # the sender's whole cluster goes away and comes back under everything reading it
        await asyncio.to_thread(cn.broker.stop)
        await asyncio.sleep(5)
        await asyncio.to_thread(cn.broker.start)
        await asyncio.sleep(3)  # and then the receiver's: under RU's relay, the mirror writing into it, RU's reader
        await asyncio.to_thread(ru.broker.stop)
        await asyncio.sleep(5)
        await asyncio.to_thread(ru.broker.start)

    async with publisher(tc) as cn:
        broken = asyncio.create_task(faults())
        await publish_all(cn, notices, rate_per_s=10)
        await broken
    records = await forwards_in(tc, ids, timeout_s=300)
    assert_forwarded_once(records, ids)
    per_launch: dict[bytes, list[int]] = defaultdict(list)
    sent_order = {m.message_id: i for i, m in enumerate(notices)}
    for r in sorted((r for r in records if source_of(r)), key=lambda r: (r.partition, r.offset)):
        body = json.loads(r.value)
        if body["message_id"] in ids:
            per_launch[r.key].append(sent_order[body["message_id"]])
    assert all(v == sorted(v) for v in per_launch.values()), "order per launch kept across the link"


@pytest.mark.slow
async def test_a_link_cut_for_minutes_loses_nothing(centres: TwoCentres) -> None:
    """The long version (make test-slow): the link is cut for three minutes while CN publishes two a second; when
    it returns, every notice reaches RU once, in order per launch, and RU's relay logs the link as silent and heard
    again."""
    tc = centres
    ru = tc["RU"]
    assert ru.mirror is not None
    notices = [message("CN", ["RU"], lead=timedelta(days=5), launch_key=f"CN-S{n % 10}") for n in range(420)]
    ids = {m.message_id for m in notices}
    await asyncio.to_thread(ru.mirror.stop)
    try:
        async with publisher(tc) as cn:
            await publish_all(cn, notices, rate_per_s=2)
    finally:
        ru.mirror.launch()
        await asyncio.to_thread(ru.mirror.wait_ready, 180)
    records = await forwards_in(tc, ids, timeout_s=300)
    assert_forwarded_once(records, ids)
    # the relay looks at its links every few seconds: "heard" follows the first records back within one look
    await asyncio.to_thread(ru.wait_for, "relay", '"relay.link_heard"', 30)
    assert '"relay.link_silent"' in ru.log("relay").read_text()
