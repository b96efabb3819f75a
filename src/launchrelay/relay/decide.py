"""The one function that decides the fate of one record: forward, reject, or duplicate.

Pure: it reads the record, the configuration and a view of the relay's state,
and returns a :class:`Decision` listing every reason found. No Kafka, no clock
(the record's broker timestamp is the time of receipt), no I/O.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from launchrelay.agreements.config import Agreement, Deployment
from launchrelay.agreements.rules import Findings
from launchrelay.agreements.rules import check as check_rules
from launchrelay.contract.codec import read
from launchrelay.contract.headers import (
    KEY_ID_HEADER,
    LINK_BEACON,
    RETRANSMISSION_HEADER,
    SIGNATURE_HEADER,
    Headers,
    header,
)
from launchrelay.contract.messages import (
    Acknowledgement,
    Amendment,
    Cancellation,
    CompletedLaunch,
    PartyMessage,
    PlannedLaunch,
    Reason,
    Receipt,
    RecordRef,
)
from launchrelay.contract.notice import Notice
from launchrelay.contract.outcomes import Outcome
from launchrelay.reasons import ReasonCode as R
from launchrelay.relay.state import SeenMessage, Src, StateView
from launchrelay.signing import RedriveMark, Verdict, public_key_from_b64, read_redrive, verify_headers
from launchrelay.topics import Topics

_YEAR_10000_MS = 253402300800000


@dataclass(frozen=True)
class InboundRecord:
    """One record as read from a party's out topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    # cached: asked several times per record (rules, state, receipt, event); a frozen dataclass keeps a
    # __dict__, where cached_property stores the value without going through the frozen __setattr__
    @cached_property
    def received_at(self) -> datetime | None:
        """The broker's time of receipt, or None when the record's timestamp is not a time at all.

        Out topics stamp records with LogAppendTime; a topic created otherwise lets a producer
        put anything there (-1, or 2**63 - 1), which no agreement rule can be judged against.
        """
        if not 0 <= self.timestamp_ms < _YEAR_10000_MS:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000.0, tz=UTC)

    @cached_property
    def ref(self) -> RecordRef:
        return RecordRef(topic=self.topic, partition=self.partition, offset=self.offset)


@dataclass(frozen=True)
class RelayContext:
    """Configuration the decision needs, prepared once."""

    deployment: Deployment
    topics: Topics
    keys: dict[str, dict[str, Ed25519PublicKey]]
    max_bytes: int
    #: False only for an offline check of an unsigned draft (`launchrelay check` without --signature)
    verify_signatures: bool = True
    #: the watch's operator keys: only a redrive signed by one of them reopens a rejected message
    operator_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    #: two-centre mode: each linked centre's relay keys (its receipts and beacons are verified with these)
    link_keys: dict[str, dict[str, Ed25519PublicKey]] = field(default_factory=dict)

    @classmethod
    def build(cls, deployment: Deployment) -> RelayContext:
        keys = {
            code: {kid: public_key_from_b64(b64) for kid, b64 in party.keys.items()}
            for code, party in deployment.parties.items()
        }
        operators = {kid: public_key_from_b64(b64) for kid, b64 in deployment.relay.operator_keys.items()}
        links = {
            code: {kid: public_key_from_b64(b64) for kid, b64 in link.relay_keys.items()}
            for code, link in deployment.links.items()
        }
        return cls(deployment, deployment.topics, keys, deployment.relay.max_message_bytes,
                   operator_keys=operators, link_keys=links)  # fmt: skip


#: The fields that say what a decision is about (:attr:`Decision.identity`).
IDENTITY = ("message_id", "message_type", "agreement", "sender", "recipients", "launch_key", "refers_to")


