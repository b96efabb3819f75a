"""What the relay made of a record: the one enumeration of its outcomes.

The relay's decisions, its state, the tracker's ledger, the logs and the counters all speak these. Their values are
the published ones: a receipt's ``outcome`` (:class:`~launchrelay.contract.messages.ReceiptOutcome`) and a status
event's ``kind`` (:class:`~launchrelay.contract.events.EventKind`) carry a verdict as it is written here. Those two
stay enumerations of their own because they are the contract (generated code names them) and each adds what only
it tells: a receipt that an acknowledgement or report is overdue, an event that a notice was re-sent. A test holds
every verdict to be a member of both, so a verdict passes to either unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    #: the message was sent on to its recipients
    FORWARDED = "forwarded"
    #: the message was refused, with reasons (the sender's receipt and a dead letter say why)
    REJECTED = "rejected"
    #: the same message was decided before (nothing is sent again)
    DUPLICATE = "duplicate"
    #: two-centre mode: a linked centre's signed receipt for a message this centre sent it (passed to the sender)
    REMOTE_RECEIPT = "remote_receipt"
    #: two-centre mode: a linked centre's relay saying the link is alive (nothing is written)
    BEACON = "beacon"


#: The verdicts on a party's message: each is also a receipt outcome and a status event kind.
VERDICTS = (Outcome.FORWARDED, Outcome.REJECTED, Outcome.DUPLICATE)

__all__ = ["VERDICTS", "Outcome"]
