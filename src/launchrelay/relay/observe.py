"""One structured log event and the metrics for each decision the relay commits."""

from __future__ import annotations

from typing import Any

import structlog

from launchrelay.relay.decide import Decision
from launchrelay.relay.metrics import RelayMetrics

log = structlog.get_logger("launchrelay.relay")


def observe(d: Decision, relay_id: str, metrics: RelayMetrics) -> None:
    """Log the outcome with the ids an operator follows a message by, and count it."""
    msg = d.message
    fields: dict[str, Any] = {
        "source": str(d.record.ref),
        "message_id": msg.message_id if msg else None,
        "message_type": msg.message_type if msg else None,
        "launch_key": msg.launch_key if msg else None,
        "agreement": msg.agreement if msg else None,
        "sender": msg.sender if msg else d.owner,
        "relay_id": relay_id,
    }
    if d.record.redrive_of is not None:
        fields["redrive_of"] = d.record.redrive_of
    agreement, sender = fields["agreement"] or "-", fields["sender"] or "-"
    metrics.messages_in.labels(sender).inc()
    if d.kind == "forward":
        for r in d.recipients:
            metrics.forwarded.labels(agreement, sender, r).inc()
        log.info("relay.forwarded", recipients=d.recipients, **fields)
    elif d.kind == "duplicate":
        metrics.duplicates.labels(sender).inc()
        log.info("relay.duplicate", **fields)
    else:
        for code in dict.fromkeys(d.reason_codes):
            metrics.rejected.labels(agreement, sender, code).inc()
        if d.error is not None:  # the relay's own failure, not the sender's: an operator must look
            log.error("relay.set_aside", reasons=d.reason_codes, error=d.error, **fields)
        else:
            log.warning("relay.rejected", reasons=d.reason_codes, **fields)
