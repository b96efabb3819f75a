"""The SQLite ledger on a temporary directory: events and offsets in one transaction, indexes, restarts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.lifecycle import DeliveryState
from test_tracker_lifecycle import T0, _event, _forwarded

TP = ("lr.status", 0)


def test_events_and_offsets_commit_together_and_survive_a_reopen(tmp_path: Path) -> None:
    """A batch's rows, timeline and offset are there after closing and opening the file again."""
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.apply([_forwarded(["RU", "US"])], {TP: 1})
    ledger.close()
    again = SqliteLedger(tmp_path / "l.sqlite")
    try:
        assert again.offsets() == {TP: 1}
        assert [d.recipient for d in again.deliveries("CN/cn-1")] == ["RU", "US"]
        assert [e.kind for e in again.timeline("CN/cn-1")] == ["forwarded"]
        assert again.find("cn-1")[0].key == "CN/cn-1" and again.location == str(tmp_path / "l.sqlite")
    finally:
        again.close()


def test_a_failing_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    """When an event of a batch cannot be written, neither its rows nor the batch's offset are."""
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.apply([], {TP: 5})
    broken = _event(EventKind.FORWARDED, "cn-x", "planned_launch", 1).model_copy(update={"recipients": ["RU"]})
    ledger._db.execute("CREATE TRIGGER fail BEFORE INSERT ON timeline WHEN NEW.key = 'CN/cn-x' "
                       "BEGIN SELECT RAISE(ABORT, 'injected'); END")  # fmt: skip
    with pytest.raises(Exception, match="injected"):
        ledger.apply([_forwarded(["RU"]), broken], {TP: 7})
    assert ledger.offsets() == {TP: 5} and ledger.notifications() == []
    ledger.close()


def test_due_deliveries_come_from_the_index_in_time(tmp_path: Path) -> None:
    """A delivery is due at its next re-send, then its deadline; acknowledged ones never are."""
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.apply([_forwarded(["RU"]), _forwarded(["US"]).model_copy(update={"message_id": "cn-2"})], {TP: 2})
    assert ledger.due_deliveries(T0 + timedelta(minutes=14)) == []
    assert {d.key for d in ledger.due_deliveries(T0 + timedelta(minutes=15))} == {"CN/cn-1", "CN/cn-2"}
    ack = _event(EventKind.FORWARDED, "us-ack", "acknowledgement", 5, sender="US", recipients=["CN"],
                 refers_to="cn-2", received_at=T0 + timedelta(minutes=5))  # fmt: skip
    ledger.apply([ack], {TP: 3})
    assert [d.key for d in ledger.due_deliveries(T0 + timedelta(days=1))] == ["CN/cn-1"]
    assert ledger.state_counts() == {"pending": 1, "acknowledged": 1}
    assert [d.state for d in ledger.pending()] == [DeliveryState.PENDING]
    ledger.close()


def test_status_event_without_a_sender_gets_a_record_key(tmp_path: Path) -> None:
    """A rejection of bytes with no message in them is kept under the record it came from."""
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    garbage = StatusEvent.model_validate(
        {**_event(EventKind.REJECTED, "x", "planned_launch").model_dump(), "message_id": None, "sender": "CN"}
    )
    ledger.apply([garbage], {TP: 1})
    (row,) = ledger.notifications()
    assert row.key == "record:lr.CN.out:0:0" and row.outcome == "rejected"
    ledger.close()


def _true_counts(ledger: SqliteLedger) -> dict[str, int]:
    rows = ledger._db.execute("SELECT state, count(*) FROM deliveries WHERE kind = 'ack' GROUP BY state").fetchall()
    return dict(rows)


