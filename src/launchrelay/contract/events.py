"""Lifecycle events on the status topic: what happened to a message, for the tracker and operators."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from launchrelay.contract.areas import StrictModel
from launchrelay.contract.messages import (
    AgreementId,
    Identifier,
    PartyCode,
    Reason,
    RecordRef,
    UtcDatetime,
)


class EventKind(StrEnum):
    FORWARDED = "forwarded"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    RETRANSMITTED = "retransmitted"
    ACKNOWLEDGEMENT_OVERDUE = "acknowledgement_overdue"


class StatusEvent(StrictModel):
    """One state change of one message, keyed on the status topic by its launch key."""

    event_id: Identifier
    kind: EventKind
    at: UtcDatetime
    source: RecordRef | None = None
    received_at: UtcDatetime | None = None
    message_id: Identifier | None = None
    message_type: str | None = None
    agreement: AgreementId | None = None
    sender: PartyCode | None = None
    recipients: list[PartyCode] = Field(default_factory=list)
    launch_key: Identifier | None = None
    refers_to: Identifier | None = None
    reasons: list[Reason] = Field(default_factory=list)
    ack_deadline_s: float | None = None
    #: the agreement's re-send policy when the message was forwarded: every this many seconds, at most this often
    retransmit_every_s: float | None = Field(default=None, gt=0)
    retransmit_max: int | None = Field(default=None, ge=0)
    window_start: UtcDatetime | None = None
    attempt: int | None = Field(default=None, ge=1, description="retransmission number")
