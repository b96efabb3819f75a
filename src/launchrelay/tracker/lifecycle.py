"""Pure state of notifications and their deliveries, and how status events change it.

A *notification* is any party message the relay handled (keyed ``SENDER/ID``);
a *delivery* is one recipient's copy of a forwarded message that expects an
acknowledgement. :func:`apply` takes an event and the rows it touches (read
through a :class:`LedgerView`) and returns the rows to write and the timeline
entries to add: every rule of the ledger is here, the SQL is in ``ledger.py``.
No I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from launchrelay.contract.codec import message_key
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.outcomes import Outcome


class DeliveryState(StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"
    ACKNOWLEDGED_LATE = "acknowledged_late"
    TIMED_OUT = "timed_out"
    STOPPED = "stopped"  # the notification was cancelled or completed before an acknowledgement


@dataclass(frozen=True)
class Notification:
    key: str
    message_id: str | None
    message_type: str | None
    sender: str | None
    agreement: str | None
    launch_key: str | None
    recipients: tuple[str, ...]
    refers_to: str | None
    window_start: datetime | None
    received_at: datetime | None
    outcome: Outcome  # a verdict: forwarded, rejected or duplicate
    reasons: tuple[tuple[str, str], ...] = ()
    closed_by: str | None = None  # cancellation | completed_launch
    amended: int = 0
    source: str | None = None  # topic:partition:offset of the original record
    window_end: datetime | None = None
    #: when the notice stops mattering; past it, an open notice is "expired"
    expires_at: datetime | None = None
    #: for a planned launch: the notice as it now stands (its content, every amendment applied)
    notice: dict[str, Any] | None = None
    #: for a completed-launch report: launched or not_launched
    report_outcome: str | None = None
    #: two-centre mode: accepted here but refused by a linked centre: who, and its reason codes ("RU: LEAD_…")
    refused_there: str | None = None


class DeliveryKind(StrEnum):
    ACK = "ack"  # a recipient owes an acknowledgement
    REPORT = "report"  # the sender owes a report of the completed (or not) launch


@dataclass(frozen=True)
class Delivery:
    """Something owed by a deadline: a recipient's acknowledgement, or (kind REPORT) the sender's report."""

    key: str
    recipient: str
    state: DeliveryState
    forwarded_at: datetime
    deadline_at: datetime
    every: timedelta | None
    max_retransmits: int
    retransmits: int = 0
    acked_at: datetime | None = None
    ack_message_id: str | None = None
    timed_out_at: datetime | None = None
    kind: DeliveryKind = DeliveryKind.ACK

    @property
    def latency(self) -> timedelta | None:
        return self.acked_at - self.forwarded_at if self.acked_at else None

    @property
    def next_retransmit_at(self) -> datetime | None:
        """When the next re-send is due, or None when no more are (policy exhausted or past the deadline)."""
        if self.state is not DeliveryState.PENDING or self.every is None or self.retransmits >= self.max_retransmits:
            return None
        at = self.forwarded_at + self.every * (self.retransmits + 1)
        return at if at < self.deadline_at else None


def notification_key(sender: str | None, message_id: str | None, event: StatusEvent) -> str:
    if sender and message_id:
        return message_key(sender, message_id)
    src = event.source
    return f"record:{src}" if src else f"event:{event.event_id}"


def from_event(event: StatusEvent) -> Notification:
    """The ledger row for a message the relay just decided on."""
    return Notification(
        key=notification_key(event.sender, event.message_id, event),
        message_id=event.message_id,
        message_type=event.message_type,
        sender=event.sender,
        agreement=event.agreement,
        launch_key=event.launch_key,
        recipients=tuple(event.recipients),
        refers_to=event.refers_to,
        window_start=event.window_start,
        received_at=event.received_at,
        outcome=Outcome(event.kind.value),
        reasons=tuple((r.code, r.message) for r in event.reasons),
        source=str(event.source) if event.source else None,
        window_end=event.window_end,
        expires_at=event.expires_at,
        notice=event.notice if event.message_type == "planned_launch" else None,
        report_outcome=event.outcome,
    )


def deliveries_for(event: StatusEvent) -> list[Delivery]:
    """One pending delivery per recipient of a forwarded message that expects acknowledgement.

    The deadline and the re-send policy are the ones the event carries: those of the agreement
    when the message was forwarded (a config changed later does not move them).
    """
    if event.kind is not EventKind.FORWARDED or event.ack_deadline_s is None:
        return []
    key = notification_key(event.sender, event.message_id, event)
    deadline = event.at + timedelta(seconds=event.ack_deadline_s)
    every = timedelta(seconds=event.retransmit_every_s) if event.retransmit_every_s else None
    owed = [
        Delivery(
            key=key,
            recipient=r,
            state=DeliveryState.PENDING,
            forwarded_at=event.at,
            deadline_at=deadline,
            every=every,
            max_retransmits=(event.retransmit_max or 0) if every else 0,
        )
        for r in event.recipients
    ]
    if event.message_type == "planned_launch" and event.report_due_at is not None and event.sender:
        # the agreement asks for a report after the launch: the sender owes it by then
        owed.append(
            Delivery(key=key, recipient=event.sender, state=DeliveryState.PENDING, forwarded_at=event.at,
                     deadline_at=event.report_due_at, every=None, max_retransmits=0, kind=DeliveryKind.REPORT)
        )  # fmt: skip
    return owed


def acknowledge(delivery: Delivery, ack_id: str, at: datetime) -> Delivery:
    """Record an acknowledgement; after a timeout it is recorded as late, never lost; repeats change nothing."""
    if delivery.state in (DeliveryState.ACKNOWLEDGED, DeliveryState.ACKNOWLEDGED_LATE):
        return delivery
    late = delivery.state is DeliveryState.TIMED_OUT or at > delivery.deadline_at
    return replace(
        delivery,
        state=DeliveryState.ACKNOWLEDGED_LATE if late else DeliveryState.ACKNOWLEDGED,
        acked_at=at,
        ack_message_id=ack_id,
    )


def stop(delivery: Delivery) -> Delivery:
    """A cancelled or completed notification stops its pending deadlines."""
    return replace(delivery, state=DeliveryState.STOPPED) if delivery.state is DeliveryState.PENDING else delivery


def timed_out(delivery: Delivery, at: datetime) -> Delivery:
    if delivery.state is not DeliveryState.PENDING:
        return delivery
    return replace(delivery, state=DeliveryState.TIMED_OUT, timed_out_at=at)


def retransmitted(delivery: Delivery, attempt: int) -> Delivery:
    return replace(delivery, retransmits=max(delivery.retransmits, attempt))


def overall_state(n: Notification, deliveries: list[Delivery], now: datetime | None = None) -> str:
    """One word for the operator's table (with ``now``: a notice past its window and validity is expired)."""
    if n.outcome is not Outcome.FORWARDED:
        return n.outcome.value
    if n.refused_there:
        return "refused_there"  # accepted here, refused by the counterpart's centre: both sides must see it
    if n.closed_by == "cancellation":
        return "cancelled"
    if n.closed_by == "completed_launch":
        return "not_launched" if n.report_outcome == "not_launched" else "completed"
    acks = {d.state for d in deliveries if d.kind is DeliveryKind.ACK}
    report = next((d for d in deliveries if d.kind is DeliveryKind.REPORT), None)
    if DeliveryState.TIMED_OUT in acks:
        return "overdue"
    if report is not None and report.state is DeliveryState.TIMED_OUT:
        return "report_overdue"
    if now is not None and n.expires_at is not None and now >= n.expires_at:
        return "expired"  # past its window and validity: nothing more to wait for but a report, if one is owed
    if DeliveryState.PENDING in acks:
        return "pending"
    if DeliveryState.ACKNOWLEDGED_LATE in acks:
        return "acknowledged_late"
    return "acknowledged" if acks else "forwarded"


