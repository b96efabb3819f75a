"""The decision log's formats: leaves, signed tree heads, and the statements a party keeps and checks.

docs/audit-log.md describes each byte; this module and ``tests/go/auditverify`` implement it separately.

A **log** is named by its id (the relay keeps one per input partition, ``TOPIC:PARTITION``: its decisions there are
already in one order that survives restarts). A **leaf** is the UTF-8 bytes of one JSON object, carried as they
were written (base64 in statements), so a verifier hashes exactly what was logged and reads the fields from it.
A **tree head** is signed with the relay's Ed25519 key over a few lines of text that any language builds the same
way (:func:`head_text`). Statements are JSON objects, one per line: ``tree_head``, ``consistency``, ``inclusion``,
``leaf`` and ``receipt`` (what a party was told, which must be in the log).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from launchrelay.audit import merkle
from launchrelay.contract.headers import header
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord

#: On the log topic: the header saying what a record is (``leaf`` or ``head``; on a party's proofs topic, the
#: statement's type), and a leaf's index.
KIND_HEADER, INDEX_HEADER = "lr-log-kind", "lr-log-index"
#: The leaves' format; a verifier refuses a leaf of a format it does not know.
LEAF_FORMAT = 1
#: The first line of what a tree head's signature covers (domain separation: no other signed text starts so).
HEAD_PREFIX = "launchrelay tree head v1"
#: The fields a leaf must carry (more may follow in a later format).
LEAF_FIELDS = ("format", "log", "index", "at", "outcome", "message_id", "sender", "recipients", "reasons", "sha256")


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def leaf_bytes(
    log: str,
    index: int,
    at: datetime,
    *,
    outcome: str,
    message_id: str | None,
    sender: str | None,
    recipients: list[str],
    reasons: list[str],
    sha256: str,
    source: str | None = None,
    redrive: dict[str, str | None] | None = None,
) -> bytes:
    """One decision as a leaf: its place in its log (so a leaf moved or repeated cannot pass for another), when,
    what became of it, whose it was and to whom, why, and the SHA-256 of the original bytes (hex)."""
    body: dict[str, Any] = {"format": LEAF_FORMAT, "log": log, "index": index, "at": _utc(at), "outcome": outcome,
                            "message_id": message_id, "sender": sender, "recipients": recipients, "reasons": reasons,
                            "sha256": sha256}  # fmt: skip
    if source is not None:
        body["source"] = source
    if redrive is not None:
        body["redrive"] = redrive
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def head_text(log: str, size: int, root_hex: str, at: str) -> bytes:
    """What a tree head's signature covers: five lines, each ended by a line feed."""
    return f"{HEAD_PREFIX}\n{log}\n{size}\n{root_hex}\n{at}\n".encode()


def signed_head(log: str, size: int, root: bytes, signer: Signer, at: datetime) -> dict[str, Any]:
    """The ``tree_head`` statement: ``log`` had ``size`` leaves with ``root`` at ``at``, signed by ``signer``."""
    when = _utc(at)
    signature = base64.b64encode(signer.sign(head_text(log, size, root.hex(), when))).decode()
    return {"type": "tree_head", "log": log, "size": size, "root": root.hex(), "at": when, "key_id": signer.key_id,
            "signature": signature}  # fmt: skip


def leaf_record(log: str, index: int, leaf: bytes, topic: str) -> OutRecord:
    """A leaf as a record of the log topic: keyed by its log (one log, one partition, one order)."""
    return OutRecord(topic, log.encode(), leaf, [(KIND_HEADER, b"leaf"), (INDEX_HEADER, str(index).encode())])


@dataclass(frozen=True)
class LogRecord:
    """A record of the log topic as read back: a leaf (its log, index and bytes) or a head (its log, its JSON)."""

    kind: Literal["leaf", "head"]
    log: str
    value: bytes
    index: int = -1  # a leaf's


def log_record(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]] | None
               ) -> LogRecord | None:  # fmt: skip
    """What :func:`leaf_record` and :func:`head_record` wrote, read back; None for any other record (a leaf whose
    index header is not a number among them)."""
    kind, log = header(headers, KIND_HEADER), (key or b"").decode(errors="replace")
    if kind == b"head":
        return LogRecord("head", log, value or b"")
    index = header(headers, INDEX_HEADER) or b""
    if kind != b"leaf" or not index.isdigit():
        return None
    return LogRecord("leaf", log, value or b"", int(index))


def head_record(log: str, frontier: merkle.Frontier, topic: str, signer: Signer, now: datetime) -> OutRecord:
    """A signed tree head over the tree ``frontier`` holds, as a record of the log topic."""
    head = signed_head(log, frontier.size, frontier.root(), signer, now)
    return OutRecord(topic, log.encode(), json.dumps(head).encode(), [(KIND_HEADER, b"head")])


@dataclass
class AuditLog:
    """One log being written: its leaf hashes in order, and the statements about it (heads, proofs)."""

    log: str
    hashes: list[bytes] = field(default_factory=list)

    def append(self, leaf: bytes) -> int:
        self.hashes.append(merkle.leaf_hash(leaf))
        return len(self.hashes) - 1

    def head(self, signer: Signer, at: datetime, size: int | None = None) -> dict[str, Any]:
        """A signed tree head over the first ``size`` leaves (all of them by default)."""
        n = len(self.hashes) if size is None else size
        return signed_head(self.log, n, merkle.root(self.hashes[:n]), signer, at)

    def consistency(self, first: int, second: int | None = None) -> dict[str, Any]:
        n = len(self.hashes) if second is None else second
        proof = merkle.consistency_proof(self.hashes[:n], first) if first else []
        return {"type": "consistency", "log": self.log, "from": first, "to": n, "proof": [p.hex() for p in proof]}

    def inclusion(self, index: int, leaf: bytes, size: int | None = None) -> dict[str, Any]:
        n = len(self.hashes) if size is None else size
        proof = merkle.inclusion_proof(self.hashes[:n], index)
        return {"type": "inclusion", "log": self.log, "index": index, "size": n,
                "leaf": base64.b64encode(leaf).decode(), "proof": [p.hex() for p in proof]}  # fmt: skip


def leaf_statement(log: str, index: int, leaf: bytes) -> dict[str, Any]:
    return {"type": "leaf", "log": log, "index": index, "leaf": base64.b64encode(leaf).decode()}


def receipt_statement(message_id: str, sender: str | None, outcome: str, sha256: str | None) -> dict[str, Any]:
    """What a party was told: the decision the log must hold. ``sender`` and ``sha256`` (of the bytes) when the
    party holds them (a message forwarded to it); None for a relay's receipt of a record the party wrote, which
    names neither (the record may have claimed another sender): matched without them."""
    out = {"type": "receipt", "message_id": message_id, "outcome": outcome}
    return out | {k: v for k, v in (("sender", sender), ("sha256", sha256)) if v is not None}
