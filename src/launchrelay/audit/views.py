"""What each party is sent about the decision log: its view (docs/audit-log.md, "What each party receives").

The log topic holds every leaf and every signed tree head, and only the operator reads it: a leaf names its
sender, recipients and reasons. A party is sent, on a topic of its own, every signed head of every log (a head
says only how many decisions and a hash), the consistency proof from each log's previous head to the next, and
an inclusion proof of each leaf that concerns it (it sent the record, or the record was forwarded to it) against
the first head that covers it. With those and the receipts and notices it received, the party proves with the
relay's public key alone that what it was told is in one append-only history.

Pure: :class:`Views` is fed the log topic's leaves and heads in their order and returns the statements to send,
to whom. It keeps, per log, the tree's frontier at its last head and the leaves since (:class:`merkle.Span`),
never the whole log.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from launchrelay.audit import merkle


class LogBroken(ValueError):
    """The log topic does not read as one log: a leaf out of its place, or a head over leaves not seen."""


@dataclass
class _Log:
    frontier: merkle.Frontier = field(default_factory=merkle.Frontier)
    pending: list[bytes] = field(default_factory=list)  # leaf bytes since the last head

    @property
    def size(self) -> int:
        return self.frontier.size + len(self.pending)


def concerned(leaf: bytes, owner: str | None, parties: Iterable[str]) -> list[str]:
    """The parties a leaf concerns: the owner of the topic its record was read from (told of the verdict, whoever
    the record claims to be from; the claimed sender when the owner is not known) and the parties it was forwarded
    to, of those this relay serves."""
    try:
        body = json.loads(leaf)
    except (ValueError, RecursionError):
        return []
    if not isinstance(body, dict):
        return []
    recipients = body.get("recipients")
    named = {owner or body.get("sender")}
    if isinstance(recipients, list):
        named.update(r for r in recipients if isinstance(r, str))
    return [p for p in parties if p in named]


class Views:
    """Every party's view of the log, built as the log topic is read."""

    def __init__(self, parties: Iterable[str], owner: Callable[[str], str | None] = lambda log: None) -> None:
        """``owner``: the party whose topic a log's records were read from (the relay's logs are named
        ``TOPIC:PARTITION``)."""
        self.parties, self.owner = sorted(parties), owner
        self._logs: dict[str, _Log] = {}
        #: logs found broken: nothing more is proved for them (the publisher tells the operator once)
        self.broken: set[str] = set()

    def mark_broken(self, log: str, why: str) -> LogBroken:
        """Nothing more is proved for ``log``; the error to raise, saying why."""
        self.broken.add(log)
        self._logs.pop(log, None)
        return LogBroken(f"{log}: {why}")

    def leaf(self, log: str, index: int, leaf: bytes) -> None:
        """A leaf, in the order of the log topic. A leaf at the wrong place raises :class:`LogBroken`."""
        if log in self.broken:
            return
        state = self._logs.setdefault(log, _Log())
        if index != state.size:
            raise self.mark_broken(log, f"leaf {index} where leaf {state.size} was due")
        state.pending.append(leaf)

    def head(self, head: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """A signed head: the statements it makes due, as (party, statement), in a fixed order: to every party the
        head and the consistency proof from the log's previous head; to each party concerned, the inclusion proof
        of each leaf since that head. A head over other leaves than those read raises :class:`LogBroken`."""
        log, size = head.get("log"), head.get("size")
        if not isinstance(log, str) or not isinstance(size, int):
            raise LogBroken(f"a head without a log or a size: {head!r}"[:300])
        if log in self.broken:
            return []
        state = self._logs.setdefault(log, _Log())
        if size != state.size:
            raise self.mark_broken(log, f"a head of {size} leaves after {state.size} were read")
        span = merkle.Span(state.frontier, [merkle.leaf_hash(leaf) for leaf in state.pending])
        if span.root().hex() != head.get("root"):
            raise self.mark_broken(log, f"the head of {size} leaves does not sign the root of the leaves read")
        out: list[tuple[str, dict[str, Any]]] = []
        first = state.frontier.size
        consistency = {"type": "consistency", "log": log, "from": first, "to": size,
                       "proof": [p.hex() for p in span.consistency()]}  # fmt: skip
        for party in self.parties:
            out.append((party, head))
            if 0 < first < size:
                out.append((party, consistency))
        for i, leaf in enumerate(state.pending, start=first):
            proof = [p.hex() for p in span.inclusion(i)]
            statement = {"type": "inclusion", "log": log, "index": i, "size": size,
                         "leaf": base64.b64encode(leaf).decode(), "proof": proof}  # fmt: skip
            out.extend((party, statement) for party in concerned(leaf, self.owner(log), self.parties))
        for leaf in state.pending:
            state.frontier.append(merkle.leaf_hash(leaf))
        state.pending.clear()
        return out