# --- how one event changes the ledger -------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    """One entry of a notification's timeline."""

    key: str
    at: datetime
    kind: str
    detail: dict[str, Any]


@dataclass
class Changes:
    """What one event does to the ledger: rows to write as they are, and timeline entries to add."""

    notifications: list[Notification] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def note(self, key: str, at: datetime, kind: str, **detail: Any) -> None:
        self.notes.append(Note(key, at, kind, detail))


class LedgerView(Protocol):
    """The rows an event may touch, as they stand (earlier events of the same batch included)."""

    def notification(self, key: str) -> Notification | None: ...
    def deliveries(self, key: str) -> list[Delivery]: ...


def apply(event: StatusEvent, view: LedgerView) -> Changes:
    """The rows ``event`` writes and the timeline entries it adds."""
    changes = Changes()
    {
        EventKind.FORWARDED: _forwarded,
        EventKind.REJECTED: _rejected,
        EventKind.DUPLICATE: _duplicate,
        EventKind.RETRANSMITTED: _retransmitted,
        EventKind.ACKNOWLEDGEMENT_OVERDUE: _overdue,
        EventKind.REPORT_OVERDUE: _report_overdue,
        EventKind.REMOTE_RECEIPT: _remote_receipt,
    }[event.kind](event, view, changes)
    return changes


