"""The relay against a real broker and a real relay process: forwards, receipts, rejections, order.

One relay process and one deployment (own topic prefix) serve this module; each
test publishes its own messages and finds its outcomes by message id or by the
source offset the relay records in every output.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from harness import Deploy, RelayProcess, hdr, make_deploy, message, read_topic, source_of
from launchrelay.clients.publisher import Publisher, PublishResult
from launchrelay.contract import Receipt, decode, encode
from launchrelay.contract.events import StatusEvent
from launchrelay.contract.messages import PartyMessage
from launchrelay.kafka.produce import partition_for
from launchrelay.signing import Signer, public_key_from_b64, verify
from test_decide import seen

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def deploy(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Deploy:
    return asyncio.run(make_deploy(kafka_bootstrap, tmp_path_factory.mktemp("relay"), max_bytes=16384))


@pytest.fixture(scope="module")
def relay(deploy: Deploy) -> Iterator[RelayProcess]:
    proc = RelayProcess(deploy, "relay-m").start()
    try:
        proc.wait_for("relay.partitions_assigned")
        yield proc
    finally:
        proc.ensure_stopped()


def publisher(deploy: Deploy, party: str) -> Publisher:
    return Publisher(
        deploy.bootstrap,
        party,
        deploy.signers[party],
        topic_prefix=deploy.prefix,
        relay_keys={"relay-test": deploy.relay_signer.private_key.public_key()},
    )


async def records_for(deploy: Deploy, topic: str, message_id: str, n: int = 1) -> list[ConsumerRecord]:
    def mine(records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        return [r for r in records if json.loads(r.value).get("message_id") == message_id]

    return mine(await read_topic(deploy.bootstrap, topic, lambda rs: len(mine(rs)) >= n))


async def dead_letter_of(deploy: Deploy, sent: PublishResult) -> ConsumerRecord:
    src = (sent.topic, sent.partition, sent.offset)
    records = await read_topic(
        deploy.bootstrap, deploy.topics.deadletter, lambda rs: any(source_of(r) == src for r in rs)
    )
    return next(r for r in records if source_of(r) == src)


async def receipt_of(deploy: Deploy, party: str, sent: PublishResult) -> Receipt:
    def find(records: list[ConsumerRecord]) -> list[Receipt]:
        out = []
        for r in records:
            body = json.loads(r.value)
            src = body.get("source") or {}
            if body.get("message_type") == "receipt" and (
                src.get("topic"),
                src.get("partition"),
                src.get("offset"),
            ) == (
                sent.topic,
                sent.partition,
                sent.offset,
            ):
                # the relay signs its receipts
                assert verify(deploy.relay_signer.private_key.public_key(), r.value, hdr(r, "lr-signature") or b"")
                out.append(decode(r.value))
        return out  # type: ignore[return-value]

    records = await read_topic(deploy.bootstrap, deploy.topics.inbound(party), lambda rs: bool(find(rs)))
    found = find(records)
    assert len(found) == 1, f"expected one receipt, got {len(found)}"
    return found[0]


async def assert_rejected(
    deploy: Deploy, party: str, sent: PublishResult, raw: bytes, code: str, *, outcome: str = "rejected"
) -> Receipt:
    """The record is in the dead-letter topic byte for byte, with its source and reasons, and the sender is told."""
    dead = await dead_letter_of(deploy, sent)
    assert dead.value == raw
    codes = (hdr(dead, "lr-reasons") or b"").decode().split(",")
    assert code in codes
    detail = json.loads(hdr(dead, "lr-reasons-json") or b"[]")
    assert all(d["message"] for d in detail)
    receipt = await receipt_of(deploy, party, sent)
    assert receipt.outcome == outcome
    assert receipt.recipient == party
    assert code in [r.code for r in receipt.reasons]
    return receipt


def launch_key_of(raw: bytes) -> bytes:
    """The record key a correct sender would use: the document's launch_key (any key when it has none)."""
    try:
        key = json.loads(raw).get("launch_key")
    except (ValueError, AttributeError):
        key = None
    return key.encode() if isinstance(key, str) else b"k"