@dataclass(frozen=True)
class Decision:
    kind: Outcome
    record: InboundRecord
    owner: str | None
    digest: str
    message: PartyMessage | None = None
    reasons: list[Reason] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    state_writes: list[SeenMessage] = field(default_factory=list)
    #: a reference was not found: the state may lag another relay instance; sync and decide again
    reference_missing: bool = False
    agreement: Agreement | None = None
    #: set aside rather than decided: the error's class and a short message (header ``lr-error``)
    error: str | None = None
    #: two-centre mode: the linked party whose centre sent this record over the link (None: a local out topic)
    link: str | None = None
    #: for a ``remote_receipt``: the linked centre's receipt; for a ``beacon``: when its relay wrote it
    remote: Receipt | None = None
    beacon_at: datetime | None = None
    #: what the agreement flags on a forward without refusing it
    warnings: list[Reason] = field(default_factory=list)
    #: a planned launch or an amendment forwarded: the notice as it now stands, and what the amendment changed
    notice: Notice | None = None
    #: ``notice`` as compact JSON text, serialised once for the state record and the status event
    notice_text: str | None = None
    changed: list[str] = field(default_factory=list)
    #: the record's redrive mark, if it had one (authentic or not)
    redrive: RedriveMark | None = None

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def identity(self) -> dict[str, Any]:
        """What the decision is about, as every status event and log line names it: the ids an operator follows a
        notification by (the sender is the topic's owner when the bytes named none)."""
        msg = self.message
        if msg is None:
            return dict.fromkeys(IDENTITY, None) | {"sender": self.owner, "recipients": []}
        return {
            "message_id": msg.message_id,
            "message_type": msg.message_type,
            "agreement": msg.agreement,
            "sender": msg.sender,
            "recipients": list(msg.recipients),
            "launch_key": msg.launch_key,
            # from the instance's fields: getattr() on a model without the field takes pydantic's slow path
            "refers_to": msg.__dict__.get("refers_to"),
        }

    @property
    def redrive_of(self) -> str | None:
        """The dead letter an operator redrove this record from (an authentic mark only)."""
        return self.redrive.dead_letter if self.redrive is not None and self.redrive.authentic else None

    @property
    def redrive_ignored(self) -> Reason | None:
        """Said to the sender when the record's redrive mark was not an operator's: it was ignored."""
        mark = self.redrive
        if mark is None or mark.authentic:
            return None
        why = {"missing": "is not signed", "unknown_key": f"names no operator key ({mark.key_id!r})"}.get(
            mark.verdict.value, "has a signature that does not verify"
        )
        return _r(R.REDRIVE_UNAUTHENTICATED, f"the redrive mark {why}; decided as a plain re-publish")


def set_aside(record: InboundRecord, ctx: RelayContext, code: R, error: BaseException, attempts: int) -> Decision:
    """A record the relay could not decide (``INTERNAL_ERROR``) or not even read (``RECORD_UNREADABLE``).

    Rejected with the error named, so that the partition moves on: the record's sender is
    told, and the dead letter keeps whatever bytes the relay could read.
    """
    what = "deciding on it failed" if code is R.INTERNAL_ERROR else "the relay's Kafka client cannot read it"
    text = f"{what} {attempts} times ({type(error).__name__}); set aside so the partition moves on"
    message: PartyMessage | None = None
    with contextlib.suppress(Exception):  # best effort, so the receipt can name the message; it may be what fails
        parsed = read(record.value or b"").message
        message = None if isinstance(parsed, Receipt) else parsed
    return Decision(
        Outcome.REJECTED,
        record,
        ctx.topics.owner_of(record.topic),
        hashlib.sha256(record.value or b"").hexdigest(),
        message=message,
        reasons=[_r(code, text)],
        error=f"{type(error).__name__}: {error}"[:300],
    )


def _r(code: R, message: str, where: str | None = None) -> Reason:
    return Reason(code=code.value, message=message, field=where)


def _check_signature(record: InboundRecord, claimed: str | None, ctx: RelayContext) -> list[Reason]:
    checked = verify_headers(record.value or b"", record.headers, ctx.keys.get(claimed or "", {}))
    if checked.verdict is Verdict.MISSING:
        return [_r(R.SIGNATURE_MISSING, f"headers {SIGNATURE_HEADER} and {KEY_ID_HEADER} are required")]
    if checked.verdict is Verdict.UNKNOWN_KEY:
        return [_r(R.KEY_UNKNOWN, f"key id {checked.key_id!r} is not registered for {claimed or 'the sender'}")]
    if checked.verdict is Verdict.INVALID:
        return [_r(R.SIGNATURE_INVALID, f"signature does not verify with {claimed}'s key {checked.key_id!r}")]
    return []


def _same_launch(
    message: Amendment | Cancellation | CompletedLaunch | Acknowledgement, ref: SeenMessage
) -> list[Reason]:
    """A reference must stay within one agreement and one launch."""
    if ref.agreement == message.agreement and ref.launch_key == message.launch_key:
        return []
    text = f"{message.refers_to!r} belongs to {ref.agreement} launch {ref.launch_key}"
    return [_r(R.REFERENCE_MISMATCH, text, "refers_to")]