def _redriven(e: StatusEvent) -> dict[str, str]:
    """On the timeline: which dead letter an operator redrove this from, and who (their signed mark)."""
    if e.redrive_of is None:
        return {}
    return {"redrive_of": e.redrive_of, "redriven_by": e.redriven_by or "?"}


def _forwarded(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    n = from_event(e)
    existing = view.notification(n.key)
    if existing is None:
        out.notifications.append(n)
    elif existing.outcome is Outcome.REJECTED:
        # A notice rejected before and redriven by an operator is forwarded now: it takes the rejection's place.
        out.notifications.append(
            replace(existing, outcome=n.outcome, reasons=n.reasons, received_at=n.received_at, source=n.source)
        )
    out.note(n.key, e.at, "forwarded", recipients=list(n.recipients), message_type=n.message_type, **_redriven(e))
    have = {(d.kind, d.recipient) for d in view.deliveries(n.key)}
    out.deliveries += [d for d in deliveries_for(e) if (d.kind, d.recipient) not in have]
    if not e.refers_to or not e.sender:
        return
    if e.message_type == "acknowledgement" and e.recipients:
        _acknowledged(e, view, out)
        return
    ref_key = message_key(e.sender, e.refers_to)
    ref = view.notification(ref_key)
    if e.message_type == "amendment":
        if ref is not None:
            out.notifications.append(
                replace(ref, amended=ref.amended + 1, notice=e.notice or ref.notice,
                        window_start=e.window_start or ref.window_start, window_end=e.window_end or ref.window_end,
                        expires_at=e.expires_at or ref.expires_at)
            )  # fmt: skip
            if e.report_due_at is not None:  # a moved window moves the report due after it
                due_at = e.report_due_at
                out.deliveries += [
                    replace(d, deadline_at=due_at)
                    for d in view.deliveries(ref_key)
                    if d.kind is DeliveryKind.REPORT and d.state is DeliveryState.PENDING
                ]
        out.note(ref_key, e.at, "amended", by=e.message_id, changed=e.changed)
    elif e.message_type in ("cancellation", "completed_launch"):
        if ref is not None:
            out.notifications.append(replace(ref, closed_by=e.message_type, report_outcome=e.outcome))
        kind = "cancelled" if e.message_type == "cancellation" else (
            "not_launched" if e.outcome == "not_launched" else "completed")  # fmt: skip
        out.note(ref_key, e.at, kind, by=e.message_id)
        out.deliveries += [stop(d) for d in view.deliveries(ref_key) if d.state is DeliveryState.PENDING]


def _acknowledged(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    """An acknowledgement is matched to the delivery of what it refers to, to the recipient that sent it."""
    assert e.refers_to is not None and e.sender is not None
    ref_key = message_key(e.recipients[0], e.refers_to)
    target = next((d for d in view.deliveries(ref_key) if d.recipient == e.sender and d.kind is DeliveryKind.ACK), None)
    if target is None:
        out.note(ref_key, e.at, "acknowledgement_unmatched", by=e.sender, ack=e.message_id)
        return
    acked = acknowledge(target, e.message_id or "", e.received_at or e.at)
    if acked != target:
        out.deliveries.append(acked)
        latency = acked.latency.total_seconds() if acked.latency else None
        out.note(ref_key, e.at, acked.state.value, by=e.sender, ack=e.message_id, latency_s=latency)


def _rejected(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    n = from_event(e)
    existing = view.notification(n.key)
    if existing is not None and existing.outcome is Outcome.REJECTED and e.redrive_of is not None:
        # An operator redrove the rejected message and it was refused again: the same row, today's reasons.
        n = replace(existing, reasons=n.reasons, received_at=n.received_at, source=n.source)
    elif existing is not None:  # e.g. a conflicting reuse of a forwarded id: keep both rows
        n = replace(n, key=notification_key(None, None, e))
    out.notifications.append(n)
    out.note(n.key, e.at, "rejected", reasons=[r.code for r in e.reasons], **_redriven(e))


def _duplicate(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    out.note(notification_key(e.sender, e.message_id, e), e.at, "duplicate", source=str(e.source) if e.source else None,
             reasons=[r.code for r in e.reasons], **_redriven(e))  # fmt: skip


def _each_recipient(
    e: StatusEvent,
    view: LedgerView,
    out: Changes,
    note: str,
    change: Any,
    kind: DeliveryKind = DeliveryKind.ACK,
    **detail: Any,
) -> None:
    key = notification_key(e.sender, e.message_id, e)
    by_recipient = {d.recipient: d for d in view.deliveries(key) if d.kind is kind}
    for r in e.recipients:
        if r in by_recipient:
            out.deliveries.append(change(by_recipient[r]))
        out.note(key, e.at, note, recipient=r, **detail)


def _retransmitted(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    _each_recipient(
        e, view, out, "retransmitted", lambda d: retransmitted(d, e.attempt or d.retransmits + 1), attempt=e.attempt
    )


def _overdue(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    _each_recipient(e, view, out, "timed_out", lambda d: timed_out(d, e.at), kind=DeliveryKind.ACK)


def _report_overdue(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    _each_recipient(e, view, out, "report_overdue", lambda d: timed_out(d, e.at), kind=DeliveryKind.REPORT)


def _remote_receipt(e: StatusEvent, view: LedgerView, out: Changes) -> None:
    """Two-centre mode: a linked centre's verdict on a message this centre forwarded to it. A refusal of what was
    accepted here is a disagreement: the notification says so, and the acknowledgement it can no longer get is
    no longer awaited (the sender is told by the counterpart's receipt, passed on to it)."""
    key = notification_key(e.sender, e.message_id, e)
    there = e.recipients[0] if e.recipients else "?"
    codes = [r.code for r in e.reasons]
    if e.outcome != Outcome.REJECTED:
        out.note(key, e.at, "received_there" if e.outcome == Outcome.FORWARDED else f"{e.outcome}_there", by=there)
        return
    out.note(key, e.at, "refused_there", by=there, reasons=codes)
    n = view.notification(key)
    if n is not None:
        out.notifications.append(replace(n, refused_there=f"{there}: {', '.join(codes) or '?'}"))
    out.deliveries += [
        stop(d) for d in view.deliveries(key)
        if d.recipient == there and d.kind is DeliveryKind.ACK and d.state is DeliveryState.PENDING
    ]  # fmt: skip
