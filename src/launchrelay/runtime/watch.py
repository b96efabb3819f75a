"""Which input partitions have work waiting and make no progress: pure bookkeeping, time passed in.

A service tells the watch what it fetched, committed and failed, and what the
broker says each partition's end offset is; the watch answers how long the
oldest undecided record has waited, which partitions count as stalled, and
when a stall is due to be reported again (once per interval, not per retry).
The relay watches its input partitions with it, the tracker the status topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PartitionState:
    """What is known of one input partition."""

    #: the next offset to decide (committed, or where deciding stands); None until known
    next_offset: int | None = None
    #: the end of the partition (last stable offset for read_committed); None until asked
    end_offset: int | None = None
    #: since when (wall clock, seconds) undecided work has waited without any progress; None: nothing waits
    waiting_since: float | None = None
    #: the last error that kept this partition from moving, in a few words
    last_error: str | None = None
    #: when the current stall was last reported (so it is reported once per interval)
    reported_at: float | None = None
    #: records fetched and not yet decided
    in_hand: bool = False
    #: an end offset the consumer has read up to with nothing left in hand: only transaction markers
    #: (which take an offset each and are never delivered) lie between the last record and it
    read_to: int | None = None

    @property
    def lag(self) -> int:
        if self.end_offset is None or self.next_offset is None:
            return 0
        if self.read_to is not None and self.read_to >= self.end_offset:
            return 0
        return max(0, self.end_offset - self.next_offset)


@dataclass(frozen=True)
class Stall:
    """A partition with work waiting and no progress for longer than the limit."""

    key: str
    waited_s: float
    lag: int
    error: str | None


@dataclass
class PartitionWatch:
    """Per-partition progress of one service; keys are ``topic:partition``."""

    stall_after_s: float = 30.0
    partitions: dict[str, PartitionState] = field(default_factory=dict)

    def assigned(self, key: str) -> None:
        self.partitions.setdefault(key, PartitionState())

    def revoked(self, key: str) -> None:
        self.partitions.pop(key, None)

    def fetched(self, key: str, first_timestamp_s: float | None, now: float) -> None:
        """Records are in hand: the first one's append time is the age of the oldest pending one."""
        state = self.partitions.setdefault(key, PartitionState())
        state.in_hand = True
        oldest = first_timestamp_s if first_timestamp_s is not None and first_timestamp_s <= now else now
        if state.waiting_since is None or oldest < state.waiting_since:
            state.waiting_since = oldest

    def committed(self, key: str, next_offset: int) -> bool:
        """Work was decided up to ``next_offset``; returns True when this ends a reported stall."""
        state = self.partitions.setdefault(key, PartitionState())
        state.next_offset = next_offset
        state.in_hand = False
        state.waiting_since = None  # progress: whatever waits now is measured afresh
        state.last_error = None
        was_reported = state.reported_at is not None
        state.reported_at = None
        return was_reported

    def positioned(self, key: str, next_offset: int) -> None:
        """Where deciding stands after a claim (the committed offset), without counting as progress."""
        self.partitions.setdefault(key, PartitionState()).next_offset = next_offset

    def failed(self, key: str, error: str) -> None:
        self.partitions.setdefault(key, PartitionState()).last_error = error[:300]

    def ends(self, key: str, end_offset: int, now: float, position: int | None = None) -> None:
        """The broker's end offset: work waits when it is past where deciding stands.

        ``position``: the consumer's fetch position. On a topic written in transactions the end lies
        past the last record (the commit marker takes an offset), so a consumer that has fetched up
        to the end and holds nothing undecided is caught up, whatever its last decided offset."""
        state = self.partitions.setdefault(key, PartitionState())
        state.end_offset = end_offset
        read = position is not None and position >= end_offset and not state.in_hand and state.next_offset is not None
        state.read_to = end_offset if read else None
        if state.next_offset is not None and state.lag == 0:  # at or past the end, or read to it
            state.waiting_since = None
            state.reported_at = None
        elif state.waiting_since is None:
            state.waiting_since = now

    def oldest_pending_s(self, key: str, now: float) -> float:
        state = self.partitions.get(key)
        if state is None or state.waiting_since is None:
            return 0.0
        return max(0.0, now - state.waiting_since)

    def stalls(self, now: float) -> list[Stall]:
        """Every partition waiting longer than the limit, longest first."""
        out = [
            Stall(key, now - s.waiting_since, s.lag, s.last_error)
            for key, s in self.partitions.items()
            if s.waiting_since is not None and now - s.waiting_since > self.stall_after_s
        ]
        return sorted(out, key=lambda s: -s.waited_s)

    def due_reports(self, now: float) -> list[Stall]:
        """Stalls not reported within the last interval; marks them reported now."""
        due = []
        for stall in self.stalls(now):
            state = self.partitions[stall.key]
            if state.reported_at is None or now - state.reported_at >= self.stall_after_s:
                state.reported_at = now
                due.append(stall)
        return due


@dataclass
class Outage:
    """A broker that cannot be reached: since when, and whether it was reported in this interval."""

    report_every_s: float = 30.0
    since: float | None = None
    reported_at: float | None = None
    error: str | None = None

    def failed(self, error: str, now: float) -> bool:
        """A request failed; True when the outage is due to be reported (first after the interval, then each)."""
        self.error = error[:300]
        if self.since is None:
            self.since = now
        if now - self.since < self.report_every_s:
            return False
        if self.reported_at is None or now - self.reported_at >= self.report_every_s:
            self.reported_at = now
            return True
        return False

    def recovered(self, now: float) -> float | None:
        """A request succeeded; returns the outage's length when one was reported, else None."""
        length = now - self.since if self.since is not None and self.reported_at is not None else None
        self.since = self.reported_at = self.error = None
        return length
