"""Two-centre mode, decided without a broker: what each centre's relay does with what its party sends, with what
arrives over the link from the other centre (a party's message, the other relay's receipt, a beacon), and with
what it cannot verify. The same pure decide() and plan() as one shared cluster."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from launchrelay.agreements.config import Deployment, parse_config
from launchrelay.contract.events import StatusEvent
from launchrelay.contract.headers import LINK_BEACON, Headers, header
from launchrelay.reasons import ReasonCode
from launchrelay.relay.decide import Decision, InboundRecord, RelayContext, decide
from launchrelay.relay.links import beacon
from launchrelay.relay.outputs import plan
from launchrelay.relay.state import MemoryState
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord
from test_decide import NOW, NOW_MS, notice

SIGNERS = {name: Signer.generate(f"{name.lower()}-k") for name in ("CN", "RU", "relay-CN", "relay-RU", "rogue")}


def centre(here: str, *, linked: bool = True) -> RelayContext:
    """The config of ``here``'s centre: both parties' keys, a link to the other centre (its relay's key)."""
    other = "RU" if here == "CN" else "CN"
    data: dict[str, Any] = {
        "relay": {"topic_prefix": "lr", "presets": ["CN-RU-2009"],
                  "keys": {SIGNERS[f"relay-{here}"].key_id: SIGNERS[f"relay-{here}"].public_b64}},
        "parties": {p: {"name": p, "keys": {SIGNERS[p].key_id: SIGNERS[p].public_b64}} for p in ("CN", "RU")},
        "centre": {"party": here},
    }  # fmt: skip
    if linked:
        r = SIGNERS[f"relay-{other}"]
        data["links"] = {other: {"bootstrap": f"{other.lower()}-kafka:9093", "relay_keys": {r.key_id: r.public_b64}}}
    deployment: Deployment = parse_config(data)
    return RelayContext.build(deployment)


CN, RU = centre("CN"), centre("RU")


def record(topic: str, raw: bytes, headers: Headers, key: bytes = b"CN-L1", offset: int = 7) -> InboundRecord:
    return InboundRecord(topic, 0, offset, key, raw, headers, NOW_MS)


def by_topic(out: list[OutRecord]) -> dict[str, list[OutRecord]]:
    found: dict[str, list[OutRecord]] = {}
    for o in out:
        found.setdefault(o.topic, []).append(o)
    return found


def planned(decision: Decision, ctx: RelayContext, relay: str) -> dict[str, list[OutRecord]]:
    return by_topic(plan(decision, ctx.topics, SIGNERS[relay], relay.lower(), NOW))


RAW = json.dumps(notice()).encode()


def test_a_notice_goes_to_the_link_topic_and_the_sending_centre_keeps_its_deadline() -> None:
    """CN's centre forwards CN's notice to RU over the link (P.link.RU), CN's receipt stays home, and the status
    event carries the acknowledgement deadline: the sending centre keeps its party's deadlines."""
    decision = decide(record("lr.CN.out", RAW, SIGNERS["CN"].headers(RAW)), CN, MemoryState())
    assert decision.kind == "forwarded" and decision.recipients == ["RU"]
    out = planned(decision, CN, "relay-CN")
    assert sorted(out) == ["lr.CN.in", "lr.link.RU", "lr.relay-state", "lr.status"]
    assert out["lr.link.RU"][0].value == RAW
    assert StatusEvent.model_validate_json(out["lr.status"][0].value).ack_deadline_s == 3600


def test_the_receiving_centre_verifies_again_and_forwards_to_its_own_party() -> None:
    """RU's centre reads the mirrored topic, decides the same bytes again on its own (CN's key, the same rules),
    forwards to RU's in topic with its own relay headers in place of CN's relay's, and sends its receipt back
    over the link; it keeps no deadline (the sender's centre does)."""
    forwarded = planned(decide(record("lr.CN.out", RAW, SIGNERS["CN"].headers(RAW)), CN, MemoryState()), CN,
                        "relay-CN")["lr.link.RU"][0]  # fmt: skip
    decision = decide(record("CN.lr.link.RU", forwarded.value, forwarded.headers), RU, MemoryState())
    assert decision.kind == "forwarded" and decision.link == "CN" and decision.owner == "CN"
    out = planned(decision, RU, "relay-RU")
    assert sorted(out) == ["lr.RU.in", "lr.link.CN", "lr.relay-state", "lr.status"]
    copy = out["lr.RU.in"][0]
    assert copy.value == RAW and header(copy.headers, "lr-signature") == header(forwarded.headers, "lr-signature")
    assert [v for k, v in copy.headers if k == "lr-relay-id"] == [b"relay-ru"]
    assert [v for k, v in copy.headers if k == "lr-source-topic"] == [b"CN.lr.link.RU"]
    receipt = json.loads(out["lr.link.CN"][0].value)
    assert receipt["outcome"] == "forwarded" and receipt["recipient"] == "CN"
    assert StatusEvent.model_validate_json(out["lr.status"][0].value).ack_deadline_s is None


def test_a_repeat_over_the_link_is_absorbed() -> None:
    """The mirror copies at least once: the same bytes again over the link are neither forwarded nor answered,
    nor a dead letter; only a status event records the repeat."""
    state = MemoryState()
    first = decide(record("CN.lr.link.RU", RAW, SIGNERS["CN"].headers(RAW)), RU, state)
    for w in first.state_writes:
        state.apply(w)
    again = decide(record("CN.lr.link.RU", RAW, SIGNERS["CN"].headers(RAW), offset=8), RU, state)
    assert again.kind == "duplicate"
    assert sorted(planned(again, RU, "relay-RU")) == ["lr.status"]


def test_a_forged_notice_over_the_link_is_refused_there_and_the_sender_told() -> None:
    """Whatever the sending centre let through, the receiving one checks the signature itself."""
    decision = decide(record("CN.lr.link.RU", RAW, SIGNERS["rogue"].headers(RAW)), RU, MemoryState())
    assert decision.kind == "rejected" and "KEY_UNKNOWN" in decision.reason_codes
    out = planned(decision, RU, "relay-RU")
    assert sorted(out) == ["lr.deadletter", "lr.link.CN", "lr.status"]  # refusals stay home; the receipt goes back


def remote_receipt(outcome: str, signer: str = "relay-RU", reasons: list[dict[str, Any]] | None = None) -> bytes:
    body = {"message_type": "receipt", "message_id": f"rcpt-{outcome}", "issued_by": "relay-ru", "recipient": "CN",
            "outcome": outcome, "created_at": "2026-11-28T12:00:00Z", "refers_to": "cn-0001",
            "agreement": "CN-RU-2009", "launch_key": "CN-L1", "forwarded_to": [], "reasons": reasons or []}  # fmt: skip
    return json.dumps(body).encode()


@pytest.mark.parametrize("outcome", ["forwarded", "rejected"])
def test_the_other_centres_receipt_reaches_the_sender_once(outcome: str) -> None:
    """RU's centre's signed receipt, back over the link, goes to CN's in topic unchanged (RU's relay signature) and
    becomes a remote_receipt event for CN's tracker; the mirror's repeat of it changes nothing."""
    reasons = [{"code": "LEAD_TIME_TOO_SHORT", "message": "x"}] if outcome == "rejected" else []
    raw = remote_receipt(outcome, reasons=reasons)
    state = MemoryState()
    decision = decide(record("RU.lr.link.CN", raw, SIGNERS["relay-RU"].headers(raw)), CN, state)
    assert decision.kind == "remote_receipt" and decision.recipients == ["CN"]
    out = planned(decision, CN, "relay-CN")
    assert sorted(out) == ["lr.CN.in", "lr.relay-state", "lr.status"]
    assert out["lr.CN.in"][0].value == raw
    event = StatusEvent.model_validate_json(out["lr.status"][0].value)
    assert (event.kind, event.message_id, event.sender, event.recipients, event.outcome) == (
        "remote_receipt", "cn-0001", "CN", ["RU"], outcome)  # fmt: skip
    for w in decision.state_writes:
        state.apply(w)
    again = decide(record("RU.lr.link.CN", raw, SIGNERS["relay-RU"].headers(raw), offset=9), CN, state)
    assert again.kind == "remote_receipt" and planned(again, CN, "relay-CN") == {}


def test_a_receipt_or_beacon_that_does_not_verify_is_set_aside_without_a_reply() -> None:
    """LINK_UNVERIFIED: a dead letter at home, no receipt back over the link (a receipt is never answered)."""
    raw = remote_receipt("forwarded")
    for headers in (SIGNERS["rogue"].headers(raw), [], SIGNERS["CN"].headers(raw)):
        decision = decide(record("RU.lr.link.CN", raw, headers), CN, MemoryState())
        assert decision.kind == "rejected" and decision.reason_codes == [ReasonCode.LINK_UNVERIFIED]
        assert sorted(planned(decision, CN, "relay-CN")) == ["lr.deadletter", "lr.status"]
    value = beacon("RU", "relay-ru", datetime(2026, 11, 28, 11, 59, 58, tzinfo=UTC))
    forged = decide(record("RU.lr.link.CN", value, [(LINK_BEACON, b"1"), *SIGNERS["rogue"].headers(value)]), CN,
                    MemoryState())  # fmt: skip
    assert forged.reason_codes == [ReasonCode.LINK_UNVERIFIED]


def test_a_beacon_writes_nothing_and_says_when_it_left() -> None:
    value = beacon("RU", "relay-ru", datetime(2026, 11, 28, 11, 59, 58, tzinfo=UTC))
    decision = decide(record("RU.lr.link.CN", value, [(LINK_BEACON, b"1"), *SIGNERS["relay-RU"].headers(value)],
                             key=b"beacon"), CN, MemoryState())  # fmt: skip
    assert decision.kind == "beacon" and decision.beacon_at == datetime(2026, 11, 28, 11, 59, 58, tzinfo=UTC)
    assert plan(decision, CN.topics, SIGNERS["relay-CN"], "relay-cn", NOW) == []


def test_a_recipient_no_link_reaches_is_refused() -> None:
    """RECIPIENT_UNREACHABLE: a centre with no link to RU's cannot forward to RU."""
    alone = centre("CN", linked=False)
    decision = decide(record("lr.CN.out", RAW, SIGNERS["CN"].headers(RAW)), alone, MemoryState())
    assert decision.kind == "rejected" and "RECIPIENT_UNREACHABLE" in decision.reason_codes


def test_the_centres_topics(tmp_path: Path) -> None:
    """Each centre's cluster holds its own party's topics and its two link topics, named as MirrorMaker 2's
    default replication policy names the mirrored one."""
    t = CN.topics
    assert t.inputs(["CN", "RU"]) == ["lr.CN.out", "RU.lr.link.CN"]
    assert (t.to("CN"), t.to("RU"), t.link_in("RU")) == ("lr.CN.in", "lr.link.RU", "RU.lr.link.CN")
    assert t.owner_of("RU.lr.link.CN") == "RU" and t.link_of("US.lr.link.CN") is None


def test_a_retransmission_over_the_link_is_forwarded_once_per_attempt() -> None:
    """CN's tracker re-sends a notice not yet acknowledged over the link (the original bytes, lr-retransmission: N);
    RU's centre forwards each attempt once to RU, with the header, and absorbs the mirror's repeat of it."""
    state = MemoryState()
    first = decide(record("CN.lr.link.RU", RAW, SIGNERS["CN"].headers(RAW)), RU, state)
    for w in first.state_writes:
        state.apply(w)
    resent = [*SIGNERS["CN"].headers(RAW), ("lr-retransmission", b"1")]
    again = decide(record("CN.lr.link.RU", RAW, resent, offset=20), RU, state)
    assert again.kind == "forwarded" and again.recipients == ["RU"]
    out = planned(again, RU, "relay-RU")
    assert header(out["lr.RU.in"][0].headers, "lr-retransmission") == b"1"
    for w in again.state_writes:
        state.apply(w)
    repeat = decide(record("CN.lr.link.RU", RAW, resent, offset=21), RU, state)
    assert repeat.kind == "duplicate" and sorted(planned(repeat, RU, "relay-RU")) == ["lr.status"]
    second = decide(record("CN.lr.link.RU", RAW, [*SIGNERS["CN"].headers(RAW), ("lr-retransmission", b"2")],
                           offset=22), RU, state)  # fmt: skip
    assert second.kind == "forwarded"


def test_the_sending_centres_tracker_resends_over_the_link() -> None:
    """CN's tracker writes a re-send for RU to the link topic (RU's in topic is in RU's cluster)."""
    from launchrelay.tracker import outputs as tracker_outputs
    from launchrelay.tracker.deadlines import Retransmit
    from launchrelay.tracker.lifecycle import deliveries_for, from_event
    from test_tracker_lifecycle import _forwarded

    forwarded = _forwarded(["RU"])
    n, (d,) = from_event(forwarded), deliveries_for(forwarded)
    out = tracker_outputs.plan(Retransmit(d, 1), n, (RAW, SIGNERS["CN"].headers(RAW)), CN.topics,
                               SIGNERS["relay-CN"], "t1", NOW)  # fmt: skip
    assert [o.topic for o in out] == ["lr.link.RU", "lr.status"]


@pytest.mark.parametrize("body", [b"not json", b'{"at": 5}', b'{"at": "2026-11-28T11:59:58"}', b'{"at": "soon"}'])
def test_a_signed_beacon_with_a_broken_time_is_still_a_beacon_without_a_time(body: bytes) -> None:
    """The linked relay signed it, so the link is alive; a time that cannot be compared with this broker's (no zone,
    not a time) is left out rather than breaking the link's delay figure."""
    decision = decide(record("RU.lr.link.CN", body, [(LINK_BEACON, b"1"), *SIGNERS["relay-RU"].headers(body)],
                             key=b"beacon"), CN, MemoryState())  # fmt: skip
    assert decision.kind == "beacon" and decision.beacon_at is None