def _check_reference(
    message: Amendment | Cancellation | CompletedLaunch, state: StateView
) -> tuple[list[Reason], bool, SeenMessage | None]:
    assert message.refers_to is not None
    ref = state.get(message.sender, message.refers_to)
    if ref is None or ref.outcome != Outcome.FORWARDED:
        what = "no forwarded message" if ref is None else "a rejected message"
        return (
            [_r(R.REFERENCE_UNKNOWN, f"{message.refers_to!r} is {what} of {message.sender}", "refers_to")],
            (ref is None),
            None,
        )
    out = []
    if ref.message_type != "planned_launch":
        out.append(_r(R.REFERENCE_MISMATCH, f"{message.refers_to!r} is a {ref.message_type}", "refers_to"))
    out += _same_launch(message, ref)
    if sorted(ref.recipients) != sorted(message.recipients):
        out.append(
            _r(
                R.REFERENCE_MISMATCH,
                f"{message.refers_to!r} went to {', '.join(ref.recipients)}",
                "recipients",
            )
        )
    if ref.closed:
        out.append(_r(R.NOTIFICATION_CLOSED, f"{message.refers_to!r} was cancelled or completed", "refers_to"))
    return out, False, ref


def _check_ack(message: Acknowledgement, state: StateView) -> tuple[list[Reason], bool]:
    if len(message.recipients) != 1:
        return [_r(R.RECIPIENT_NOT_PARTY, "an acknowledgement goes to the original sender only", "recipients")], False
    original_sender = message.recipients[0]
    ref = state.get(original_sender, message.refers_to)
    if ref is None or ref.outcome != Outcome.FORWARDED:
        return [
            _r(
                R.REFERENCE_UNKNOWN,
                f"{original_sender} has no forwarded message {message.refers_to!r}",
                "refers_to",
            )
        ], ref is None
    out = []
    if ref.message_type == "acknowledgement":
        out.append(_r(R.REFERENCE_MISMATCH, "acknowledgements are not acknowledged", "refers_to"))
    out += _same_launch(message, ref)
    if message.sender not in ref.recipients:
        out.append(
            _r(
                R.ACK_NOT_FROM_RECIPIENT,
                f"{message.sender} was not a recipient of {message.refers_to!r} ({', '.join(ref.recipients)})",
                "sender",
            )
        )
    return out, False


def forget_time(
    message: PartyMessage, received_at: datetime | None, notice: Notice | None, agreement: Agreement | None,
    remember_for: timedelta,
) -> int:  # fmt: skip
    """When a message's id may be forgotten (seconds since the epoch): once it can no longer matter (its receipt,
    or its notice's expiry) plus ``remember_for``. A replay after that is older than ``remember_for`` by its
    ``created_at``, and CREATED_AT_TOO_OLD refuses it."""
    matters_until = max(received_at or message.created_at, message.created_at)
    if notice is not None and agreement is not None:
        matters_until = max(matters_until, agreement.expires(notice.window.start, notice.window.end))
    return int((matters_until + remember_for).timestamp()) + 1


@dataclass(frozen=True)
class _Read:
    """Step 1's result: what the bytes hold, and whose they say they are."""

    message: PartyMessage | None
    claimed: str | None  # the sender the document names, even when it is no valid message
    reasons: list[Reason]
    strict: bool  # strict JSON at all (if not, nothing in it can be trusted, not even a sender)


def _read_bytes(value: bytes, ctx: RelayContext) -> _Read:
    """1. The bytes: size, then strict JSON (UTF-8, depth, numbers, keys) and the contract."""
    if len(value) > ctx.max_bytes:
        return _Read(None, None, [_r(R.OVERSIZE, f"{len(value)} bytes exceeds the limit of {ctx.max_bytes}")], False)
    parsed = read(value)
    if parsed.data is None and parsed.message is None:
        return _Read(None, None, parsed.reasons, False)
    reasons = list(parsed.reasons)
    message: PartyMessage | None = None
    if isinstance(parsed.message, Receipt):
        reasons.append(_r(R.NOT_A_PARTY_MESSAGE, "receipts are issued by the relay only", "message_type"))
    else:
        message = parsed.message
    data = parsed.data
    claimed = message.sender if message else (data.get("sender") if isinstance(data, dict) else None)
    return _Read(message, claimed if isinstance(claimed, str) else None, reasons, True)


