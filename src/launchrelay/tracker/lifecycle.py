"""Pure state of notifications and their deliveries, and how status events change it.

A *notification* is any party message the relay handled (keyed ``SENDER/ID``);
a *delivery* is one recipient's copy of a forwarded message that expects an
acknowledgement. Functions here take rows and an event and return new rows:
no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from launchrelay.agreements.config import RetransmitPolicy
from launchrelay.contract.codec import message_key
from launchrelay.contract.events import EventKind, StatusEvent


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
    outcome: str  # forwarded | rejected | duplicate
    reasons: tuple[tuple[str, str], ...] = ()
    closed_by: str | None = None  # cancellation | completed_launch
    amended: int = 0
    source: str | None = None  # topic:partition:offset of the original record


@dataclass(frozen=True)
class Delivery:
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
    return f"record:{src.topic}:{src.partition}:{src.offset}" if src else f"event:{event.event_id}"


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
        outcome=event.kind.value,
        reasons=tuple((r.code, r.message) for r in event.reasons),
        source=f"{event.source.topic}:{event.source.partition}:{event.source.offset}" if event.source else None,
    )


def deliveries_for(event: StatusEvent, policy: RetransmitPolicy | None) -> list[Delivery]:
    """One pending delivery per recipient of a forwarded message that expects acknowledgement."""
    if event.kind is not EventKind.FORWARDED or event.ack_deadline_s is None:
        return []
    key = notification_key(event.sender, event.message_id, event)
    deadline = event.at + timedelta(seconds=event.ack_deadline_s)
    return [
        Delivery(
            key=key,
            recipient=r,
            state=DeliveryState.PENDING,
            forwarded_at=event.at,
            deadline_at=deadline,
            every=policy.every if policy else None,
            max_retransmits=policy.max_attempts if policy else 0,
        )
        for r in event.recipients
    ]


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


def overall_state(n: Notification, deliveries: list[Delivery]) -> str:
    """One word for the operator's table."""
    if n.outcome != "forwarded":
        return n.outcome
    if n.closed_by == "cancellation":
        return "cancelled"
    if n.closed_by == "completed_launch":
        return "completed"
    states = {d.state for d in deliveries}
    if not deliveries:
        return "forwarded"
    if DeliveryState.TIMED_OUT in states:
        return "overdue"
    if DeliveryState.PENDING in states:
        return "pending"
    if DeliveryState.ACKNOWLEDGED_LATE in states:
        return "acknowledged_late"
    return "acknowledged"
