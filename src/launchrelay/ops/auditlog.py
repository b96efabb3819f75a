"""The decision log as it stands on its topics, as statements a party checks (docs/audit-log.md): every committed
leaf and signed tree head of the log topic (the operator's export), or what one party holds (its proofs topic,
and what its in topic told it)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from launchrelay.audit.log import leaf_statement, log_record, receipt_statement
from launchrelay.audit.verify import verify_statements
from launchrelay.contract.messages import ReceiptOutcome
from launchrelay.contract.outcomes import VERDICTS
from launchrelay.errors import kafka_errors
from launchrelay.kafka.consume import read_to_end
from launchrelay.topics import Topics


async def _read(bootstrap: str, topic: str, each: Callable[[ConsumerRecord], Iterable[dict[str, Any]]],
                client_options: dict[str, Any] | None, timeout_s: float,
                starts: dict[int, int] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """What ``each`` makes of every committed record of ``topic`` from ``starts`` (partition -> offset; filled in
    with where each partition ends, for the next read to go on from)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False, **(client_options or {}))  # fmt: skip
    out: list[dict[str, Any]] = []
    ends: dict[TopicPartition, int] = {}
    try:
        with kafka_errors(f"cannot read {topic} on {bootstrap}"):
            await consumer.start()
            async for _, records in read_to_end(consumer, topic, ends, starts, timeout_s, 5000):
                for r in records:
                    out.extend(each(r))
    finally:
        await consumer.stop()
    if starts is not None:
        starts.update({tp.partition: end for tp, end in ends.items()})
    return out


def _log_statement(r: ConsumerRecord) -> list[dict[str, Any]]:
    found = log_record(r.key, r.value, r.headers)
    if found is None:
        return []
    return [leaf_statement(found.log, found.index, found.value)] if found.kind == "leaf" else _statement(r)


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
        proofs += await _read(bootstrap, topic, _statement, client_options, timeout_s)
    received = await _read(bootstrap, topics.inbound(party),
                           lambda r: [s] if (s := told(party, r.value or b"")) is not None else [], client_options,
                           timeout_s)  # fmt: skip
    return proofs + received


@dataclass
class ViewCheck:
    """The last check of what one party was sent: problems found (kept once found: a cheat stays shown), and how
    much was checked."""

    party: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    heads: int = 0
    consistency: int = 0
    inclusion: int = 0
    checked_at: datetime | None = None

    @property
    def ok(self) -> bool | None:
        return None if self.checked_at is None else not self.problems


class ViewChecks:
    """The watch's check of the decision log as each party is sent it (its proofs topic): read on from where the
    last look stopped; the new heads, consistency and inclusion proofs verified with the relay's keys against each
    log's last head verified before; and every party's heads put together, so that two parties shown two
    histories (a split view) show here. The parties run their own verifier; this is the same check, of what left
    the centre, kept only as far as each log's last head (memory does not grow with the log)."""

    def __init__(self, bootstrap: str, topics: Topics, parties: Iterable[str], keys: Mapping[str, Ed25519PublicKey],
                 client_options: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.bootstrap, self.topics, self.keys, self.client_options = bootstrap, topics, dict(keys), client_options
        self.checks = {p: ViewCheck(p) for p in sorted(parties)}
        self._next: dict[str, dict[int, int]] = {p: {} for p in self.checks}
        self._last: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in self.checks}  # party -> log -> head
        self._lock = asyncio.Lock()
        self._read_at = -math.inf

    def latest(self) -> list[dict[str, Any]]:
        """The newest head of each log any party was sent."""
        newest: dict[str, dict[str, Any]] = {}
        for heads in self._last.values():
            for log, head in heads.items():
                if log not in newest or head["size"] > newest[log]["size"]:
                    newest[log] = head
        return [newest[k] for k in sorted(newest)]

    async def refresh(self, timeout_s: float = 30.0, fresh_s: float = 5.0) -> None:
        async with self._lock:
            loop = asyncio.get_running_loop()
            if loop.time() - self._read_at < fresh_s:
                return
            heads: list[dict[str, Any]] = []
            for party, check in self.checks.items():
                found = await _read(self.bootstrap, self.topics.proofs(party), _statement, self.client_options,
                                    timeout_s, self._next[party])  # fmt: skip
                kept = list(self._last[party].values())
                report = verify_statements(kept + found, self.keys)
                unreadable = sum(1 for s in found if s.get("type") == "unreadable")
                detail = f"{unreadable} record(s) of {self.topics.proofs(party)} are not statements"
                odd = [{"kind": "unreadable", "log": None, "detail": detail}]
                check.problems = (check.problems + report.problems + (odd if unreadable else []))[-20:]
                check.checked_at = datetime.now(UTC)
                for s in found:
                    kind = s.get("type")
                    if kind == "tree_head" and isinstance(s.get("log"), str) and isinstance(s.get("size"), int):
                        check.heads += 1
                        if s["size"] >= self._last[party].get(s["log"], {}).get("size", -1):
                            self._last[party][s["log"]] = s
                    elif kind in ("consistency", "inclusion"):
                        setattr(check, kind, getattr(check, kind) + 1)
                heads += [s for s in kept + found if s.get("type") == "tree_head"]
            split = [p for p in verify_statements(heads, self.keys).problems if p["kind"] == "split_view"]
            for check in self.checks.values():  # one history for all: a split view is every party's problem
                check.problems += [p for p in split if p not in check.problems]
            self._read_at = loop.time()


def _statement(r: ConsumerRecord) -> list[dict[str, Any]]:
    try:
        value = json.loads(r.value or b"{}")
    except (ValueError, RecursionError):
        return [{"type": "unreadable"}]
    return [value] if isinstance(value, dict) else [{"type": "unreadable"}]
