"""Dead letters for the watch: list them with their reasons, and redrive one to the relay again.

A dead letter holds a rejected record's bytes and headers unchanged, plus where
it came from and why it was refused. When the cause was on the relay's side
(a key or agreement not configured yet, a rule set wrong), the operator fixes
the config and redrives: the original bytes and signature go back to the out
topic they came from, with ``lr-redrive`` naming the dead letter, and the relay
decides them again under today's config at the time of the redrive.

Nothing is doubled: a record already forwarded is a duplicate when redriven,
and a redrive only reopens a message the relay rejected (never forwarded).
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from launchrelay.contract.headers import (
    ERROR,
    REASONS,
    REASONS_JSON,
    REDRIVE_HEADER,
    REDRIVE_HEADERS,
    RELAY_ID,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
    Headers,
    from_record,
    header,
    source_from,
)
from launchrelay.contract.messages import RecordRef
from launchrelay.errors import RedriveError, kafka_errors
from launchrelay.kafka.consume import read_to_end
from launchrelay.ops.records import read_record
from launchrelay.reasons import FINAL
from launchrelay.signing import Signer, redrive_headers
from launchrelay.topics import Topics, size_limits

log = structlog.get_logger(__name__)

#: Headers the relay adds to a dead letter; the rest are the original record's.
_RELAY_HEADERS = {SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, REASONS, REASONS_JSON, RELAY_ID, ERROR}
_RELAY_HEADERS |= REDRIVE_HEADERS


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    at: datetime
    key: bytes | None
    value: bytes
    headers: Headers

    @property
    def ref(self) -> str:
        """How operators name it: partition:offset in the dead-letter topic."""
        return f"{self.partition}:{self.offset}"

    def _text(self, name: str) -> str | None:
        raw = header(self.headers, name)
        return raw.decode(errors="replace") if raw is not None else None

    @cached_property
    def source(self) -> RecordRef | None:
        """The record it was refused for, as the relay named it."""
        return source_from(self.headers)

    @property
    def reasons(self) -> list[str]:
        return [c for c in (self._text(REASONS) or "").split(",") if c]

    @property
    def reason_details(self) -> list[dict[str, Any]]:
        """Each reason with its sentence and field (header ``lr-reasons-json``), or the codes alone."""
        try:
            details = json.loads(self._text(REASONS_JSON) or "[]")
        except ValueError:
            details = []
        return details if isinstance(details, list) and details else [{"code": c} for c in self.reasons]

    @property
    def redrive_of(self) -> str | None:
        """The dead letter the record's redrive mark names, as the record says (see :attr:`redrive_authenticated`)."""
        return self._text(REDRIVE_HEADER)

    @property
    def final(self) -> list[str]:
        """Its reasons no redrive can undo (reasons.FINAL): a dead letter with any is not offered for redrive."""
        return [c for c in self.reasons if c in FINAL]

    @property
    def redrive_authenticated(self) -> bool:
        """Whether its redrive mark was an operator's: the relay refuses a mark it cannot verify with an operator key
        and says so among the reasons (REDRIVE_UNAUTHENTICATED); a party can write any header to its own topic."""
        return self.redrive_of is not None and "REDRIVE_UNAUTHENTICATED" not in self.reasons

    @cached_property
    def _body(self) -> dict[str, Any]:
        """The original message's top level, parsed once; empty when its bytes are not a JSON object."""
        try:
            data = json.loads(self.value)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def field(self, name: str) -> str | None:
        """A top-level string field of the original message, when its bytes are a JSON object."""
        value = self._body.get(name)
        return value if isinstance(value, str) else None

    @property
    def sender(self) -> str | None:
        return self.field("sender")

    @property
    def message_id(self) -> str | None:
        return self.field("message_id")

    def brief(self) -> Brief:
        """What a list shows of it, without its bytes and with every text a party wrote cut to a bounded length."""
        details = tuple({k: _cut(v) if isinstance(v, str) else None for k, v in d.items() if k in _DETAIL_KEYS}
                        for d in self.reason_details[:_MAX_REASONS])  # fmt: skip
        return Brief(
            partition=self.partition,
            offset=self.offset,
            at=self.at,
            source=self.source,
            reasons=tuple(_cut_text(c) for c in self.reasons[:_MAX_REASONS]),
            reason_details=details,
            redrive_of=_cut(self.redrive_of),
            redrive_authenticated=self.redrive_authenticated,
            sender=_cut(self.sender),
            message_id=_cut(self.message_id),
            message_type=_cut(self.field("message_type")),
            size=len(self.value),
        )

    def as_dict(self) -> dict[str, Any]:
        return self.brief().as_dict()


