"""What the relay says about the decisions it commits: metrics per record, one log line per transaction.

Per record, the full detail (``relay.forwarded``) is at DEBUG: rendering a JSON line for every
record cost about a tenth of the relay's CPU. At INFO each committed transaction is one line,
``relay.committed``, naming the partition, the offsets and every message id in it, so an
operator still follows a notification by its id (see the README); rejections, duplicates and
records set aside keep a line each, with reasons, since each needs a reader.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import structlog
from aiokafka import TopicPartition

from launchrelay.contract.messages import ReceiptOutcome
from launchrelay.contract.outcomes import Outcome
from launchrelay.relay.decide import Decision
from launchrelay.relay.metrics import RelayMetrics
from launchrelay.runtime.watcher import key

log = structlog.get_logger("launchrelay.relay")


def _fields(d: Decision, relay_id: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"source": str(d.record.ref), **d.identity, "relay_id": relay_id}
    if d.redrive_of is not None:
        fields["redrive_of"] = d.redrive_of
        fields["redriven_by"] = d.redrive.operator if d.redrive else None
    elif d.redrive_ignored is not None:
        fields["redrive_ignored"] = d.redrive_ignored.message
    return fields


def observe(decisions: list[Decision], relay_id: str, metrics: RelayMetrics) -> None:
    """Count a transaction's outcomes; log each (forwards at DEBUG) with the ids an operator follows a message by.

    Counters move once per label set per transaction (a label lookup and an increment cost more than the
    rest of the accounting for a record); rejections, duplicates and records set aside log one line each."""
    received: Counter[str] = Counter()
    forwarded: Counter[tuple[str, str, str]] = Counter()
    debug = log.is_enabled_for(logging.DEBUG)  # the fields cost more than the no-op call
    for d in decisions:
        if d.link is not None:
            _linked(d, metrics)
            if d.kind in (Outcome.BEACON, Outcome.REMOTE_RECEIPT):
                continue
        msg = d.message
        sender = (msg.sender if msg else d.owner) or "-"
        agreement = (msg.agreement if msg else None) or "-"
        received[sender] += 1
        if d.kind is Outcome.FORWARDED:
            for r in d.recipients:
                forwarded[agreement, sender, r] += 1
            if debug:
                reached = {"recipients": d.recipients}  # over a link, only this centre's own party
                log.debug("relay.forwarded", **(_fields(d, relay_id) | reached))
        elif d.kind is Outcome.DUPLICATE and d.link is not None:
            metrics.link_repeats.labels(d.link).inc()
            log.debug("relay.link_repeat", link=d.link, **_fields(d, relay_id))
        elif d.kind is Outcome.DUPLICATE:
            metrics.duplicates.labels(sender).inc()
            log.info("relay.duplicate", **_fields(d, relay_id))
        else:
            for code in dict.fromkeys(d.reason_codes):
                metrics.rejected.labels(agreement, sender, code).inc()
            if d.error is not None:  # the relay's own failure, not the sender's: an operator must look
                log.error("relay.set_aside", reasons=d.reason_codes, error=d.error, **_fields(d, relay_id))
            else:
                log.warning("relay.rejected", reasons=d.reason_codes, **_fields(d, relay_id))
    for sender, n in received.items():
        metrics.messages_in.labels(sender).inc(n)
    for labels, n in forwarded.items():
        metrics.forwarded.labels(*labels).inc(n)


def _linked(d: Decision, metrics: RelayMetrics) -> None:
    """Two-centre mode: the link is alive (any record over it), how late its beacon was, and the other side's
    verdicts (a refusal of what this centre accepted is a disagreement both sides must see)."""
    assert d.link is not None
    arrived = d.record.received_at
    if arrived is not None:
        metrics.link_last_heard.labels(d.link).set(arrived.timestamp())
        if d.beacon_at is not None:
            metrics.link_delay.labels(d.link).set(max(0.0, (arrived - d.beacon_at).total_seconds()))
    receipt = d.remote
    if receipt is None or not d.state_writes:
        return
    if receipt.outcome is ReceiptOutcome.REJECTED:
        metrics.link_disagreements.labels(d.link).inc()
        log.warning("relay.refused_there", link=d.link, message_id=receipt.refers_to, sender=receipt.recipient,
                    reasons=[r.code for r in receipt.reasons], receipt=receipt.message_id)  # fmt: skip
    else:
        log.info("relay.remote_receipt", link=d.link, message_id=receipt.refers_to, outcome=receipt.outcome.value,
                 receipt=receipt.message_id)  # fmt: skip


def committed(tp: TopicPartition, decisions: list[Decision], relay_id: str) -> None:
    """One INFO line per committed transaction: where, how many of each outcome, and every message id."""
    counts = dict.fromkeys(Outcome, 0)
    ids = []
    redriven = []
    for d in decisions:
        counts[d.kind] += 1
        if d.message is not None:
            ids.append(d.message.message_id)
        if d.redrive_of is not None and d.redrive is not None:
            redriven.append((d.redrive_of, d.redrive.operator))
    log.info(
        "relay.committed", partition=key(tp), first_offset=decisions[0].record.offset,
        last_offset=decisions[-1].record.offset, forwarded=counts[Outcome.FORWARDED], rejected=counts[Outcome.REJECTED],
        duplicates=counts[Outcome.DUPLICATE], message_ids=ids, relay_id=relay_id,
        **({"remote_receipts": counts[Outcome.REMOTE_RECEIPT]} if counts[Outcome.REMOTE_RECEIPT] else {}),
        **({"redrive_of": [r for r, _ in redriven], "redriven_by": [b for _, b in redriven]} if redriven else {}),
    )  # fmt: skip