def _step(kind: str, n: int, who: str) -> StatusEvent:
    """One event of a random history: notices n forwarded to RU and US, acknowledged, re-sent or overdue."""
    mid = f"cn-{n}"
    if kind == "forward":
        return _forwarded(["RU", "US"]).model_copy(update={"message_id": mid, "event_id": f"f-{n}"})
    if kind == "ack":
        return _event(EventKind.FORWARDED, f"{who.lower()}-ack-{n}", "acknowledgement", 5, sender=who,
                      recipients=["CN"], refers_to=mid, received_at=T0 + timedelta(minutes=5))  # fmt: skip
    if kind == "overdue":
        return _event(EventKind.ACKNOWLEDGEMENT_OVERDUE, mid, "planned_launch", 60, recipients=[who])
    return _event(EventKind.RETRANSMITTED, mid, "planned_launch", 15, recipients=[who], attempt=1)


def _histories(notices: int, events: int) -> st.SearchStrategy[list[tuple[str, int, str]]]:
    """Random histories of up to ``events`` steps over ``notices`` notices (see :func:`_step`)."""
    step = st.tuples(
        st.sampled_from(["forward", "ack", "overdue", "resend"]),
        st.integers(0, notices - 1),
        st.sampled_from(["RU", "US"]),
    )
    return st.lists(step, max_size=events)


@settings(max_examples=60, deadline=None)
@given(history=_histories(7, 40), cut=st.integers(0, 40))
def test_counts_kept_by_the_ledger_equal_a_full_count_across_a_reopen(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str, int, str]], cut: int
) -> None:
    """Whatever happens to deliveries, the incrementally kept counts are what a full count says, before and after
    the file is closed and opened again (a tracker restart)."""
    path = tmp_path_factory.mktemp("counts") / "l.sqlite"
    events = [_step(*h) for h in history]
    ledger = SqliteLedger(path)
    ledger.apply(events[:cut], {TP: cut})
    assert ledger.state_counts() == _true_counts(ledger)
    ledger.close()
    ledger = SqliteLedger(path)
    ledger.apply(events[cut:], {TP: len(events)})
    assert ledger.state_counts() == _true_counts(ledger)
    pending = ledger._db.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]
    assert ledger.pending_count() == pending
    ledger.close()


def test_a_ledger_from_before_the_counts_is_counted_once_on_opening(tmp_path: Path) -> None:
    """An older ledger (no counts table, no triggers) gets both on opening, with the counts of the rows it holds."""
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.apply([_forwarded(["RU", "US"]), _step("ack", 1, "RU").model_copy(update={"refers_to": "cn-1"})], {TP: 2})
    for trigger in ("deliveries_counted_in", "deliveries_counted_out", "deliveries_counted_moved"):
        ledger._db.execute(f"DROP TRIGGER {trigger}")
    ledger._db.execute("DROP TABLE delivery_counts")
    ledger.close()
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    assert ledger.state_counts() == {"pending": 1, "acknowledged": 1} == _true_counts(ledger)
    ledger.apply([_step("forward", 2, "RU")], {TP: 3})
    assert ledger.state_counts() == {"pending": 3, "acknowledged": 1} == _true_counts(ledger)
    ledger.close()


@settings(max_examples=40, deadline=None)
@given(history=_histories(31, 60), page=st.integers(1, 7))
def test_pages_cover_every_notification_once_and_open_keys_come_in_the_operators_order(
    tmp_path_factory: pytest.TempPathFactory, history: list[tuple[str, int, str]], page: int
) -> None:
    """Reading the ledger a page at a time gives each notification exactly once, the latest changed first; the
    open keys are every notification with an overdue acknowledgement, then every pending one by its due time."""
    ledger = SqliteLedger(tmp_path_factory.mktemp("pages") / "l.sqlite")
    ledger.apply([_step(*h) for h in history], {TP: len(history)})
    seen: list[str] = []
    cursor: int | None = None
    while True:
        found, cursor = ledger.recent(page, cursor)
        assert len(found) <= page
        seen += [n.key for n in found]
        if cursor is None:
            break
    written = ledger._db.execute("SELECT key FROM notifications ORDER BY rowid DESC").fetchall()
    assert seen == [k for (k,) in written]
    opened = [k for chunk in ledger.open_keys(chunk=page) for k in chunk]
    overdue = {k for (k,) in ledger._db.execute("SELECT key FROM deliveries WHERE state = 'timed_out'")}
    pending = ledger._db.execute("SELECT key FROM deliveries WHERE state = 'pending' ORDER BY next_due_at, rowid")
    by_due = [k for k in dict.fromkeys(k for (k,) in pending) if k not in overdue]  # ties: in the order written
    assert len(opened) == len(set(opened)) and set(opened[: len(overdue)]) == overdue
    assert opened[len(overdue) :] == by_due
    keys = [n.key for n in ledger.notifications()]
    assert set(ledger.notifications_of(keys)) == set(keys)
    assert ledger.deliveries_of(keys) == {k: ledger.deliveries(k) for k in keys if ledger.deliveries(k)}
    ledger.close()