#: A brief keeps at most this many reasons, each text at most _CUT characters: its size is bounded whatever a
#: party wrote into the record's bytes or headers.
_MAX_REASONS, _CUT = 20, 200
_DETAIL_KEYS = ("code", "message", "field")


def _cut_text(text: str) -> str:
    return text if len(text) <= _CUT else text[: _CUT - 1] + "…"


def _cut(text: str | None) -> str | None:
    return None if text is None else _cut_text(text)


@dataclass(frozen=True)
class Brief:
    """A dead letter as a list shows it: where, when, why, from whom; its bytes are read again only when it is
    opened (:func:`read_dead_letter`)."""

    partition: int
    offset: int
    at: datetime
    source: RecordRef | None
    reasons: tuple[str, ...]
    reason_details: tuple[dict[str, str | None], ...]
    redrive_of: str | None
    redrive_authenticated: bool
    sender: str | None
    message_id: str | None
    message_type: str | None
    size: int

    @property
    def ref(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def final(self) -> list[str]:
        return [c for c in self.reasons if c in FINAL]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "source": str(self.source) if self.source else None,
            "reasons": list(self.reasons),
            "sender": self.sender,
            "message_id": self.message_id,
            "message_type": self.message_type,
            "redrive_of": self.redrive_of,
            "redrive_authenticated": self.redrive_authenticated,
            "redrivable": not self.final,
        }


def select(letters: Iterable[Brief], *, reason: str | None = None, sender: str | None = None) -> list[Brief]:
    """The dead letters refused for ``reason`` (one of their codes) and whose message names ``sender``."""
    return [d for d in letters if (reason is None or reason in d.reasons) and (sender is None or d.sender == sender)]


def _letter(partition: int, r: ConsumerRecord) -> DeadLetter:
    at = datetime.fromtimestamp(r.timestamp / 1000, UTC)
    return DeadLetter(partition, r.offset, at, r.key, r.value or b"", from_record(r.headers))


def _consumer(bootstrap: str, client_options: dict[str, Any] | None) -> AIOKafkaConsumer:
    """A reader that holds one dead letter's worth of bytes per fetch, not Kafka's 50 MB default: a list read
    while the topic holds gigabytes stays within a few MB."""
    limit = size_limits().fetch
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed", enable_auto_commit=False,
        max_partition_fetch_bytes=limit, fetch_max_bytes=limit, **(client_options or {}),
    )  # fmt: skip


async def _scan(
    bootstrap: str,
    topics: Topics,
    client_options: dict[str, Any] | None,
    starts: dict[int, int],
    timeout_s: float,
) -> tuple[list[Brief], dict[int, int]]:
    """The briefs of the committed dead letters from ``starts`` (partition -> offset; absent: the beginning) to
    the end, and where each partition now ends."""
    consumer = _consumer(bootstrap, client_options)
    found: list[Brief] = []
    ends: dict[TopicPartition, int] = {}
    try:
        with kafka_errors(f"cannot read {topics.deadletter} on {bootstrap}"):
            await consumer.start()
            async for tp, records in read_to_end(consumer, topics.deadletter, ends, starts, timeout_s):
                found += [_letter(tp.partition, r).brief() for r in records]
    finally:
        await consumer.stop()
    return found, {tp.partition: end for tp, end in ends.items()}


async def read_dead_letters(
    bootstrap: str, topics: Topics, client_options: dict[str, Any] | None = None, timeout_s: float = 60.0
) -> list[Brief]:
    """Every committed dead letter in brief, oldest first per partition."""
    found, _ = await _scan(bootstrap, topics, client_options, {}, timeout_s)
    return sorted(found, key=lambda d: (d.partition, d.offset))


async def read_dead_letter(
    bootstrap: str, topics: Topics, ref: str, client_options: dict[str, Any] | None = None
) -> DeadLetter | None:
    """One dead letter with its bytes, by its ``partition:offset``; None when there is none there (or retention
    removed it). ValueError for a name that is not partition:offset."""
    partition, sep, offset = ref.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"{ref!r} does not name a dead letter (partition:offset)")
    where = RecordRef(topic=topics.deadletter, partition=int(partition), offset=int(offset))
    found = await read_record(bootstrap, where, client_options)
    if found is None:
        return None
    return DeadLetter(where.partition, where.offset, found.at, found.key, found.value, found.headers)


