"""Lifecycle events on the status topic: what happened to a message, for the tracker and operators."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

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
    REPORT_OVERDUE = "report_overdue"
    #: two-centre mode: a linked centre's receipt for a message this centre sent it (``outcome``: its verdict)
    REMOTE_RECEIPT = "remote_receipt"


#: The status events' format this release writes and reads. An event names its format in ``format`` only above
#: 1 (an event without one is format 1, as every event before formats were numbered); a tracker meeting a later
#: format stops at that event (FormatTooNew) rather than misread it or set it aside.
STATUS_EVENT_FORMAT = 1


def event_format(raw: bytes) -> int:
    """The format a status event's bytes name (1 when they name none or are not an object)."""
    if b'"format"' not in raw:  # the common case, without parsing twice
        return 1
    try:
        value = json.loads(raw).get("format", 1)
    except (ValueError, AttributeError):
        return 1  # not an event at all: the model says why
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


class StatusEvent(StrictModel):
    """One state change of one message, keyed on the status topic by its launch key."""

    format: int | None = Field(default=None, ge=1, description="the event's format; absent: 1")
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
    window_end: UtcDatetime | None = None
    #: when the notice stops mattering (its window's end, or its validity if later)
    expires_at: UtcDatetime | None = None
    #: when a report of the completed (or not) launch is due, where the agreement asks for one
    report_due_at: UtcDatetime | None = None
    #: for a planned launch or an amendment: the notice as it stands after this message
    notice: dict[str, Any] | None = None
    #: for an amendment: the fields it changed
    changed: list[str] = Field(default_factory=list)
    #: for a completed-launch report: launched, or not_launched
    outcome: str | None = None
    warnings: list[Reason] = Field(default_factory=list)
    #: decided again because an operator redrove it: the dead letter (topic:partition:offset) ...
    redrive_of: str | None = Field(default=None, max_length=300)
    #: ... and who did, as their signed mark names them: "<name> (<operator key id>)"
    redriven_by: str | None = Field(default=None, max_length=300)
    attempt: int | None = Field(default=None, ge=1, description="retransmission number")
