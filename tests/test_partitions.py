"""The relay's partition lifecycle, every transition, without a broker (the service is its I/O shell).

The crash and fault tests (test_relay_crash, test_relay_outage, test_stall, test_cluster_faults) hold the shell
to it with real brokers; here each event is taken from each state it can meet, failure paths included.
"""

from __future__ import annotations

from launchrelay.relay.partitions import (
    Assigned,
    Claimed,
    ClaimFailed,
    Command,
    Committed,
    Do,
    Failure,
    Partition,
    Phase,
    ReadAfterAll,
    RecordFailed,
    Revoked,
    Rules,
    Tick,
    TransactionFailed,
    Unreadable,
    step,
)

RULES = Rules(record_attempts=3, max_backoff_s=10.0)
READY = Partition(Phase.READY, next=100)


def does(commands: list[Command]) -> list[Do]:
    return [c.do for c in commands]


def test_an_assigned_partition_is_claimed_before_anything_is_decided() -> None:
    """Assigned: not claimed (nothing is decided) and a claim is started; claimed: decided from the committed
    offset (from 0 on a partition nobody committed), fetching resumed."""
    part, commands = step(None, Assigned())
    assert part == Partition(Phase.CLAIMING) and not part.claimed
    assert does(commands) == [Do.CLAIM]
    part, commands = step(part, Claimed(42, now=0.0))
    assert part is not None and part.claimed and part.next == 42 and part.phase is Phase.READY
    assert does(commands) == [Do.RESUME]
    fresh, _ = step(Partition(), Claimed(None, now=0.0))
    assert fresh is not None and fresh.next == 0


def test_a_claim_that_fails_drops_its_producer_and_stays_unclaimed() -> None:
    part, commands = step(Partition(), ClaimFailed())
    assert part == Partition(Phase.CLAIMING) and does(commands) == [Do.DROP_PRODUCER]


def test_a_commit_moves_where_deciding_stands_and_ends_a_failure_it_passed() -> None:
    failing = Partition(Phase.READY, next=100, failure=Failure(105, 1, "boom"))
    part, commands = step(failing, Committed(104))
    assert part is not None and part.next == 105 and part.failure == Failure(105, 1, "boom") and commands == []
    part, _ = step(part, Committed(105))  # the record that failed went through (or was set aside)
    assert part is not None and part.next == 106 and part.failure is None


def test_a_record_that_fails_is_tried_again_after_a_growing_backoff_then_set_aside() -> None:
    """Bounded retries: the record is sought back to and the partition paused (the others go on) for 0.5 s, then
    1 s; the third failure sets it aside (INTERNAL_ERROR or RECORD_UNREADABLE) and the partition goes on."""
    part, commands = step(READY, RecordFailed(103, "ValueError: x", now=10.0), RULES)
    assert part is not None and part.phase is Phase.PAUSED and part.resume_at == 10.5
    assert commands == [Command(Do.RETRY_LATER, 103, 1, 0.5), Command(Do.SEEK, 103), Command(Do.PAUSE)]
    part, commands = step(part, Tick(now=10.4))
    assert part is not None and part.phase is Phase.PAUSED and commands == []
    part, commands = step(part, Tick(now=10.5))
    assert part is not None and part.phase is Phase.READY and does(commands) == [Do.RESUME]
    part, commands = step(part, RecordFailed(103, "ValueError: x", now=20.0), RULES)
    assert part is not None and commands[0] == Command(Do.RETRY_LATER, 103, 2, 1.0)
    part, _ = step(part, Tick(now=21.0))
    part, commands = step(part, RecordFailed(103, "ValueError: x", now=30.0), RULES)
    assert commands == [Command(Do.SET_ASIDE, 103, 3)]
    assert part is not None and part.phase is Phase.READY  # the set-aside decision is committed with the batch


def test_a_different_record_starts_a_new_count() -> None:
    part, _ = step(READY, RecordFailed(103, "x", now=0.0), RULES)
    part, commands = step(part, RecordFailed(107, "y", now=1.0), RULES)
    assert part is not None and part.failure == Failure(107, 1, "y") and commands[0].attempts == 1


def test_backoff_is_capped() -> None:
    assert [Rules(max_backoff_s=3.0).backoff(n) for n in (1, 2, 3, 4, 10)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_failed_transaction_goes_back_to_where_deciding_stood_and_is_claimed_again() -> None:
    """Nothing of the batch was committed: the producer (perhaps fenced) is dropped, the consumer sought back to
    the last committed position, and the partition claimed again, which reads the committed offset afresh. A
    failure count survives it (the same record failing again counts on); a pause does not (the claim resumes)."""
    paused = Partition(Phase.PAUSED, next=100, failure=Failure(103, 1, "x"), resume_at=99.0)
    part, commands = step(paused, TransactionFailed())
    assert part == Partition(Phase.CLAIMING, next=None, failure=Failure(103, 1, "x"))
    assert commands == [Command(Do.DROP_PRODUCER), Command(Do.SEEK, 100), Command(Do.CLAIM)]
    part, commands = step(part, Claimed(100, now=0.0))
    assert part is not None and part.phase is Phase.READY and does(commands) == [Do.RESUME]


def test_a_claim_during_a_pause_keeps_the_pause() -> None:
    paused = Partition(Phase.PAUSED, next=None, resume_at=50.0)
    part, commands = step(paused, Claimed(7, now=49.0))
    assert part is not None and part.phase is Phase.PAUSED and part.next == 7 and commands == []


def test_an_unreadable_record_is_approached_then_passed_once_set_aside_or_read() -> None:
    part, commands = step(READY, Unreadable(120))
    assert part is not None and part.unreadable == 120 and commands == []
    before, _ = step(part, Committed(119))  # the records below it, decided
    assert before is not None and before.unreadable == 120
    passed, _ = step(before, Committed(120))  # set aside RECORD_UNREADABLE, committed
    assert passed is not None and passed.unreadable is None and passed.next == 121
    read, _ = step(before, ReadAfterAll())
    assert read is not None and read.unreadable is None and read.next == 120


def test_a_revoked_partition_is_forgotten_and_late_events_change_nothing() -> None:
    """Revoked (after the transaction in hand finished: the shell holds its work lock): its producer goes and
    nothing of it is kept; a commit, failure or tick that arrives for it afterwards is ignored, so a revoke during
    a commit cannot bring a partition back to life."""
    part, commands = step(READY, Revoked())
    assert part is None and does(commands) == [Do.DROP_PRODUCER]
    for late in (Committed(200), TransactionFailed(), RecordFailed(1, "x", 0.0), Tick(0.0), Claimed(5, 0.0),
                 ClaimFailed(), Unreadable(3), ReadAfterAll(), Revoked()):  # fmt: skip
        assert step(None, late) == (None, [])


def test_a_reassigned_partition_starts_afresh() -> None:
    part, commands = step(Partition(Phase.PAUSED, next=5, failure=Failure(5, 2, "x"), resume_at=9.0), Assigned())
    assert part == Partition() and does(commands) == [Do.CLAIM]