class DeadLetterIndex:
    """The console's list of dead letters: the brief of each (no bytes) kept in memory, newest ``keep`` at most,
    and read on from where the last look stopped, so a page load reads only what arrived since. Loads at the same
    moment share one read."""

    def __init__(
        self, bootstrap: str, topics: Topics, client_options: dict[str, Any] | None = None, keep: int = 5_000
    ) -> None:
        self.bootstrap, self.topics, self.client_options = bootstrap, topics, client_options
        self._briefs: collections.deque[Brief] = collections.deque(maxlen=keep)
        self._next: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._read_at = -math.inf
        #: how many older dead letters fell out of the list (still in the topic; the CLI lists them all)
        self.forgotten = 0

    async def refresh(self, timeout_s: float = 30.0, fresh_s: float = 0.5) -> None:
        """Read what arrived since the last read, unless one finished less than ``fresh_s`` ago."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            if loop.time() - self._read_at < fresh_s:
                return
            found, self._next = await _scan(self.bootstrap, self.topics, self.client_options, self._next, timeout_s)
            room = self._briefs.maxlen or 0
            self.forgotten += max(0, len(self._briefs) + len(found) - room)
            self._briefs.extend(sorted(found, key=lambda d: (d.at, d.partition, d.offset)))
            self._read_at = loop.time()

    def page(
        self, number: int, size: int, *, reason: str | None = None, sender: str | None = None
    ) -> tuple[list[Brief], int]:
        """Page ``number`` (from 0) of the matching dead letters, newest first, and how many match in all."""
        chosen = select(reversed(self._briefs), reason=reason, sender=sender)
        return chosen[number * size : (number + 1) * size], len(chosen)


def render_table(rows: list[dict[str, Any]], topics: Topics) -> str:
    """The operator's table of dead letters (rows as :meth:`DeadLetter.as_dict` makes them)."""
    width = max([len(r["source"]) for r in rows] + [6])
    lines = [f"{'REF':<10} {'AT':<21} {'SENDER':<6} {'MESSAGE ID':<28} {'SOURCE':<{width}} REASONS"]
    for r in rows:
        again = ""
        if r["redrive_of"]:
            mark = "redrive of" if r["redrive_authenticated"] else "UNAUTHENTICATED mark, claims redrive of"
            again = f"  ({mark} {r['redrive_of']})"
        reasons = ", ".join(r["reasons"]) + again
        lines.append(f"{r['ref']:<10} {r['at'][:19] + 'Z':<21} {r['sender'] or '-':<6} "
                     f"{(r['message_id'] or '-')[:28]:<28} {r['source']:<{width}} {reasons}")  # fmt: skip
    lines.append(f"{len(rows)} dead letter{'' if len(rows) == 1 else 's'} in {topics.deadletter}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Redriven:
    dead_letter: str
    topic: str
    partition: int
    offset: int

    @property
    def to(self) -> RecordRef:
        """Where the redriven copy was written (its text form ``topic:partition:offset``)."""
        return RecordRef(topic=self.topic, partition=self.partition, offset=self.offset)


async def redrive(
    bootstrap: str,
    topics: Topics,
    refs: list[str],
    client_options: dict[str, Any] | None,
    operator: tuple[Signer, str],
) -> list[Redriven]:
    """Write each named dead letter back to its out topic, original bytes and headers, marked as a redrive.

    ``operator``: the operator's key and name; the mark is signed with it, so the relay knows the
    redrive is an operator's (a party writing its own out topic cannot make one)."""
    signer, by = operator
    chosen = []
    for ref in refs:
        try:
            letter = await read_dead_letter(bootstrap, topics, ref, client_options)
        except ValueError:
            letter = None
        if letter is None:
            raise RedriveError(f"no dead letter {ref} in {topics.deadletter} (name it partition:offset)")
        if letter.source is None or topics.owner_of(letter.source.topic) is None:
            raise RedriveError(f"dead letter {ref} did not come from a party's out topic ({letter.source})")
        chosen.append(letter)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **(client_options or {})
    )
    done: list[Redriven] = []
    try:
        with kafka_errors(f"cannot redrive to {bootstrap}"):
            await producer.start()
            for letter in chosen:
                assert letter.source is not None
                headers = [(k, v) for k, v in letter.headers if k not in _RELAY_HEADERS]
                headers += redrive_headers(signer, f"{topics.deadletter}:{letter.ref}", by, letter.value or b"")
                meta = await producer.send_and_wait(letter.source.topic, letter.value, key=letter.key, headers=headers)
                done.append(redriven := Redriven(letter.ref, meta.topic, meta.partition, meta.offset))
                log.info("deadletter.redriven", dead_letter=f"{topics.deadletter}:{letter.ref}", by=by,
                         operator_key_id=signer.key_id,
                         to=str(redriven.to), reasons=letter.reasons,
                         message_id=letter.message_id, sender=letter.sender)  # fmt: skip
    finally:
        await producer.stop()
    return done