def _record_key(record: InboundRecord, message: PartyMessage) -> list[Reason]:
    """2. The record key is the launch key: it decides the partition, and so the order per launch."""
    if record.key == message.launch_key.encode():
        return []
    got = "no key" if record.key is None else f"key {record.key[:80].decode(errors='replace')!r}"
    return [_r(R.KEY_MISMATCH, f"the record has {got}; it must be keyed by launch_key {message.launch_key!r}")]


def _origin(record: InboundRecord, claimed: str | None, owner: str | None, ctx: RelayContext) -> list[Reason]:
    """3. Origin: signed by the claimed sender's registered key, and the sender owns the topic it wrote to."""
    out = _check_signature(record, claimed or owner, ctx) if ctx.verify_signatures else []
    if claimed is not None and owner is not None and claimed != owner:
        out.append(
            _r(R.SENDER_SPOOFED, f"message claims sender {claimed} but was written to {owner}'s topic", "sender")
        )
    return out


def _earlier(
    record: InboundRecord, ctx: RelayContext, state: StateView, message: PartyMessage, digest: str,
    mark: RedriveMark | None, link: str | None,
) -> tuple[SeenMessage | None, Decision | None, list[Reason]]:  # fmt: skip
    """4. The same id seen before (of an authentic message only: a forger cannot claim someone else's ids): the
    same bytes are a duplicate (or, over a link, a re-send); other bytes under the id are refused. An operator's
    signed redrive of a message rejected before decides it again."""
    seen = state.get(message.sender, message.message_id)
    if seen is not None and seen.digest == digest and seen.outcome == Outcome.REJECTED and mark and mark.authentic:
        seen = None
    if seen is not None and seen.digest == digest and link is not None and seen.outcome == Outcome.FORWARDED:
        resent = _retransmission(record, ctx, state, message, seen, link)
        if resent is not None:
            return seen, resent, []
    if seen is not None and seen.digest == digest:
        repeat = _r(R.DUPLICATE, "already handled; not forwarded again")
        owner = ctx.topics.owner_of(record.topic)
        return seen, Decision(Outcome.DUPLICATE, record, owner, digest, message=message, reasons=[repeat], redrive=mark,
                              link=link), []  # fmt: skip
    if seen is not None:
        return (
            seen,
            None,
            [_r(R.DUPLICATE_CONFLICT, f"message id {message.message_id!r} was used before with other bytes")],
        )
    return None, None, []


@dataclass(frozen=True)
class _Referred:
    """Step 5's result: the notice an amendment, cancellation, report or acknowledgement refers to."""

    reasons: list[Reason]
    missing: bool  # not known here (yet): the relay catches its state up and decides again
    ref: SeenMessage | None = None
    notice: Notice | None = None  # the notice as it stands before this message


def _references(message: PartyMessage, state: StateView) -> _Referred:
    """5. References to earlier messages: an amendment or a report is judged with the notice it refers to."""
    if isinstance(message, Amendment | Cancellation) or (
        isinstance(message, CompletedLaunch) and message.refers_to is not None
    ):
        reasons, missing, ref = _check_reference(message, state)
        notice = Notice.from_text(ref.notice) if ref is not None and ref.notice else None
        return _Referred(reasons, missing, ref, notice)
    if isinstance(message, Acknowledgement):
        reasons, missing = _check_ack(message, state)
        return _Referred(reasons, missing)
    return _Referred([], False)


def _agreement(
    message: PartyMessage, record: InboundRecord, ctx: RelayContext, agreement: Agreement | None, before: Notice | None
) -> Findings:
    """6. The agreement's rules at the time of receipt (the broker's append time), with the notice as it stood."""
    if agreement is None:
        return Findings([_r(R.AGREEMENT_UNKNOWN, f"agreement {message.agreement!r} is not configured", "agreement")])
    if record.received_at is None:
        text = f"the record's timestamp {record.timestamp_ms} is not a time; out topics must use LogAppendTime"
        return Findings([_r(R.TIMESTAMP_INVALID, text)])
    relay = ctx.deployment.relay
    return check_rules(message, agreement, record.received_at, before, relay.created_at_skew, relay.remember_for)


