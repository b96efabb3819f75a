"""The decision log as it stands on its topics, as statements a party checks (docs/audit-log.md): every committed
leaf and signed tree head of the log topic (the operator's export), or what one party holds (its proofs topic,
and what its in topic told it)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from launchrelay.audit.log import INDEX_HEADER, KIND_HEADER, receipt_statement
from launchrelay.contract.headers import header
from launchrelay.contract.messages import ReceiptOutcome
from launchrelay.contract.outcomes import VERDICTS
from launchrelay.errors import kafka_errors
from launchrelay.kafka.consume import read_to_end
from launchrelay.topics import Topics


async def _read(bootstrap: str, topic: str, each: Callable[[ConsumerRecord], Iterable[dict[str, Any]]],
                client_options: dict[str, Any] | None, timeout_s: float) -> list[dict[str, Any]]:  # fmt: skip
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False, **(client_options or {}))  # fmt: skip
    out: list[dict[str, Any]] = []
    try:
        with kafka_errors(f"cannot read {topic} on {bootstrap}"):
            await consumer.start()
            async for _, records in read_to_end(consumer, topic, {}, None, timeout_s, 5000):
                for r in records:
                    out.extend(each(r))
    finally:
        await consumer.stop()
    return out


def _log_statement(r: ConsumerRecord) -> list[dict[str, Any]]:
    kind = header(r.headers, KIND_HEADER)
    if kind == b"leaf":
        index = int((header(r.headers, INDEX_HEADER) or b"-1").decode())
        return [{"type": "leaf", "log": (r.key or b"").decode(errors="replace"), "index": index,
                 "leaf": base64.b64encode(r.value or b"").decode()}]  # fmt: skip
    return [json.loads(r.value or b"{}")] if kind == b"head" else []


async def read_log(
    bootstrap: str, topics: Topics, client_options: dict[str, Any] | None = None, timeout_s: float = 120.0
) -> list[dict[str, Any]]:
    """Every committed leaf (as a ``leaf`` statement) and head (``tree_head``) of the log topic."""
    return await _read(bootstrap, topics.decision_log, _log_statement, client_options, timeout_s)


#: the outcomes of receipts whose decisions the log holds: the relay's verdicts and the tracker's alerts
LOGGED = {
    *(v.value for v in VERDICTS),
    ReceiptOutcome.ACKNOWLEDGEMENT_OVERDUE.value,
    ReceiptOutcome.REPORT_OVERDUE.value,
}


def told(party: str, value: bytes) -> dict[str, Any] | None:
    """What a record of ``party``'s in topic told it, as a ``receipt`` statement: a receipt of a verdict on a record
    the party wrote, or of an alert on one (its id and the outcome: the receipt carries neither the bytes nor the
    sender the record claimed), or a message forwarded to it (sender, id, ``forwarded`` and the SHA-256 of the
    bytes it received). None for anything else (bytes that are no message)."""
    try:
        body = json.loads(value)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("message_id"), str):
        return None
    if body.get("message_type") == "receipt":
        if body.get("outcome") not in LOGGED or not isinstance(body.get("refers_to"), str):
            return None
        return receipt_statement(body["refers_to"], None, body["outcome"], None)
    if not isinstance(body.get("sender"), str):
        return None
    return receipt_statement(body["message_id"], body["sender"], "forwarded", hashlib.sha256(value).hexdigest())


async def read_party(
    bootstrap: str, topics: Topics, party: str, client_options: dict[str, Any] | None = None,
    timeout_s: float = 120.0,
) -> list[dict[str, Any]]:  # fmt: skip
    """What ``party`` holds, as statements: every head and proof on its proofs topic (and, in two-centre mode, on
    each linked centre's, as mirrored here), and a ``receipt`` for each verdict its in topic told it of
    (:func:`told`); what a party runs with its own credentials."""
    proofs = []
    # its own centre's view, and in two-centre mode what each linked centre proves to it (mirrored here)
    for topic in [topics.proofs(party), *(topics.proofs_in(p) for p in sorted(topics.linked))]:
        proofs += await _read(bootstrap, topic, lambda r: [json.loads(r.value or b"{}")], client_options, timeout_s)
    received = await _read(bootstrap, topics.inbound(party),
                           lambda r: [s] if (s := told(party, r.value or b"")) is not None else [], client_options,
                           timeout_s)  # fmt: skip
    return proofs + received
