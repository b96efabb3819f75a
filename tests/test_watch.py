"""The partition watch and the outage tracker: pure, with time passed in."""

from __future__ import annotations

from launchrelay.runtime.watch import Outage, PartitionWatch

P = "lr.CN.out:0"


def test_idle_partition_never_stalls() -> None:
    """Nothing waiting (end offset at the committed offset) is never a stall, however long."""
    w = PartitionWatch(stall_after_s=30)
    w.assigned(P)
    w.positioned(P, 10)
    w.ends(P, 10, now=0)
    assert w.stalls(now=10_000) == [] and w.oldest_pending_s(P, 10_000) == 0


def test_waiting_without_progress_stalls_after_the_limit_exactly() -> None:
    """Work waiting from t=100 is a stall only once more than 30 s have passed, and names the error and lag."""
    w = PartitionWatch(stall_after_s=30)
    w.positioned(P, 10)
    w.ends(P, 15, now=100)
    w.failed(P, "offset 10: RecursionError")
    assert w.stalls(now=130) == []
    (stall,) = w.stalls(now=130.5)
    assert stall.key == P and stall.lag == 5 and stall.error == "offset 10: RecursionError"
    assert w.oldest_pending_s(P, 130.5) == 30.5


def test_fetched_record_dates_the_wait_from_its_append_time() -> None:
    """A record in hand appended at t=50 makes the oldest pending age count from 50, not from when it was seen."""
    w = PartitionWatch(stall_after_s=30)
    w.positioned(P, 0)
    w.ends(P, 1, now=100)
    w.fetched(P, first_timestamp_s=50, now=100)
    assert w.oldest_pending_s(P, 100) == 50


def test_progress_clears_the_stall_and_says_it_was_reported() -> None:
    """A commit ends a stall; it reports whether the stall had been reported (so recovery is logged once)."""
    w = PartitionWatch(stall_after_s=30)
    w.positioned(P, 0)
    w.ends(P, 3, now=0)
    assert [s.key for s in w.due_reports(now=31)] == [P]
    assert w.committed(P, 3) is True
    assert w.stalls(now=1000) == [] and w.committed(P, 3) is False


def test_a_stall_is_reported_once_per_interval() -> None:
    """Reports come at most once per interval, however often the watch looks."""
    w = PartitionWatch(stall_after_s=30)
    w.positioned(P, 0)
    w.ends(P, 1, now=0)
    reported = [t for t in range(0, 200) if w.due_reports(now=float(t))]
    assert reported == [31, 61, 91, 121, 151, 181]


def test_outage_is_reported_after_the_interval_then_once_per_interval_and_measured() -> None:
    """A broker unreachable from t=0: first report at 30 s, then every 30 s; recovery gives its length."""
    o = Outage(report_every_s=30)
    reports = [t for t in range(0, 100, 5) if o.failed("refused", float(t))]
    assert reports == [30, 60, 90]
    assert o.recovered(97.0) == 97.0
    assert o.recovered(98.0) is None  # nothing was out any more


def test_short_outage_is_not_reported() -> None:
    """A blip shorter than the interval is never reported, and its recovery is not announced."""
    o = Outage(report_every_s=30)
    assert not o.failed("refused", 0.0) and not o.failed("refused", 10.0)
    assert o.recovered(12.0) is None


def test_a_commit_marker_after_the_last_record_is_not_lag() -> None:
    """On a transactional topic the end is one past the last record's next offset (the marker): a consumer
    that has read to the end, with nothing in hand, is caught up; one that holds records or sits before it is not."""
    w = PartitionWatch(stall_after_s=30)
    w.committed("t:0", 10)  # records 0..9 decided; the commit marker is offset 10, the end 11
    w.ends("t:0", 11, now=1000.0, position=11)
    assert w.partitions["t:0"].lag == 0 and w.stalls(now=2000.0) == []
    w.fetched("t:0", None, now=2000.0)  # new records in hand: they count until decided
    w.ends("t:0", 13, now=2000.0, position=13)
    assert w.partitions["t:0"].lag == 3 and [s.key for s in w.stalls(now=2031.0)] == ["t:0"]
    w.committed("t:0", 12)
    w.ends("t:0", 13, now=2040.0, position=10)  # sought back before the end (a retry): work waits again
    assert w.partitions["t:0"].lag == 1 and [s.key for s in w.stalls(now=2071.0)] == ["t:0"]
