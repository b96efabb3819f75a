"""What the relay knows about messages it has handled, and how it survives restarts.

Every authentic message the relay decides on leaves one record in the
compacted ``P.relay-state`` topic, keyed ``SENDER/MESSAGE_ID`` and written in
the same Kafka transaction as the forward or rejection. After a restart or a
partition move the relay reads that topic (read_committed) to its end before
deciding anything, so duplicate detection and reference checks see exactly
what was committed.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

import pydantic_core

from launchrelay.contract.codec import message_key
from launchrelay.contract.messages import RecordRef
from launchrelay.contract.outcomes import Outcome
from launchrelay.errors import FormatTooNew

#: The outcomes the state keeps for a message (a duplicate changes nothing), by their text.
_KEPT = {o.value: o for o in (Outcome.FORWARDED, Outcome.REJECTED)}


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
        """Read a state record (ValueError, KeyError or TypeError when it is not one: the reader names and skips it)."""
        # a third of json.loads' time (a restart reads every id back); only keys cached (values are new each time)
        data = pydantic_core.from_json(raw, cache_strings="keys")
        found = data.get("format", 1)
        if type(found) is int and found > STATE_FORMAT:  # a later release's: stop, never misread or skip it
            raise FormatTooNew("a record of the relay's state topic", found, STATE_FORMAT)
        topic, partition, offset = data["src"]
        texts = [data[name] for name in _TEXT_FIELDS]
        recipients = tuple(data["recipients"])
        notice = data.get("notice")
        given = [*texts, topic, *recipients, *([] if notice is None else [notice])]
        if not all(type(x) is str for x in given):
            raise TypeError("a text field of the state record is not text")
        if type(data["closed"]) is not bool:
            raise TypeError("closed is not true or false")
        sender, message_id, digest, message_type, agreement, launch_key, outcome = texts
        if outcome not in _KEPT:
            raise TypeError(f"outcome {outcome[:40]!r} is not one the state keeps")
        return cls(
            sender=sender, message_id=message_id, digest=digest, message_type=message_type, agreement=agreement,
            launch_key=launch_key, recipients=recipients, outcome=_KEPT[outcome], closed=data["closed"],
            src=Src(topic, partition, offset), notice=notice,
            forget_at=int(data.get("forget_at", 0)),  # compared with the clock in every sweep: a number
        )  # fmt: skip


#: The state records' format: named in ``format`` only above 1 (absent: 1, as every record before formats were
#: numbered). A relay meeting a later one stops with FormatTooNew: a release that changes it says in the CHANGELOG
#: that its relays replace the older ones all at once (stop, then start), not one by one.
STATE_FORMAT = 1

_TEXT_FIELDS = ("sender", "message_id", "digest", "message_type", "agreement", "launch_key", "outcome")


class StateView(Protocol):
    def get(self, sender: str, message_id: str) -> SeenMessage | None: ...


class _Codes:
    """Values that recur across ids (senders, types, agreements, topics, recipient lists), each kept once and
    named in a packed record by its index."""

    def __init__(self) -> None:
        self._values: list[Any] = []
        self._index: dict[Any, int] = {}

    def code(self, value: Any) -> int:
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self._values)
            self._values.append(value)
        return found

    def value(self, code: int) -> Any:
        return self._values[code]


#: What notices say, in the words and order the relay writes them: the preset dictionary a held notice is
#: compressed against (zlib finds the key names and common values here instead of in the notice itself). Only
#: memory holds the compressed form, never the state topic, so it may change from one version to the next.
_NOTICE_WORDS = (
    b'"lat":-0.0,"lon":-0.0},{"lat":0.0,"lon":0.0}],"radius":0.0,"unit":"km"},"kind":"circle","centre":{"lat":'
    b'"kind":"polygon","points":[{"lat":0.0,"lon":0.0},{"lat":0.0,"lon":0.0},{"lat":0.0,"lon":0.0},'
    b'"orbit":{"inclination_deg":0.0,"perigee_km":0.0,"apogee_km":0.0},"direction":{"sector":"N"},'
    b'{"vehicle":{"category":"icbm","generic_class":"","range_km":0.0,"launch_count":1,"group":"single"},'
    b'"window":{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:00Z"},"launch_area":{"kind":"circle",'
    b'"centre":{"lat":0.0,"lon":0.0},"radius":0.0,"unit":"km"},"impact_areas":[{"kind":"polygon","points":[{"lat":'
)


def _squeeze(notice: str) -> bytes:
    packer = zlib.compressobj(1, zdict=_NOTICE_WORDS)  # the fastest level: a fraction of a decision's time
    return packer.compress(notice.encode()) + packer.flush()


def _unsqueeze(held: bytes) -> str:
    return zlib.decompressobj(zdict=_NOTICE_WORDS).decompress(held).decode()


#: digest (32 raw bytes), forget_at, source offset, source partition, codes of the source topic, message type,
#: agreement, recipients and outcome, closed, length of the launch key; then the launch key and the notice (UTF-8)
_PACKED = struct.Struct("<32sqqIIIIII?H")
_FORGET_AT = struct.Struct("<q")  # at offset 32
_SRC = struct.Struct("<qI")  # source offset and partition, at offset 40
_SRC_TOPIC = struct.Struct("<I")  # at offset 52


class MemoryState:
    """The relay's in-memory map, fed from the state topic and from its own commits.

    An id is held as one packed ``bytes`` record under its sender and message id (about a quarter of a
    kilobyte with its key, where a :class:`SeenMessage` and its strings took two and a half times that); a
    :class:`SeenMessage` is built back when the id is looked up, a few microseconds once per decision."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, bytes]] = {}
        self._codes = _Codes()

    def _pack(self, seen: SeenMessage) -> bytes:
        try:
            digest = bytes.fromhex(seen.digest)
            launch_key = seen.launch_key.encode()
            c = self._codes.code
            head = _PACKED.pack(
                digest, seen.forget_at, seen.src.offset, seen.src.partition, c(seen.src.topic), c(seen.message_type),
                c(seen.agreement), c(seen.recipients), c(seen.outcome), seen.closed, len(launch_key),
            )  # fmt: skip
        except struct.error as exc:  # a number out of range, or of the wrong type
            raise ValueError(f"state record cannot be held: {exc}") from exc
        if len(digest) != 32:
            raise ValueError("state record's digest is not a SHA-256")
        return head + launch_key + (_squeeze(seen.notice) if seen.notice is not None else b"")

    def _unpack(self, sender: str, message_id: str, blob: bytes) -> SeenMessage:
        digest, forget_at, offset, partition, topic, mtype, agreement, recipients, outcome, closed, klen = (
            _PACKED.unpack_from(blob)
        )
        v = self._codes.value
        start = _PACKED.size + klen
        return SeenMessage(
            sender=sender, message_id=message_id, digest=digest.hex(), message_type=v(mtype),
            agreement=v(agreement), launch_key=blob[_PACKED.size : start].decode(), recipients=v(recipients),
            outcome=_KEPT[v(outcome)], closed=closed, src=Src(v(topic), partition, offset),
            notice=_unsqueeze(blob[start:]) if len(blob) > start else None, forget_at=forget_at,
        )  # fmt: skip

    def _src(self, blob: bytes) -> Src:
        """Where a packed record's change was read, without unpacking the rest."""
        offset, partition = _SRC.unpack_from(blob, 40)
        return Src(self._codes.value(_SRC_TOPIC.unpack_from(blob, 52)[0]), partition, offset)

    def get(self, sender: str, message_id: str) -> SeenMessage | None:
        blob = self._seen.get(sender, {}).get(message_id)
        return None if blob is None else self._unpack(sender, message_id, blob)

    def _where(self, key: str) -> tuple[dict[str, bytes] | None, str]:
        sender, _, message_id = key.partition("/")  # a sender is a country code: the first "/" ends it
        return self._seen.get(sender), message_id

    def forget(self, key: str) -> None:
        held, message_id = self._where(key)
        if held is not None:
            held.pop(message_id, None)

    def forget_if_expired(self, key: str, now_s: float) -> None:
        """Forget ``key`` unless it was learnt again meanwhile (a replay just decided has a later time)."""
        held, message_id = self._where(key)
        blob = held.get(message_id) if held is not None else None
        if held is not None and blob is not None and 0 < _FORGET_AT.unpack_from(blob, 32)[0] < now_s:
            del held[message_id]

    def expired(self, now_s: float) -> list[str]:
        """The keys whose ``forget_at`` is past ``now_s`` (a scan: run it now and then, not per record)."""
        read = _FORGET_AT.unpack_from
        return [
            message_key(sender, message_id)
            for sender, held in self._seen.items()
            for message_id, blob in held.items()
            if 0 < read(blob, 32)[0] < now_s
        ]

    def apply(self, seen: SeenMessage) -> None:
        """Store ``seen`` unless a later change of the same key from the same partition is already here."""
        held = self._seen.get(seen.sender)
        if held is None:
            held = self._seen[sys.intern(seen.sender)] = {}
        current = held.get(seen.message_id)
        if current is not None:
            src = self._src(current)
            if src.same_partition(seen.src) and src.offset > seen.src.offset:
                return
        held[seen.message_id] = self._pack(seen)

    def __len__(self) -> int:
        return sum(len(held) for held in self._seen.values())


class Overlay:
    """Uncommitted writes of the transaction being built, seen on top of the committed state."""

    def __init__(self, base: StateView) -> None:
        self._base = base
        self.pending: dict[str, SeenMessage] = {}

    def get(self, sender: str, message_id: str) -> SeenMessage | None:
        return self.pending.get(message_key(sender, message_id)) or self._base.get(sender, message_id)

    def put(self, seen: SeenMessage) -> None:
        self.pending[seen.key] = seen
