"""What the relay and the tracker write for a decision or an action, planned without a broker."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from harness import Deploy
from launchrelay.contract.codec import decode, encode_fast, with_member
from launchrelay.contract.events import StatusEvent
from launchrelay.contract.headers import header, source_from
from launchrelay.reasons import ReasonCode
from launchrelay.relay.decide import RelayContext, decide
from launchrelay.relay.outputs import plan
from launchrelay.signing import verify
from launchrelay.topics import Topics
from launchrelay.tracker import outputs as tracker_outputs
from launchrelay.tracker.deadlines import Retransmit, Timeout
from launchrelay.tracker.lifecycle import deliveries_for, from_event
from test_decide import NOW, ROWS, Row, _t, build, decided, follow_up, notice, notice_text, seen
from test_tracker_lifecycle import _forwarded


def test_forward_writes_copies_receipt_status_and_state(offline_deploy: Deploy, offline_ctx: RelayContext) -> None:
    deploy, ctx = offline_deploy, offline_ctx
    """A forward: the original bytes and headers to each recipient (with the source named), a signed receipt to
    the sender, a status event carrying the deadline and re-send policy, and the state record; nothing else."""
    decision = decided(Row(notice("FR", ["AT", "GB"], "HCOC"), owner="FR"), deploy, ctx)
    out = plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW)
    by_topic = {o.topic: o for o in out}
    assert sorted(by_topic) == sorted([ctx.topics.inbound("AT"), ctx.topics.inbound("GB"), ctx.topics.inbound("FR"),
                                       ctx.topics.status, ctx.topics.relay_state])  # fmt: skip
    copy = by_topic[ctx.topics.inbound("AT")]
    assert copy.value == decision.record.value and copy.key == b"FR-L1"
    assert source_from(copy.headers) == decision.record.ref and header(copy.headers, "lr-relay-id") == b"r1"
    receipt = by_topic[ctx.topics.inbound("FR")]
    assert verify(deploy.relay_signer.private_key.public_key(), receipt.value, header(receipt.headers, "lr-signature")
                  or b"")  # fmt: skip
    assert decode(receipt.value).outcome == "forwarded"  # type: ignore[union-attr]
    event = StatusEvent.model_validate_json(by_topic[ctx.topics.status].value)
    assert event.ack_deadline_s == 86400 and event.retransmit_every_s is None  # HCOC: a day, no re-sends


def test_retransmit_policy_goes_into_the_forwarded_event(offline_deploy: Deploy, offline_ctx: RelayContext) -> None:
    """CN-RU re-sends every 15 minutes at most 3 times: the status event says so, for the tracker."""
    deploy, ctx = offline_deploy, offline_ctx
    out = plan(decided(Row(notice()), deploy, ctx), ctx.topics, deploy.relay_signer, "r1", NOW)
    (status,) = [o for o in out if o.topic == ctx.topics.status]
    event = StatusEvent.model_validate_json(status.value)
    assert (event.ack_deadline_s, event.retransmit_every_s, event.retransmit_max) == (3600, 900, 3)


def test_rejection_writes_the_dead_letter_and_a_receipt_but_no_copy(
    offline_deploy: Deploy, offline_ctx: RelayContext
) -> None:
    deploy, ctx = offline_deploy, offline_ctx
    decision = decided(Row(notice(), signer=None), deploy, ctx)
    out = plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW)
    # no state record: an unsigned message's id is not remembered (a forger cannot claim another's ids)
    assert sorted(o.topic for o in out) == sorted([ctx.topics.deadletter, ctx.topics.inbound("CN"), ctx.topics.status])
    (dead,) = [o for o in out if o.topic == ctx.topics.deadletter]
    details = json.loads(header(dead.headers, "lr-reasons-json") or b"[]")
    assert [d["code"] for d in details] == ["SIGNATURE_MISSING"] and dead.value == decision.record.value


def test_tracker_timeout_is_a_signed_overdue_receipt_and_an_event(offline_deploy: Deploy) -> None:
    """A timeout writes the sender's acknowledgement_overdue receipt and its status event, with ids from the action."""
    deploy = offline_deploy
    forwarded = _forwarded(["RU"])
    n, (d,) = from_event(forwarded), deliveries_for(forwarded)
    topics = Topics("lr")
    out = tracker_outputs.plan(Timeout(d), n, None, topics, deploy.relay_signer, "t1", NOW)
    receipt, event = out
    assert receipt.topic == topics.inbound("CN") and event.topic == topics.status
    body = json.loads(receipt.value)
    assert body["outcome"] == "acknowledgement_overdue" and body["forwarded_to"] == ["RU"]
    again = tracker_outputs.plan(Timeout(d), n, None, topics, deploy.relay_signer, "t1", NOW + timedelta(seconds=5))
    assert json.loads(again[0].value)["message_id"] == body["message_id"]  # a replay writes the same ids