async def publish_raw(
    deploy: Deploy,
    party: str,
    raw: bytes,
    headers: list[tuple[str, bytes | None]] | None = None,
    key: bytes | None = None,
) -> PublishResult:
    async with publisher(deploy, party) as pub:
        signed = headers if headers is not None else deploy.signers[party].headers(raw)
        return await pub.publish_raw(raw, key if key is not None else launch_key_of(raw), signed)


# --- happy paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "recipients", "agreement", "lead"),
    [
        ("CN", ["RU"], "CN-RU-2009", timedelta(days=3)),
        ("RU", ["US"], "US-RU-1988", timedelta(days=2)),
        ("IN", ["PK"], "IN-PK-2005", timedelta(days=4)),
        ("FR", ["AT", "GB", "JP", "US"], "HCOC", timedelta(hours=6)),
    ],
)
async def test_forward_for_each_preset(
    deploy: Deploy, relay: RelayProcess, sender: str, recipients: list[str], agreement: str, lead: timedelta
) -> None:
    """A valid notice is forwarded byte for byte to every recipient (Hague Code: four) and the sender gets a receipt."""
    notice = message(sender, recipients, agreement, lead=lead)
    async with publisher(deploy, sender) as pub:
        receipt = await pub.publish_and_wait(notice, timeout_s=45)
    assert receipt.outcome == "forwarded"
    assert sorted(receipt.forwarded_to) == sorted(recipients)
    sender_key = public_key_from_b64(deploy.signers[sender].public_b64)
    for party in recipients:
        (copy,) = await records_for(deploy, deploy.topics.inbound(party), notice.message_id)
        assert copy.value == encode(notice)
        assert copy.key == notice.launch_key.encode()
        assert hdr(copy, "lr-key-id") == deploy.signers[sender].key_id.encode()
        assert verify(sender_key, copy.value, hdr(copy, "lr-signature") or b"")  # end to end
    events = await read_topic(
        deploy.bootstrap,
        deploy.topics.status,
        lambda rs: any(json.loads(r.value).get("message_id") == notice.message_id for r in rs),
    )
    (event,) = [
        StatusEvent.model_validate_json(r.value)
        for r in events
        if json.loads(r.value).get("message_id") == notice.message_id
    ]
    assert event.kind == "forwarded" and event.ack_deadline_s is not None


async def test_acknowledgement_goes_back_to_the_sender(deploy: Deploy, relay: RelayProcess) -> None:
    """RU's acknowledgement of a CN notice is forwarded to CN's in topic."""
    notice = message("CN", ["RU"])
    async with publisher(deploy, "CN") as cn:
        assert (await cn.publish_and_wait(notice, 45)).outcome == "forwarded"
    ack = message(
        "RU", ["CN"], message_type="acknowledgement", refers_to=notice.message_id, launch_key=notice.launch_key
    )
    async with publisher(deploy, "RU") as ru:
        assert (await ru.publish_and_wait(ack, 45)).outcome == "forwarded"
    (copy,) = await records_for(deploy, deploy.topics.inbound("CN"), ack.message_id)
    assert copy.value == encode(ack)


async def test_exact_duplicate_is_forwarded_once(deploy: Deploy, relay: RelayProcess) -> None:
    """The same signed bytes published twice reach the recipient once; the repeat is recorded as DUPLICATE."""
    notice = message("CN", ["RU"])
    async with publisher(deploy, "CN") as cn:
        first = await cn.publish(notice)
        second = await cn.publish(notice)
        assert (await cn.wait_receipt(notice.message_id, 45)).outcome == "forwarded"
    await assert_rejected(deploy, "CN", second, encode(notice), "DUPLICATE", outcome="duplicate")
    copies = await records_for(deploy, deploy.topics.inbound("RU"), notice.message_id)
    assert len(copies) == 1 and source_of(copies[0]) == (first.topic, first.partition, first.offset)