def test_a_view_holds_a_page_and_says_when_more_matched(tmp_path: Path) -> None:
    """The operator's views stop at their limit and say more matched; the open view leads with the overdue."""
    from datetime import UTC, datetime

    from launchrelay.tracker import status

    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.apply([_step("forward", n, "RU") for n in range(12)] + [_step("overdue", 7, "US")], {TP: 13})
    now = datetime.now(UTC)
    page = status.open_rows(ledger, status.Filters(), now, limit=5)
    assert page.more and len(page.rows) == 5 and page.rows[0]["id"] == "cn-7" and page.rows[0]["state"] == "overdue"
    every = status.recent(ledger, status.Filters(), now)
    assert not every.more and sorted(r["id"] for r in every.rows) == sorted(f"cn-{n}" for n in range(12))
    narrowed = status.recent(ledger, status.Filters(overdue=True), now, limit=5)
    assert [r["id"] for r in narrowed.rows] == ["cn-7"] and not narrowed.more
    ledger.close()


def test_the_ledger_carries_its_format_and_a_later_one_is_refused_in_one_line(tmp_path: Path) -> None:
    """A new ledger and one of release 0.1.0 (user_version 0, no refused_there column) are brought to today's
    format on opening; a ledger a later release wrote is refused, left where it is, and `launchrelay status`
    says so in one line with exit 2 (no traceback)."""
    import os
    import sqlite3
    import subprocess
    import sys

    from launchrelay.errors import FormatTooNew
    from launchrelay.tracker.ledger import LEDGER_FORMAT

    path = tmp_path / "l.sqlite"
    ledger = SqliteLedger(path)
    ledger.apply([_forwarded(["RU"])], {TP: 1})
    ledger._db.execute("ALTER TABLE notifications DROP COLUMN refused_there")
    ledger._db.execute("PRAGMA user_version = 0")  # as 0.1.0 left it
    ledger.close()
    ledger = SqliteLedger(path)
    assert ledger._db.execute("PRAGMA user_version").fetchone()[0] == LEDGER_FORMAT
    assert ledger.has_notifications()
    ledger._db.execute(f"PRAGMA user_version = {LEDGER_FORMAT + 1}")
    ledger.close()
    with pytest.raises(FormatTooNew, match=rf"format {LEDGER_FORMAT + 1}.*reads format {LEDGER_FORMAT}"):
        SqliteLedger(path)
    with pytest.raises(FormatTooNew):
        SqliteLedger.recovered(path)  # not corrupt: not moved aside
    assert path.exists() and not list(tmp_path.glob("*.corrupt-*"))
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == LEDGER_FORMAT + 1, "left as the later release wrote it"
    db.close()
    env = {**os.environ, "LAUNCHRELAY_LEDGER": str(path), "LAUNCHRELAY_LOG_FORMAT": "console"}
    done = subprocess.run([sys.executable, "-m", "launchrelay", "status"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done
    assert done.stderr.strip().count("\n") == 0 and "written by a later launchrelay" in done.stderr, done.stderr