def test_tracker_retransmission_resends_the_original_bytes(offline_deploy: Deploy) -> None:
    deploy = offline_deploy
    forwarded = _forwarded(["RU"])
    n, (d,) = from_event(forwarded), deliveries_for(forwarded)
    original = (b'{"the": "original"}', [("lr-signature", b"sig"), ("lr-key-id", b"cn-k1")])
    out = tracker_outputs.plan(Retransmit(d, 2), n, original, Topics("lr"), deploy.relay_signer, "t1", NOW)
    copy, event = out
    assert copy.topic == "lr.RU.in" and copy.value == original[0]
    assert copy.headers == [*original[1], ("lr-retransmission", b"2")]
    assert StatusEvent.model_validate_json(event.value).attempt == 2
    (only_event,) = tracker_outputs.plan(Retransmit(d, 3), n, None, Topics("lr"), deploy.relay_signer, "t1", NOW)
    assert only_event.topic == "lr.status"  # the original is gone: the event still records the attempt


def test_tracker_report_overdue_goes_to_the_sender(offline_deploy: Deploy) -> None:
    """A report owed and not received: a signed report_overdue receipt to the sender and a report_overdue event."""
    from launchrelay.tracker.lifecycle import DeliveryKind

    forwarded = _forwarded(["RU"]).model_copy(update={"report_due_at": NOW + timedelta(days=2)})
    n = from_event(forwarded)
    (report,) = [d for d in deliveries_for(forwarded) if d.kind is DeliveryKind.REPORT]
    receipt, event = tracker_outputs.plan(
        Timeout(report), n, None, Topics("lr"), offline_deploy.relay_signer, "t1", NOW
    )
    body = json.loads(receipt.value)
    assert receipt.topic == "lr.CN.in" and body["outcome"] == "report_overdue" and body["forwarded_to"] == []
    assert StatusEvent.model_validate_json(event.value).kind == "report_overdue"


def test_the_event_carries_the_notice_as_it_stands(offline_deploy: Deploy, offline_ctx: RelayContext) -> None:
    """The notice is serialised once and added to the encoded event: the event still validates, and its notice is
    the model's own dump, for a planned launch and for an amendment (the notice as amended)."""
    deploy, ctx = offline_deploy, offline_ctx
    planned = decided(Row(notice()), deploy, ctx)
    moved = {"start": _t(timedelta(days=5)), "end": _t(timedelta(days=6))}
    amended = decided(
        Row(follow_up("amendment", window=moved), state=[seen(notice=notice_text(notice()))]), deploy, ctx
    )
    for decision in (planned, amended):
        assert decision.kind == "forwarded", decision.reasons
        (status,) = [
            o for o in plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW) if o.topic == ctx.topics.status
        ]
        event = StatusEvent.model_validate_json(status.value)
        assert decision.notice is not None and event.notice == decision.notice.to_json()
        assert event.window_start == decision.notice.window.start
    assert amended.changed == ["window"] and json.loads(amended.notice_text or "")["window"] == moved


def test_with_member_adds_one_member_to_an_object() -> None:
    assert json.loads(with_member(b'{"a":1}', "n", '{"x":[1,2]}')) == {"a": 1, "n": {"x": [1, 2]}}
    assert json.loads(with_member(b"{}", 'q"uote', "null")) == {'q"uote': None}
    with pytest.raises(ValueError, match="not a JSON object"):
        with_member(b"[1]", "n", "1")


@pytest.mark.parametrize("code", list(ROWS), ids=lambda c: c.value)
def test_every_output_of_every_decision_is_valid(
    code: ReasonCode, offline_deploy: Deploy, offline_ctx: RelayContext
) -> None:
    """The relay encodes its status events from plain values, without the model: each must still satisfy the
    model, and read back and encoded by the model it must give the same JSON (no member the model would leave
    out, no value spelled otherwise); each receipt must satisfy the contract. For a forward and for a decision
    of every reason code."""
    deploy, ctx = offline_deploy, offline_ctx
    for row in (Row(notice()), ROWS[code]()):
        record, state = build(row, deploy)
        decision = decide(record, ctx, state)
        for out in plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW):
            if out.topic == ctx.topics.status:
                event = StatusEvent.model_validate_json(out.value)
                assert event.kind.value in {"forwarded", "rejected", "duplicate"}
                assert json.loads(out.value) == json.loads(encode_fast(event))
            elif out.topic == ctx.topics.inbound(decision.owner or "") and header(out.headers, "lr-signature"):
                assert decode(out.value).message_type == "receipt"
