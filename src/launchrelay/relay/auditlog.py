"""The decision log as the relay writes it (``[relay] decision_log``; formats in docs/audit-log.md).

One log per input partition (``TOPIC:PARTITION``): its decisions already have one order, which Kafka's
transactions keep through kills and restarts. Each verdict (forwarded, rejected, duplicate) becomes a leaf, made
only of what the record and the decision say (the broker's time of receipt, not the clock), so a batch decided
again after a crash makes the same leaves. The leaves, a signed tree head when one is due, and the tree's
frontier (in the input offset's commit metadata) are all in the batch's own transaction: a leaf is appended once,
never lost, never twice.

Pure: :func:`log_records` is given the frontier and returns the records and the next frontier.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from launchrelay.audit.log import head_record, leaf_bytes, leaf_record
from launchrelay.audit.merkle import Frontier, leaf_hash
from launchrelay.contract.outcomes import VERDICTS
from launchrelay.relay.decide import Decision
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord

#: Commit metadata of the relay's input offset: this prefix, then the frontier's bytes in base64.
METADATA_PREFIX = "lrlog1:"


def log_id(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def frontier_from(metadata: str) -> Frontier:
    """The frontier committed with the input offset (an empty tree when none was: a partition the log starts on
    now)."""
    if not metadata.startswith(METADATA_PREFIX):
        return Frontier()
    return Frontier.from_bytes(base64.b64decode(metadata[len(METADATA_PREFIX) :]))


def metadata_of(frontier: Frontier) -> str:
    return METADATA_PREFIX + base64.b64encode(frontier.to_bytes()).decode()


def leaf_of(decision: Decision, log: str, index: int) -> bytes:
    msg, record = decision.message, decision.record
    at = record.received_at
    # an operator's redrive (its mark authentic): which dead letter it reopened, and who
    redrive = ({"dead_letter": decision.redrive_of, "by": decision.redrive.operator}
               if decision.redrive is not None and decision.redrive_of is not None else None)  # fmt: skip
    assert at is not None, "a record of an input topic carries the broker's time"
    return leaf_bytes(log, index, at, outcome=decision.kind.value, message_id=msg.message_id if msg else None,
                      sender=msg.sender if msg else decision.owner, recipients=list(decision.recipients),
                      reasons=decision.reason_codes, sha256=decision.digest, source=str(record.ref),
                      redrive=redrive)  # fmt: skip


@dataclass(frozen=True)
class HeadPolicy:
    every: int
    interval_s: float

    def due(self, size: int, last_head: tuple[int, float] | None, clock: float) -> bool:
        """Whether a tree of ``size`` leaves needs a head now: none yet, or leaves added since the last one (its
        size and ``clock`` time) and either ``every`` of them or ``interval_s`` since it."""
        if last_head is None:
            return True
        last_size, last_at = last_head
        return size > last_size and (size - last_size >= self.every or clock - last_at >= self.interval_s)


def log_records(
    decisions: list[Decision],
    log: str,
    frontier: Frontier,
    topic: str,
    signer: Signer,
    now: datetime,
    *,
    last_head: tuple[int, float] | None,
    policy: HeadPolicy,
    clock: float,
) -> tuple[list[OutRecord], Frontier, bool]:
    """The batch's leaves (one per verdict, in order) and, when due, a signed head over the tree after them; the
    frontier after the batch; whether a head was written. ``last_head``: the size and ``clock`` time of this
    log's last head in this process (None: none yet, so the first batch writes one)."""
    after = Frontier(frontier.size, frontier.hashes)
    out: list[OutRecord] = []
    for decision in decisions:
        if decision.kind not in VERDICTS:
            continue  # a beacon or a linked centre's receipt: no decision of this relay's
        leaf = leaf_of(decision, log, after.size)
        out.append(leaf_record(log, after.size, leaf, topic))
        after.append(leaf_hash(leaf))
    if not policy.due(after.size, last_head, clock):
        return out, after, False
    out.append(head_record(log, after, topic, signer, now))
    return out, after, True