async def test_amendments_keep_their_order(deploy: Deploy, relay: RelayProcess) -> None:
    """A notice and ten amendments of one launch reach the counterpart in the order published."""
    notice = message("CN", ["RU"])
    amendments = [
        message(
            "CN",
            ["RU"],
            message_type="amendment",
            refers_to=notice.message_id,
            launch_key=notice.launch_key,
            window={
                "start": notice.window.start.isoformat().replace("+00:00", "Z"),
                "end": f"2099-01-0{1 + i % 9}T00:00:00Z",
            },
        )
        if False
        else message(
            "CN",
            ["RU"],
            message_type="amendment",
            refers_to=notice.message_id,
            launch_key=notice.launch_key,
            reason={"en": f"change {i}"},
            window={
                "start": (notice.window.start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": (notice.window.end + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        for i in range(10)
    ]
    async with publisher(deploy, "CN") as cn:
        for m in [notice, *amendments]:
            await cn.publish(m)
        for m in [notice, *amendments]:
            assert (await cn.wait_receipt(m.message_id, 45)).outcome == "forwarded"
    ids = {m.message_id for m in [notice, *amendments]}
    records = await read_topic(
        deploy.bootstrap,
        deploy.topics.inbound("RU"),
        lambda rs: sum(json.loads(r.value).get("message_id") in ids for r in rs) >= len(ids),
    )
    seen = [json.loads(r.value)["message_id"] for r in records if json.loads(r.value).get("message_id") in ids]
    assert seen == [m.message_id for m in [notice, *amendments]]


# --- one test per rejection reason ------------------------------------------------------------


async def test_not_json(deploy: Deploy, relay: RelayProcess) -> None:
    """Bytes that are not JSON are rejected as NOT_JSON and kept byte for byte."""
    raw = b"launch tomorrow, probably"
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "NOT_JSON")


async def test_invalid_utf8(deploy: Deploy, relay: RelayProcess) -> None:
    """Invalid UTF-8 is rejected as NOT_UTF8."""
    raw = b'{"message_id": "\xff\xfe"}'
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "NOT_UTF8")


async def test_oversize(deploy: Deploy, relay: RelayProcess) -> None:
    """A value over the configured limit (16 KiB here) is rejected as OVERSIZE, its bytes kept."""
    raw = json.dumps({"padding": "x" * 20000}).encode()
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "OVERSIZE")


async def test_schema_violations_are_all_listed(deploy: Deploy, relay: RelayProcess) -> None:
    """A message breaking the schema twice gets SCHEMA_INVALID reasons naming each field."""
    data = json.loads(encode(message("CN", ["RU"])))
    data["contract"] = "launchrelay/2"  # UTC only (launchrelay/1 reads another offset as the same instant)
    data["window"]["start"] = "2026-12-05T08:00:00+08:00"
    data["launch_area"]["centre"]["lat"] = 95
    raw = json.dumps(data).encode()
    sent = await publish_raw(deploy, "CN", raw)
    receipt = await assert_rejected(deploy, "CN", sent, raw, "SCHEMA_INVALID")
    fields = {r.field for r in receipt.reasons if r.code == "SCHEMA_INVALID"}
    assert any(f and "window.start" in f for f in fields) and any(f and "centre.lat" in f for f in fields)


async def test_bad_signature(deploy: Deploy, relay: RelayProcess) -> None:
    """A signature over other bytes is SIGNATURE_INVALID."""
    raw = encode(message("CN", ["RU"]))
    sent = await publish_raw(deploy, "CN", raw, deploy.signers["CN"].headers(raw + b" "))
    await assert_rejected(deploy, "CN", sent, raw, "SIGNATURE_INVALID")


async def test_missing_signature(deploy: Deploy, relay: RelayProcess) -> None:
    """No signature headers at all is SIGNATURE_MISSING."""
    raw = encode(message("CN", ["RU"]))
    sent = await publish_raw(deploy, "CN", raw, [])
    await assert_rejected(deploy, "CN", sent, raw, "SIGNATURE_MISSING")


async def test_unknown_key(deploy: Deploy, relay: RelayProcess) -> None:
    """A key id not registered for the sender is KEY_UNKNOWN."""
    raw = encode(message("CN", ["RU"]))
    sent = await publish_raw(deploy, "CN", raw, Signer.generate("cn-rogue").headers(raw))
    await assert_rejected(deploy, "CN", sent, raw, "KEY_UNKNOWN")


