"""One input partition's life in the relay, as pure state: events in, the new state and commands out.

A partition is *assigned* by the group and then *claimed* (the shell starts its transactional producer, which
fences the previous owner, and reads the committed offset): only a claimed partition has records decided, from
``next`` on. A record that fails is tried again after a backoff (the partition *paused*) or, past its attempts,
set aside; a record the Kafka client cannot read is approached one record at a time; a transaction that fails
sends the partition back to be claimed again from its committed offset; a revocation ends it.

:func:`step` is every transition; the service (:mod:`launchrelay.relay.service`) is the I/O shell that feeds it
events and carries out its commands (seek, pause, resume, claim, drop the producer). No I/O and no clock: the
time is in the events that need it. ``tests/test_partitions.py`` takes every transition without a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class Phase(StrEnum):
    CLAIMING = "claiming"  # assigned; its claim is under way (fetching paused), or must be made again
    READY = "ready"  # claimed: records from ``next`` on are decided
    PAUSED = "paused"  # claimed, and a failed record is tried again at ``resume_at``


@dataclass(frozen=True)
class Failure:
    """The record a partition is stuck on: its offset, how often it failed, and the last error."""

    offset: int
    attempts: int
    error: str


@dataclass(frozen=True)
class Partition:
    phase: Phase = Phase.CLAIMING
    #: the next offset this instance may decide: records below it were committed already (None: not claimed)
    next: int | None = None
    failure: Failure | None = None
    #: the offset of a record the Kafka client cannot read (found by reading one at a time)
    unreadable: int | None = None
    #: paused: when its failed record is tried again (a monotonic time)
    resume_at: float | None = None

    @property
    def claimed(self) -> bool:
        return self.next is not None


@dataclass(frozen=True)
class Rules:
    """How failures are borne: tries per record before it is set aside, and the longest backoff."""

    record_attempts: int = 3
    max_backoff_s: float = 10.0

    def backoff(self, attempts: int) -> float:
        return min(0.5 * 2.0 ** (attempts - 1), self.max_backoff_s)


# --- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    """The group gave this instance the partition."""


@dataclass(frozen=True)
class Claimed:
    """The claim is done: the producer fenced the previous owner, and ``committed`` is where it left off."""

    committed: int | None
    now: float


@dataclass(frozen=True)
class ClaimFailed:
    """Starting the producer or reading the committed offset failed (the claim is tried again)."""


@dataclass(frozen=True)
class RecordFailed:
    """Deciding or reading the record at ``offset`` failed with ``error`` (not the broker's fault)."""

    offset: int
    error: str
    now: float


@dataclass(frozen=True)
class Committed:
    """The transaction of the records up to ``last`` committed with the input offset ``last + 1``."""

    last: int


@dataclass(frozen=True)
class TransactionFailed:
    """Nothing of the batch was committed (fenced, broker away, a send refused)."""


@dataclass(frozen=True)
class Unreadable:
    """The Kafka client cannot read the record at ``offset``."""

    offset: int


@dataclass(frozen=True)
class ReadAfterAll:
    """The unreadable record was read on a later try: back to the normal path."""


@dataclass(frozen=True)
class Tick:
    """Time passes: a paused partition whose backoff is over goes on."""

    now: float


@dataclass(frozen=True)
class Revoked:
    """The group took the partition away (after the transaction in hand, if any, finished)."""


Event = (
    Assigned
    | Claimed
    | ClaimFailed
    | RecordFailed
    | Committed
    | TransactionFailed
    | Unreadable
    | ReadAfterAll
    | Tick
    | Revoked
)


# --- commands --------------------------------------------------------------------------------------


class Do(StrEnum):
    CLAIM = "claim"  # pause the partition and claim it (in the background)
    DROP_PRODUCER = "drop_producer"  # stop and forget its producer
    PAUSE = "pause"  # stop fetching it
    RESUME = "resume"  # fetch it again
    SEEK = "seek"  # fetch from ``offset`` again
    RETRY_LATER = "retry_later"  # stop deciding this batch at ``offset`` (sought back to, and paused): it is tried
    #                              again after the backoff
    SET_ASIDE = "set_aside"  # the record at ``offset`` failed ``attempts`` times: reject it, and go on


@dataclass(frozen=True)
class Command:
    do: Do
    offset: int | None = None
    attempts: int = 0
    #: RETRY_LATER: seconds until the record is tried again
    delay_s: float = 0.0


def _seek(offset: int | None) -> list[Command]:
    return [] if offset is None else [Command(Do.SEEK, offset)]


def step(p: Partition | None, event: Event, rules: Rules = Rules()) -> tuple[Partition | None, list[Command]]:
    """The partition after ``event``, and what the shell must do. ``None``: not assigned to this instance (an
    event for a partition no longer ours, such as a commit that finished after its revocation, changes nothing)."""
    if isinstance(event, Assigned):
        return Partition(), [Command(Do.CLAIM)]
    if p is None:
        return None, []
    match event:
        case Revoked():
            return None, [Command(Do.DROP_PRODUCER)]
        case Claimed(committed=committed, now=now):
            paused = p.resume_at is not None and p.resume_at > now
            claimed = replace(p, next=committed or 0, phase=Phase.PAUSED if paused else Phase.READY)
            return claimed, [] if paused else [Command(Do.RESUME)]
        case ClaimFailed():
            return replace(p, phase=Phase.CLAIMING, next=None), [Command(Do.DROP_PRODUCER)]
        case RecordFailed(offset=offset, error=error, now=now):
            same = p.failure is not None and p.failure.offset == offset
            failure = Failure(offset, p.failure.attempts + 1 if same and p.failure else 1, error)
            if failure.attempts >= rules.record_attempts:
                return replace(p, failure=failure), [Command(Do.SET_ASIDE, offset, failure.attempts)]
            delay = rules.backoff(failure.attempts)
            later = replace(p, failure=failure, phase=Phase.PAUSED, resume_at=now + delay)
            return later, [Command(Do.RETRY_LATER, offset, failure.attempts, delay), *_seek(offset), Command(Do.PAUSE)]
        case Committed(last=last):
            ahead = p.failure if p.failure is not None and p.failure.offset > last else None
            unreadable = p.unreadable if p.unreadable is not None and p.unreadable > last else None
            return replace(p, next=last + 1, failure=ahead, unreadable=unreadable), []
        case TransactionFailed():
            back = _seek(p.next)
            retry = replace(p, phase=Phase.CLAIMING, next=None, resume_at=None)
            return retry, [Command(Do.DROP_PRODUCER), *back, Command(Do.CLAIM)]
        case Unreadable(offset=offset):
            return replace(p, unreadable=offset), []
        case ReadAfterAll():
            return replace(p, unreadable=None), []
        case Tick(now=now):
            if p.phase is Phase.PAUSED and p.resume_at is not None and p.resume_at <= now:
                return replace(p, phase=Phase.READY, resume_at=None), [Command(Do.RESUME)]
            return p, []
    raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover - the match covers every Event
