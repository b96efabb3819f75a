"""From a decision to the records the relay writes in one transaction (pure, apart from signing).

**What an id is made of.** The ids the relay mints for one input record (its receipt ``rcpt-…``, its status
event ``evt-…``) are one hash of where and what the record is: the deployment's *origin* (the Kafka cluster id
of the cluster the record was read from: random per cluster), the topic, partition and offset, the broker's
append time and the SHA-256 of the bytes. The same record decided again (a replay after a crash) gives the
same ids, so exactly-once holds for them too; two deployments with the same topic names and offsets, or one
whose topics were deleted and created again, never give the same id to different records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from launchrelay.contract.codec import encode_fast, seed_hash, with_member
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.headers import (
    ERROR,
    REASONS,
    REASONS_JSON,
    REDRIVE_HEADERS,
    RELAY_HEADERS,
    RELAY_ID,
    WARNINGS,
    source_headers,
)
from launchrelay.contract.messages import (
    Acknowledgement,
    CompletedLaunch,
    Reason,
    Receipt,
    ReceiptOutcome,
)
from launchrelay.contract.outcomes import VERDICTS, Outcome
from launchrelay.relay.decide import Decision
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord, Topics


def record_hash(decision: Decision, origin: str = "") -> str:
    """The same every time this input record is decided (replays after a crash), different for any other record
    of any deployment: the receipt's and the status event's ids are ``rcpt-`` and ``evt-`` with it, as
    :func:`~launchrelay.contract.codec.stable_id` makes them (see the module's docstring)."""
    r = decision.record
    return seed_hash(f"{origin}\x00{r.topic}\x00{r.partition}\x00{r.offset}\x00{r.timestamp_ms}\x00{decision.digest}")


def _notice_fields(decision: Decision) -> dict[str, Any]:
    """For the tracker: what changed, when the notice expires and when a report is due (the notice itself is
    added to the encoded event as the text the decision already holds)."""
    msg, agreement, notice = decision.message, decision.agreement, decision.notice
    fields: dict[str, Any] = {"warnings": decision.warnings, "changed": decision.changed}
    if isinstance(msg, CompletedLaunch):
        fields["outcome"] = msg.outcome.value
    if notice is None or agreement is None:
        return fields
    window = notice.window
    fields |= {
        "window_start": window.start,
        "window_end": window.end,
        "expires_at": agreement.expires(window.start, window.end),
    }
    if agreement.report_due is not None:
        fields["report_due_at"] = window.end + agreement.report_due
    return fields


@dataclass(frozen=True)
class _Told:
    """What the sender is told of a decision: its outcome, the reasons and warnings (with a party's own redrive
    mark that counted for nothing among them), and the status event's kind."""

    outcome: ReceiptOutcome
    event_kind: EventKind
    reasons: list[Reason]
    warnings: list[Reason]


def _told(decision: Decision) -> _Told:
    assert decision.kind in VERDICTS, decision.kind  # only a verdict is told (a beacon or remote receipt is not)
    outcome, event_kind = ReceiptOutcome(decision.kind), EventKind(decision.kind)
    reasons = [] if decision.kind is Outcome.FORWARDED else decision.reasons
    warnings = decision.warnings
    ignored = decision.redrive_ignored  # the sender is told (and the dead letter keeps it)
    if ignored is not None and decision.kind is Outcome.FORWARDED:
        warnings = [*warnings, ignored]
    elif ignored is not None:
        reasons = [*reasons, ignored]
    return _Told(outcome, event_kind, reasons, warnings)


def _forwards(decision: Decision, topics: Topics, relay_id: str, key: bytes | None) -> list[OutRecord]:
    """One copy per recipient: the original bytes, and the sender's headers (signature, key id) unchanged. A
    redrive mark stays on this side, and what another centre's relay added (over a link) gives way to this relay's
    own: where it was read, by which relay, and the warnings (flagged, not refused: the recipient sees why)."""
    r = decision.record
    sender = [h for h in r.headers if h[0] not in REDRIVE_HEADERS and h[0] not in RELAY_HEADERS]
    headers = [*sender, *source_headers(r.ref), (RELAY_ID, relay_id.encode())]
    if decision.warnings:
        headers.append((WARNINGS, ",".join(dict.fromkeys(w.code for w in decision.warnings)).encode()))
    return [OutRecord(topics.to(p), key, r.value or b"", headers) for p in decision.recipients]


def _dead_letter(decision: Decision, topics: Topics, relay_id: str, reasons: list[Reason]) -> OutRecord:
    """The original record (its key, bytes and headers as sent), with where it was read and why it was refused."""
    r = decision.record
    codes = ",".join(dict.fromkeys(x.code for x in reasons))
    reasons_json = json.dumps([x.model_dump(exclude_none=True) for x in reasons], separators=(",", ":"))
    return OutRecord(
        topics.deadletter,
        r.key,
        r.value or b"",
        [
            *r.headers,
            *source_headers(r.ref),
            (REASONS, codes.encode()),
            (REASONS_JSON, reasons_json.encode()),
            (RELAY_ID, relay_id.encode()),
            *([(ERROR, decision.error.encode())] if decision.error else []),
        ],
    )


def _receipt(
    decision: Decision, told: _Told, topics: Topics, signer: Signer, relay_id: str, now: datetime, ids: str,
    key: bytes | None, owner: str,
) -> OutRecord:  # fmt: skip
    """The relay's signed receipt to the sender: the outcome, whom it was forwarded to, every reason."""
    msg = decision.message
    receipt = Receipt(
        message_id=f"rcpt-{ids}",
        issued_by=relay_id,
        recipient=owner,
        outcome=told.outcome,
        created_at=now,
        refers_to=msg.message_id if msg else None,
        agreement=msg.agreement if msg else None,
        launch_key=msg.launch_key if msg else None,
        forwarded_to=decision.recipients,
        reasons=told.reasons,
        warnings=told.warnings,
        source=decision.record.ref,
    )
    body = encode_fast(receipt)
    return OutRecord(topics.to(owner), key, body, signer.headers(body))


def _status_event(
    decision: Decision, told: _Told, topics: Topics, now: datetime, ids: str, key: bytes | None
) -> OutRecord:
    """The tracker's event: the message's identity, what was decided, and (forwarded, from a local sender) the
    deadlines it keeps. Every value is the relay's own or was validated on the way in, so the event is encoded from
    plain values without building the model (a third of the cost), except with a redrive mark, whose operator name
    comes from a header. tests/test_outputs.py validates the events of a decision of every kind and reason."""
    r, msg, agreement = decision.record, decision.message, decision.agreement
    # the sending centre keeps the deadlines of its own party's notices (two-centre mode)
    expects_ack = (decision.kind is Outcome.FORWARDED and msg is not None and not isinstance(msg, Acknowledgement)
                   and topics.is_local(msg.sender))  # fmt: skip
    retransmit = agreement.retransmit if expects_ack and agreement else None
    event: dict[str, Any] = {
        "event_id": f"evt-{ids}",
        "kind": told.event_kind,
        "at": now,
        "source": r.ref,
        "received_at": r.received_at,
        **decision.identity,
        "reasons": told.reasons,
        "redrive_of": decision.redrive_of,
        "redriven_by": decision.redrive.operator if decision.redrive is not None else None,
        "ack_deadline_s": agreement.ack_deadline.total_seconds() if expects_ack and agreement else None,
        "retransmit_every_s": retransmit.every.total_seconds() if retransmit else None,
        "retransmit_max": retransmit.max_attempts if retransmit else None,
        **_notice_fields(decision),
    }
    if decision.redrive is None:
        body = to_json({k: v for k, v in event.items() if v is not None}, exclude_none=True)
    else:
        body = encode_fast(StatusEvent.model_validate(event))
    if decision.notice_text is not None and decision.agreement is not None:
        body = with_member(body, "notice", decision.notice_text)
    return OutRecord(topics.status, key, body, [])


def plan(
    decision: Decision, topics: Topics, signer: Signer, relay_id: str, now: datetime, origin: str = ""
) -> list[OutRecord]:
    """Every record to write for ``decision``, in one transaction: the forwards, the dead letter, the receipt, the
    status event and the state records (``origin``: the deployment's identity that ids are minted with, see the
    module's docstring)."""
    if decision.kind is Outcome.BEACON:
        return []  # the link is alive: metrics only
    ids = record_hash(decision, origin)
    if decision.kind is Outcome.REMOTE_RECEIPT:
        return _remote_receipt(decision, topics, now, ids)
    msg = decision.message
    key = msg.launch_key.encode() if msg else decision.record.key
    told = _told(decision)
    # a repeat that arrived over a link is the mirror's (it copies at least once), not the sender's: absorbed,
    # with only its status event
    absorbed = decision.kind is Outcome.DUPLICATE and decision.link is not None
    out = _forwards(decision, topics, relay_id, key) if decision.kind is Outcome.FORWARDED else []
    if decision.kind is not Outcome.FORWARDED and not absorbed:
        out.append(_dead_letter(decision, topics, relay_id, told.reasons))
    if decision.owner is not None and not absorbed:
        out.append(_receipt(decision, told, topics, signer, relay_id, now, ids, key, decision.owner))
    out.append(_status_event(decision, told, topics, now, ids, key))
    out += [OutRecord(topics.relay_state, w.key.encode(), w.to_bytes(), []) for w in decision.state_writes]
    return out


def _remote_receipt(decision: Decision, topics: Topics, now: datetime, ids: str) -> list[OutRecord]:
    """A linked centre's verdict on a message this centre sent it: its signed receipt passed to the local sender
    unchanged, and a status event for the tracker (which shows "accepted here, refused there")."""
    receipt, r = decision.remote, decision.record
    assert receipt is not None
    if not decision.state_writes:
        return []  # seen before: the mirror copied it again
    key = (receipt.launch_key or "").encode() or r.key
    out = [OutRecord(topics.inbound(p), key, r.value or b"", list(r.headers)) for p in decision.recipients]
    event: dict[str, Any] = {
        "event_id": f"evt-{ids}",
        "kind": EventKind.REMOTE_RECEIPT,
        "at": now,
        "source": r.ref,
        "received_at": r.received_at,
        "message_id": receipt.refers_to,
        "agreement": receipt.agreement,
        "sender": receipt.recipient,
        "recipients": [decision.link],
        "launch_key": receipt.launch_key,
        "reasons": receipt.reasons,
        "outcome": receipt.outcome.value,
    }
    body = encode_fast(StatusEvent.model_validate(event))
    out.append(OutRecord(topics.status, key, body, []))
    out += [OutRecord(topics.relay_state, w.key.encode(), w.to_bytes(), []) for w in decision.state_writes]
    return out