async def test_spoofed_sender(deploy: Deploy, relay: RelayProcess) -> None:
    """RU writing a message that claims to come from CN, on RU's own topic, is SENDER_SPOOFED; RU is told."""
    raw = encode(message("CN", ["RU"]))
    sent = await publish_raw(deploy, "RU", raw, deploy.signers["RU"].headers(raw))
    await assert_rejected(deploy, "RU", sent, raw, "SENDER_SPOOFED")


async def test_out_of_scope(deploy: Deploy, relay: RelayProcess) -> None:
    """CN-RU 2009 art. 1: a 1500 km missile is OUT_OF_SCOPE_RANGE."""
    m = message("CN", ["RU"], vehicle={"category": "other_ballistic_missile", "generic_class": "x", "range_km": 1500.0})
    raw = encode(m)
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "OUT_OF_SCOPE_RANGE")


async def test_too_late(deploy: Deploy, relay: RelayProcess) -> None:
    """US-RU 1988: a launch announced 23 hours ahead is LEAD_TIME_TOO_SHORT."""
    raw = encode(message("US", ["RU"], "US-RU-1988", lead=timedelta(hours=23)))
    sent = await publish_raw(deploy, "US", raw)
    await assert_rejected(deploy, "US", sent, raw, "LEAD_TIME_TOO_SHORT")


async def test_too_early(deploy: Deploy, relay: RelayProcess) -> None:
    """CN-RU 2009: 31 days ahead is LEAD_TIME_TOO_LONG."""
    raw = encode(message("CN", ["RU"], lead=timedelta(days=31)))
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "LEAD_TIME_TOO_LONG")


async def test_window_too_long(deploy: Deploy, relay: RelayProcess) -> None:
    """IN-PK 2005 art. 2: a six-day window is WINDOW_TOO_LONG."""
    raw = encode(message("IN", ["PK"], "IN-PK-2005", lead=timedelta(days=4), window_length=timedelta(days=6)))
    sent = await publish_raw(deploy, "IN", raw)
    await assert_rejected(deploy, "IN", sent, raw, "WINDOW_TOO_LONG")


async def test_amendment_of_unknown_notification(deploy: Deploy, relay: RelayProcess) -> None:
    """An amendment referring to nothing forwarded is REFERENCE_UNKNOWN."""
    raw = encode(message("CN", ["RU"], message_type="amendment", refers_to="cn-never-sent", direction={"sector": "N"}))
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "REFERENCE_UNKNOWN")


async def test_acknowledgement_from_non_recipient(deploy: Deploy, relay: RelayProcess) -> None:
    """Hague Code: JP acknowledging a notice sent to AT and GB only is ACK_NOT_FROM_RECIPIENT."""
    notice = message("FR", ["AT", "GB"], "HCOC", lead=timedelta(hours=6))
    async with publisher(deploy, "FR") as fr:
        assert (await fr.publish_and_wait(notice, 45)).outcome == "forwarded"
    ack = message(
        "JP", ["FR"], "HCOC", message_type="acknowledgement", refers_to=notice.message_id, launch_key=notice.launch_key
    )
    raw = encode(ack)
    sent = await publish_raw(deploy, "JP", raw)
    await assert_rejected(deploy, "JP", sent, raw, "ACK_NOT_FROM_RECIPIENT")


async def test_conflicting_duplicate(deploy: Deploy, relay: RelayProcess) -> None:
    """The same message id with different bytes is DUPLICATE_CONFLICT; the first stays forwarded."""
    first = message("CN", ["RU"])
    async with publisher(deploy, "CN") as cn:
        assert (await cn.publish_and_wait(first, 45)).outcome == "forwarded"
    second = first.model_copy(update={"notes": {"en": "changed"}})
    raw = encode(second)
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "DUPLICATE_CONFLICT")
    assert len(await records_for(deploy, deploy.topics.inbound("RU"), first.message_id)) == 1


async def test_receipt_on_out_topic_is_refused(deploy: Deploy, relay: RelayProcess) -> None:
    """Only the relay issues receipts: one published by a party is NOT_A_PARTY_MESSAGE."""
    raw = (Path(__file__).parent.parent / "docs/examples/valid/receipt_rejected.json").read_bytes()
    sent = await publish_raw(deploy, "CN", raw)
    await assert_rejected(deploy, "CN", sent, raw, "NOT_A_PARTY_MESSAGE")


