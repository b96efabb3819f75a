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
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

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
from launchrelay.kafka.consume import behind, partitions_of
from launchrelay.reasons import FINAL
from launchrelay.signing import Signer, redrive_headers
from launchrelay.topics import Topics

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

    def as_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "source": str(self.source) if self.source else None,
            "reasons": self.reasons,
            "sender": self.field("sender"),
            "message_id": self.field("message_id"),
            "message_type": self.field("message_type"),
            "redrive_of": self.redrive_of,
            "redrive_authenticated": self.redrive_authenticated,
            "redrivable": not self.final,
        }


def select(letters: list[DeadLetter], *, reason: str | None = None, sender: str | None = None) -> list[DeadLetter]:
    """The dead letters refused for ``reason`` (one of their codes) and whose message names ``sender``."""
    return [
        d
        for d in letters
        if (reason is None or reason in d.reasons) and (sender is None or d.field("sender") == sender)
    ]


def _letter(partition: int, r: ConsumerRecord) -> DeadLetter:
    at = datetime.fromtimestamp(r.timestamp / 1000, UTC)
    return DeadLetter(partition, r.offset, at, r.key, r.value or b"", from_record(r.headers))


async def read_dead_letters(
    bootstrap: str, topics: Topics, client_options: dict[str, Any] | None = None, timeout_s: float = 60.0
) -> list[DeadLetter]:
    """Every committed dead letter, oldest first per partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed", enable_auto_commit=False,
        **(client_options or {}),
    )  # fmt: skip
    letters: list[DeadLetter] = []
    try:
        with kafka_errors(f"cannot read {topics.deadletter} on {bootstrap}"):
            await consumer.start()
            tps = await partitions_of(consumer, topics.deadletter)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)  # the last stable offsets under read_committed
            async with asyncio.timeout(timeout_s):
                while await behind(consumer, ends):
                    batch = await consumer.getmany(timeout_ms=300, max_records=5000)
                    for tp, records in batch.items():
                        letters += [_letter(tp.partition, r) for r in records if r.offset < ends[tp]]
    finally:
        await consumer.stop()
    return sorted(letters, key=lambda d: (d.partition, d.offset))


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
    letters = {d.ref: d for d in await read_dead_letters(bootstrap, topics, client_options)}
    chosen = []
    for ref in refs:
        letter = letters.get(ref)
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
                         message_id=letter.field("message_id"), sender=letter.field("sender"))  # fmt: skip
    finally:
        await producer.stop()
    return done
