"""From a deadline action to the records the tracker writes in one transaction (pure, apart from signing).

A timeout becomes a relay-signed ``acknowledgement_overdue`` receipt to the sender and an
``acknowledgement_overdue`` status event (``report_overdue`` when what is owed is the sender's own report
of the launch); a retransmission becomes the original record re-sent to
the recipient (its bytes and the sender's signature unchanged, plus ``lr-retransmission``) and a
``retransmitted`` status event. Ids derive from the action and from the notice's own record (the
deployment's origin, the original record's place and its broker time: see :func:`action_seed`), so a replay
after a crash writes the same ids, and no other deployment, nor this one after its topics were created anew,
writes the same id for another notice. The tracker learns that an action happened only by reading its status event back.
"""

from __future__ import annotations

from datetime import datetime

from launchrelay.contract.codec import encode, stable_id
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.headers import RETRANSMISSION_HEADER, Headers
from launchrelay.contract.messages import Receipt, ReceiptOutcome, RecordRef
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord, Topics
from launchrelay.tracker.deadlines import Action, Retransmit, action_id
from launchrelay.tracker.lifecycle import DeliveryKind, Notification


def action_seed(action: Action, n: Notification, origin: str) -> str:
    """What the ids of one action's records are minted from: the deployment's origin (its cluster id), where
    the notice was read (topic, partition, offset) and when the broker received it, and the action itself."""
    received = n.received_at.isoformat() if n.received_at else ""
    return f"{origin}\x00{n.source or ''}\x00{received}\x00{action_id(action)}"


def plan(
    action: Action,
    n: Notification,
    original: tuple[bytes, Headers] | None,
    topics: Topics,
    signer: Signer,
    tracker_id: str,
    now: datetime,
    origin: str = "",
) -> list[OutRecord]:
    """The records for one action on notification ``n`` (``original``: its record, for a retransmission;
    ``origin``: the deployment's identity, see :func:`action_seed`)."""
    assert n.sender is not None and n.message_id is not None
    d = action.delivery
    aid = action_seed(action, n, origin)
    key = (n.launch_key or "").encode()
    attempt = action.attempt if isinstance(action, Retransmit) else None
    report = d.kind is DeliveryKind.REPORT
    overdue = EventKind.REPORT_OVERDUE if report else EventKind.ACKNOWLEDGEMENT_OVERDUE
    out: list[OutRecord] = []
    if attempt is not None:
        if original is not None:  # gone with retention: only the event says it was due
            # two-centre mode: over the link, where the counterpart's relay forwards each attempt once
            value, headers = original
            out.append(OutRecord(topics.to(d.recipient), key, value,
                                 [*headers, (RETRANSMISSION_HEADER, str(attempt).encode())]))  # fmt: skip
    else:
        receipt = Receipt(
            message_id=stable_id("overdue", aid),
            issued_by=tracker_id,
            recipient=n.sender,
            outcome=ReceiptOutcome.REPORT_OVERDUE if report else ReceiptOutcome.ACKNOWLEDGEMENT_OVERDUE,
            created_at=now,
            refers_to=n.message_id,
            agreement=n.agreement,
            launch_key=n.launch_key,
            forwarded_to=[] if report else [d.recipient],
            source=RecordRef.parse(n.source) if n.source else None,
        )
        body = encode(receipt)
        out.append(OutRecord(topics.inbound(n.sender), key, body, signer.headers(body)))
    event = StatusEvent(
        event_id=stable_id("evt", aid),
        kind=EventKind.RETRANSMITTED if attempt is not None else overdue,
        at=now,
        message_id=n.message_id,
        message_type=n.message_type,
        agreement=n.agreement,
        sender=n.sender,
        recipients=[d.recipient],
        launch_key=n.launch_key,
        attempt=attempt,
    )
    out.append(OutRecord(topics.status, key, encode(event), []))
    return out