async def test_valid_traffic_flows_between_rejections(deploy: Deploy, relay: RelayProcess) -> None:
    """Bad input never stops the flow: a valid notice published after garbage is still forwarded."""
    notice = message("CN", ["RU"])
    async with publisher(deploy, "CN") as cn:
        await cn.publish_raw(b"\x00\x01garbage", b"k", [])
        receipt = await cn.publish_and_wait(notice, 45)
    assert receipt.outcome == "forwarded"


def test_sigterm_finishes_and_exits_zero(deploy: Deploy) -> None:
    """SIGTERM: the relay stops fetching, finishes its transaction and exits with 0."""
    proc = RelayProcess(deploy, "relay-term").start()
    try:
        proc.wait_for("relay.started")
        assert proc.terminate() == 0
        assert any(e.get("event") == "relay.stopped" for e in proc.events_since_last_spawn())
    finally:
        proc.ensure_stopped()


_ = (base64, PartyMessage)


def test_unreadable_state_record_is_named_and_skipped(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A damaged record in the relay's state topic is logged with its offset; the relay starts and forwards."""
    d = asyncio.run(make_deploy(kafka_bootstrap, tmp_path))

    async def damage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=d.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(d.topics.relay_state, b"not json", key=b"CN/x", partition=0)
            await producer.send_and_wait(d.topics.relay_state, b'{"sender": "CN"}', key=b"CN/y", partition=0)
            # the right shape, but values the state cannot hold: a digest that is not hex, a negative partition
            for key, change in ((b"CN/z", {"digest": "zz" * 32}), (b"CN/w", {"src": ["lr.CN.out", -1, 0]})):
                shaped = json.loads(seen(message_id=key.decode()[3:]).to_bytes()) | change
                await producer.send_and_wait(d.topics.relay_state, json.dumps(shaped).encode(), key=key, partition=0)
        finally:
            await producer.stop()

    asyncio.run(damage())
    proc = RelayProcess(d, "relay-damaged").start()
    try:
        proc.wait_for("relay.started")
        bad = [e for e in proc.events() if e.get("event") == "relay.state_unreadable"]
        assert [(e["partition"], e["offset"], e["key"]) for e in bad] == [
            (0, 0, "CN/x"), (0, 1, "CN/y"), (0, 2, "CN/z"), (0, 3, "CN/w")
        ]  # fmt: skip
        assert all(e["level"] == "error" and e["error"] for e in bad)

        async def forward() -> str:
            async with publisher(d, "CN") as cn:
                return (await cn.publish_and_wait(message("CN", ["RU"]), 45)).outcome

        assert asyncio.run(forward()) == "forwarded"
    finally:
        proc.ensure_stopped()


async def test_every_keyed_output_is_on_the_java_clients_partition(deploy: Deploy, relay: RelayProcess) -> None:
    """Forwards, receipts, status events and state records of 12 launches all sit on the partition the Java
    producer's default partitioner picks for their key (murmur2), whatever batching the relay did."""
    keys = [f"CN-PART-{i}" for i in range(12)]
    async with publisher(deploy, "CN") as pub:
        sent = [m.message_id for m in [message("CN", ["RU"], launch_key=k) for k in keys]
                if (await pub.publish_and_wait(m, timeout_s=30)).outcome == "forwarded"]  # fmt: skip
    assert len(sent) == len(keys)
    wanted = {k.encode() for k in keys}

    def ours(r: ConsumerRecord) -> bool:  # state records are keyed by message id, the others by launch key
        return r.key in wanted or any(m.encode() in (r.value or b"") for m in sent)

    for topic, n in ((deploy.topics.inbound("RU"), 12), (deploy.topics.inbound("CN"), 12),
                     (deploy.topics.status, 12), (deploy.topics.relay_state, 12)):  # fmt: skip
        records = await read_topic(deploy.bootstrap, topic, lambda rs, n=n: sum(map(ours, rs)) >= n)
        mine = [r for r in records if ours(r)]
        assert mine and all(r.partition == partition_for(r.key, 3) for r in mine), topic  # make_deploy's 3