def _state_writes(
    message: PartyMessage, record: InboundRecord, ctx: RelayContext, agreement: Agreement | None, digest: str,
    forwarded: bool, referred: _Referred, after: Notice | None, notice_text: str | None,
) -> list[SeenMessage]:  # fmt: skip
    """8. What the relay remembers of a message decided for the first time: its id and outcome, the notice as it
    now stands, and (forwarded) what it did to the notice it refers to (amended it, or closed it)."""
    src = Src.of(record.ref)
    forget_at = forget_time(message, record.received_at, after, agreement, ctx.deployment.relay.remember_for)
    writes = [
        SeenMessage(
            sender=message.sender,
            message_id=message.message_id,
            digest=digest,
            message_type=message.message_type,
            agreement=message.agreement,
            launch_key=message.launch_key,
            recipients=tuple(message.recipients),
            outcome=Outcome.FORWARDED if forwarded else Outcome.REJECTED,
            src=src,
            notice=notice_text if isinstance(message, PlannedLaunch) else None,
            forget_at=forget_at,
        )
    ]
    ref = referred.ref
    if forwarded and ref is not None:
        if isinstance(message, Cancellation | CompletedLaunch):
            writes.append(ref.closed_by(src))
        elif isinstance(message, Amendment) and notice_text is not None:
            writes.append(ref.amended(notice_text, src, forget_at))
    return writes


def decide(record: InboundRecord, ctx: RelayContext, state: StateView) -> Decision:
    """Decide what happens to one record read from a party's out topic (or, two-centre mode, an incoming link):
    every step below adds the reasons it finds; any reason rejects the message, and all of them are given."""
    owner = ctx.topics.owner_of(record.topic)
    value = record.value or b""
    digest = hashlib.sha256(value).hexdigest()
    link = ctx.topics.link_of(record.topic)
    if link is not None:  # 0. the linked centre's own records (its receipts, beacons) are not party messages
        relayed = from_linked_relay(record, ctx, state, link, digest)
        if relayed is not None:
            return relayed

    def reject(reasons: list[Reason]) -> Decision:
        return Decision(Outcome.REJECTED, record, owner, digest, reasons=reasons)

    got = _read_bytes(value, ctx)  # 1
    if not got.strict:
        return reject(got.reasons)
    message = got.message
    reasons = [*got.reasons, *(_record_key(record, message) if message is not None else [])]  # 2
    origin = _origin(record, got.claimed, owner, ctx)  # 3
    reasons += origin
    if message is None:
        return reject(reasons)
    authentic = not origin
    mark = read_redrive(value, record.headers, ctx.operator_keys)
    seen: SeenMessage | None = None
    if authentic:  # 4
        seen, settled, repeat = _earlier(record, ctx, state, message, digest, mark, link)
        if settled is not None:
            return settled
        reasons += repeat
    referred = _references(message, state)  # 5
    agreement = ctx.deployment.agreement(message.agreement)
    found = _agreement(message, record, ctx, agreement, referred.notice)  # 6
    reasons += [*found.reasons, *referred.reasons]
    reasons += [*_reachable(message, ctx.topics, link), *_readable(message, ctx.deployment)]  # 7: who can take it
    kind = Outcome.REJECTED if reasons else Outcome.FORWARDED
    forwarded = kind is Outcome.FORWARDED
    after, changed = (found.notice, found.changed) if forwarded else (None, [])  # a refusal changes nothing
    notice_text = after.to_text() if after is not None else None
    writes: list[SeenMessage] = []
    if authentic and seen is None:  # 8
        writes = _state_writes(message, record, ctx, agreement, digest, forwarded, referred, after, notice_text)
    return Decision(
        kind,
        record,
        owner,
        digest,
        message=message,
        reasons=reasons,
        # over a link, only this centre's own party gets a copy: a centre never passes a record on to a third
        recipients=[p for p in message.recipients if link is None or ctx.topics.is_local(p)] if forwarded else [],
        state_writes=writes,
        reference_missing=referred.missing,
        agreement=agreement,
        warnings=found.warnings if forwarded else [],
        notice=after,
        notice_text=notice_text,
        changed=changed,
        redrive=mark,
        link=link,
    )


