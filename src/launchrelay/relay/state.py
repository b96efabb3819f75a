"""What the relay knows about messages it has handled, and how it survives restarts.

Every authentic message the relay decides on leaves one record in the
compacted ``P.relay-state`` topic, keyed ``SENDER/MESSAGE_ID`` and written in
the same Kafka transaction as the forward or rejection. After a restart or a
partition move the relay reads that topic (read_committed) to its end before
deciding anything, so duplicate detection and reference checks see exactly
what was committed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, Protocol

import pydantic_core

from launchrelay.contract.codec import message_key
from launchrelay.contract.messages import RecordRef

Outcome = Literal["forwarded", "rejected"]


class Src(NamedTuple):
    """Where a state change came from (a record of an out topic): a plain tuple, a fraction of a RecordRef's size."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, ref: RecordRef) -> Src:
        return cls(sys.intern(ref.topic), ref.partition, ref.offset)

    def same_partition(self, other: Src) -> bool:
        return self.topic == other.topic and self.partition == other.partition


_NOWHERE = Src("", 0, 0)
#: recipient lists recur (a few per agreement): one tuple each, shared by every id that names it
_RECIPIENTS: dict[tuple[str, ...], tuple[str, ...]] = {}


def shared(recipients: tuple[str, ...]) -> tuple[str, ...]:
    found = _RECIPIENTS.get(recipients)
    if found is None:
        found = _RECIPIENTS.setdefault(recipients, tuple(sys.intern(r) for r in recipients))
    return found


@dataclass(frozen=True, slots=True)
class SeenMessage:
    """The relay's memory of one message: enough for duplicate and reference checks."""

    sender: str
    message_id: str
    digest: str
    message_type: str
    agreement: str
    launch_key: str
    recipients: tuple[str, ...]
    outcome: Outcome
    closed: bool = False
    #: the record the latest change came from; orders updates of one key
    src: Src = _NOWHERE
    #: for an open planned launch: the notice as it stands (JSON text of a ``Notice``), to judge amendments by
    notice: str | None = None
    #: when (Unix seconds) the id may be forgotten: past the time it can matter, plus ``[relay] remember_for``;
    #: 0: never (a record written before ids were forgotten)
    forget_at: int = 0

    @property
    def key(self) -> str:
        return message_key(self.sender, self.message_id)

    def closed_by(self, src: Src) -> SeenMessage:
        """Cancelled or reported: nothing more is judged against its content, so it is not kept."""
        return replace(self, closed=True, src=src, notice=None)

    def amended(self, notice: str, src: Src, forget_at: int) -> SeenMessage:
        return replace(self, notice=notice, src=src, forget_at=max(self.forget_at, forget_at) if self.forget_at else 0)

    def to_bytes(self) -> bytes:
        # Built by hand: dataclasses.asdict deep-copies and showed up in the relay's profile.
        data = {
            "sender": self.sender,
            "message_id": self.message_id,
            "digest": self.digest,
            "message_type": self.message_type,
            "agreement": self.agreement,
            "launch_key": self.launch_key,
            "recipients": list(self.recipients),
            "outcome": self.outcome,
            "closed": self.closed,
            "src": [self.src.topic, self.src.partition, self.src.offset],
        }
        if self.notice is not None:
            data["notice"] = self.notice
        if self.forget_at:
            data["forget_at"] = self.forget_at
        return pydantic_core.to_json(data)  # compact, as json.dumps(separators=...) would write it, at a fifth

    @classmethod
    def from_bytes(cls, raw: bytes) -> SeenMessage:
        data = json.loads(raw)
        topic, partition, offset = data["src"]
        data["src"] = Src(sys.intern(topic), partition, offset)
        data["recipients"] = shared(tuple(data["recipients"]))
        data["forget_at"] = int(data.get("forget_at", 0))  # compared with the clock in every sweep: a number
        for name in ("sender", "message_type", "agreement", "outcome"):  # a handful of values, shared
            data[name] = sys.intern(data[name])
        return cls(**data)


class StateView(Protocol):
    def get(self, sender: str, message_id: str) -> SeenMessage | None: ...


class MemoryState:
    """The relay's in-memory map, fed from the state topic and from its own commits."""

    def __init__(self) -> None:
        self._seen: dict[str, SeenMessage] = {}

    def get(self, sender: str, message_id: str) -> SeenMessage | None:
        return self._seen.get(message_key(sender, message_id))

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    def forget_if_expired(self, key: str, now_s: float) -> None:
        """Forget ``key`` unless it was learnt again meanwhile (a replay just decided has a later time)."""
        seen = self._seen.get(key)
        if seen is not None and 0 < seen.forget_at < now_s:
            del self._seen[key]

    def expired(self, now_s: float) -> list[str]:
        """The keys whose ``forget_at`` is past ``now_s`` (a scan: run it now and then, not per record)."""
        return [k for k, s in self._seen.items() if 0 < s.forget_at < now_s]

    def apply(self, seen: SeenMessage) -> None:
        """Store ``seen`` unless a later change of the same key from the same partition is already here."""
        current = self._seen.get(seen.key)
        if current is not None and current.src.same_partition(seen.src) and current.src.offset > seen.src.offset:
            return
        self._seen[seen.key] = seen

    def __len__(self) -> int:
        return len(self._seen)


class Overlay:
    """Uncommitted writes of the transaction being built, seen on top of the committed state."""

    def __init__(self, base: StateView) -> None:
        self._base = base
        self.pending: dict[str, SeenMessage] = {}

    def get(self, sender: str, message_id: str) -> SeenMessage | None:
        return self.pending.get(message_key(sender, message_id)) or self._base.get(sender, message_id)

    def put(self, seen: SeenMessage) -> None:
        self.pending[seen.key] = seen
