"""The tracker's decisions in the decision log (``[relay] decision_log``; docs/audit-log.md).

An overdue alert is a decision a party is told of (its ``acknowledgement_overdue`` or ``report_overdue``
receipt), so it is a leaf too: of one log, ``PREFIX.tracker``, in the alert's own transaction, with a signed tree
head after the leaves of each transaction (alerts are few; each batch of them is covered at once). The tracker
keeps no offset in Kafka to hang the tree's frontier on: it reads its leaves back from the log topic at start,
after its producer has fenced the last incarnation, so what it reads is exactly what was committed.

Pure: :func:`log_records` is given the frontier and returns the records and the next frontier.
"""

from __future__ import annotations

from datetime import datetime

from launchrelay.audit.log import head_record, leaf_bytes, leaf_record
from launchrelay.audit.merkle import Frontier, leaf_hash
from launchrelay.contract.messages import ReceiptOutcome
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord, Topics
from launchrelay.tracker.lifecycle import DeliveryKind, Notification


def log_id(topics: Topics) -> str:
    """``PREFIX.tracker``; in two-centre mode ``PREFIX.P.tracker`` in P's centre (each centre's logs have names of
    their own, so a party holding both centres' views never takes two logs for one)."""
    return f"{topics.prefix}.tracker" if topics.here is None else f"{topics.prefix}.{topics.here}.tracker"


def overdue_leaf(log: str, index: int, n: Notification, kind: DeliveryKind, recipient: str, digest: str,
                 at: datetime) -> bytes:  # fmt: skip
    """An alert as a leaf: what was overdue, whose, from whom it was owed; ``digest``: the SHA-256 of the original
    record (empty when it is gone with retention)."""
    report = kind is DeliveryKind.REPORT
    outcome = ReceiptOutcome.REPORT_OVERDUE if report else ReceiptOutcome.ACKNOWLEDGEMENT_OVERDUE
    return leaf_bytes(log, index, at, outcome=outcome.value, message_id=n.message_id, sender=n.sender,
                      recipients=[] if report else [recipient], reasons=[], sha256=digest,
                      source=n.source)  # fmt: skip


def log_records(
    alerts: list[tuple[Notification, DeliveryKind, str, str]], topics: Topics, frontier: Frontier, signer: Signer,
    now: datetime,
) -> tuple[list[OutRecord], Frontier]:  # fmt: skip
    """The leaves of one transaction's alerts (notification, kind, recipient, digest), in order, and a signed head
    over the tree after them; the frontier after them."""
    log, after, out = log_id(topics), Frontier(frontier.size, frontier.hashes), []
    for n, kind, recipient, digest in alerts:
        leaf = overdue_leaf(log, after.size, n, kind, recipient, digest, now)
        out.append(leaf_record(log, after.size, leaf, topics.decision_log))
        after.append(leaf_hash(leaf))
    if out:
        out.append(head_record(log, after, topics.decision_log, signer, now))
    return out, after