def _retransmission(
    record: InboundRecord, ctx: RelayContext, state: StateView, message: PartyMessage, seen: SeenMessage, link: str
) -> Decision | None:
    """Two-centre mode: the sending centre's tracker re-sent a notice not yet acknowledged (header
    ``lr-retransmission: N``, the original bytes). It is forwarded again to the local recipients, once per attempt
    number: the mirror's repeat of the same attempt is absorbed like any repeat."""
    attempt = header(record.headers, RETRANSMISSION_HEADER)
    if attempt is None or not attempt.isdigit():
        return None
    ident = f"{message.message_id}|retransmission {int(attempt)}"
    digest = seen.digest
    if state.get(message.sender, ident) is not None:
        repeat = _r(R.DUPLICATE, "this retransmission was forwarded already")
        return Decision(Outcome.DUPLICATE, record, link, digest, message=message, reasons=[repeat], link=link)
    write = replace(seen, message_id=ident, src=Src.of(record.ref), notice=None)
    return Decision(
        Outcome.FORWARDED, record, link, digest, message=message, recipients=[p for p in message.recipients if
        ctx.topics.is_local(p)], state_writes=[write], agreement=ctx.deployment.agreement(message.agreement),
        link=link,
    )  # fmt: skip


def _readable(message: PartyMessage, deployment: Deployment) -> list[Reason]:
    """Every recipient reads the contract version the message is written in (``[parties.XX] reads``)."""
    out = []
    for p in message.recipients:
        party = deployment.parties.get(p)
        if party is not None and message.contract not in party.reads:
            text = f"{p} reads {', '.join(party.reads)} only; this message is {message.contract}"
            out.append(_r(R.CONTRACT_VERSION_NOT_READ, text, "contract"))
    return out


def _reachable(message: PartyMessage, topics: Topics, link: str | None) -> list[Reason]:
    """Two-centre mode: every recipient is this centre's party or served by a linked centre."""
    if topics.here is None or link is not None:
        return []
    lost = [p for p in message.recipients if not topics.is_local(p) and p not in topics.linked]
    if not lost:
        return []
    return [_r(R.RECIPIENT_UNREACHABLE, f"no link to the centre of {', '.join(lost)}", "recipients")]


def from_linked_relay(
    record: InboundRecord, ctx: RelayContext, state: StateView, link: str, digest: str
) -> Decision | None:
    """What a linked centre's relay itself wrote on the link: a beacon, or its receipt for a message this centre
    sent it. None for anything else (a party's message, decided as usual). Both must verify with that relay's keys;
    a receipt seen before (the mirror copies at least once) is absorbed; neither ever gets a receipt back."""
    value = record.value or b""
    beacon = header(record.headers, LINK_BEACON) is not None
    if not beacon:
        parsed = read(value)
        if not isinstance(parsed.message, Receipt):
            return None
        receipt: Receipt | None = parsed.message
    checked = verify_headers(value, record.headers, ctx.link_keys.get(link, {}))
    if checked.verdict is not Verdict.VALID:
        what = "beacon" if beacon else "receipt"
        text = f"a {what} on the link from {link} that does not verify with {link}'s relay keys ({checked.verdict})"
        return Decision(Outcome.REJECTED, record, None, digest, reasons=[_r(R.LINK_UNVERIFIED, text)], link=link)
    if beacon:
        return Decision(Outcome.BEACON, record, None, digest, link=link, beacon_at=_beacon_time(value))
    assert receipt is not None
    seen = state.get(_relay_of(link), receipt.message_id)
    if seen is not None:
        return Decision(
            Outcome.REMOTE_RECEIPT, record, None, digest, remote=receipt, link=link
        )  # a repeat: nothing new
    remember = ctx.deployment.relay.remember_for
    write = SeenMessage(
        sender=_relay_of(link), message_id=receipt.message_id, digest=digest, message_type="receipt",
        agreement=receipt.agreement or "", launch_key=receipt.launch_key or "", recipients=(receipt.recipient,),
        outcome=Outcome.FORWARDED, src=Src.of(record.ref),
        forget_at=int((max(receipt.created_at, record.received_at or receipt.created_at) + remember).timestamp()) + 1,
    )  # fmt: skip
    to = [receipt.recipient] if ctx.topics.is_local(receipt.recipient) else []
    return Decision(Outcome.REMOTE_RECEIPT, record, None, digest, remote=receipt, link=link, recipients=to,
                    state_writes=[write])  # fmt: skip


def _relay_of(link: str) -> str:
    """The name under which a linked centre's relay's receipts are remembered (not a party code: no clash)."""
    return f"{link}:relay"


def _beacon_time(value: bytes) -> datetime | None:
    """When the beacon says it left; None for anything else, a time without a zone included (it could not be
    compared with this broker's time of arrival)."""
    with contextlib.suppress(Exception):
        at = datetime.fromisoformat(json.loads(value)["at"])
        return at if at.tzinfo is not None else None
    return None
