"""The durable ledger: notifications, deliveries, a timeline, and the status-topic offsets.

Every batch of status events is applied in one SQLite transaction together with
the offsets it advances to, so a crash never applies an event twice or skips
one. :class:`Ledger` is the interface the tracker and ``launchrelay status``
use; :class:`SqliteLedger` is the default store (a server database can follow
behind the same methods).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from launchrelay.agreements.config import RetransmitPolicy
from launchrelay.contract.codec import message_key
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.tracker import lifecycle as lc
from launchrelay.tracker.lifecycle import Delivery, DeliveryState, Notification

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    key TEXT PRIMARY KEY, message_id TEXT, message_type TEXT, sender TEXT, agreement TEXT, launch_key TEXT,
    recipients TEXT NOT NULL, refers_to TEXT, window_start TEXT, received_at TEXT, outcome TEXT NOT NULL,
    reasons TEXT NOT NULL, closed_by TEXT, amended INTEGER NOT NULL DEFAULT 0, source TEXT
);
CREATE INDEX IF NOT EXISTS notifications_by_id ON notifications (message_id);
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, forwarded_at TEXT NOT NULL,
    deadline_at TEXT NOT NULL, every_s REAL, max_retransmits INTEGER NOT NULL, retransmits INTEGER NOT NULL,
    acked_at TEXT, ack_message_id TEXT, timed_out_at TEXT, next_due_at TEXT,
    PRIMARY KEY (key, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_due_at);
CREATE TABLE IF NOT EXISTS timeline (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS timeline_by_key ON timeline (key, seq);
CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition));
"""


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _sortable(value: datetime) -> str:
    """A fixed-width UTC text form whose string order is time order (used for the due-time index)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    detail: dict[str, Any]


PolicyLookup = Callable[[str | None], RetransmitPolicy | None]


class Ledger(Protocol):
    def apply(self, events: list[StatusEvent], offsets: dict[tuple[str, int], int], policy: PolicyLookup) -> None: ...
    def offsets(self) -> dict[tuple[str, int], int]: ...
    def state_counts(self) -> dict[str, int]: ...
    def due_deliveries(self, now: datetime) -> list[Delivery]: ...
    def pending(self) -> list[Delivery]: ...
    def notifications(self) -> list[Notification]: ...
    def notification(self, key: str) -> Notification | None: ...
    def find(self, message_id: str) -> list[Notification]: ...
    def deliveries(self, key: str) -> list[Delivery]: ...
    def timeline(self, key: str) -> list[TimelineEntry]: ...


class SqliteLedger:
    """The ledger in one SQLite file (WAL mode, synchronous=FULL: a committed batch survives a crash)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    @classmethod
    def open_existing(cls, path: Path) -> SqliteLedger | None:
        return cls(path) if path.exists() else None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # reading ----------------------------------------------------------------------------------
    def offsets(self) -> dict[tuple[str, int], int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
        return {(t, p): o for t, p, o in rows}

    @staticmethod
    def _notification(row: tuple[Any, ...]) -> Notification:
        return Notification(
            key=row[0],
            message_id=row[1],
            message_type=row[2],
            sender=row[3],
            agreement=row[4],
            launch_key=row[5],
            recipients=tuple(json.loads(row[6])),
            refers_to=row[7],
            window_start=_dt(row[8]),
            received_at=_dt(row[9]),
            outcome=row[10],
            reasons=tuple(tuple(r) for r in json.loads(row[11])),
            closed_by=row[12],
            amended=row[13],
            source=row[14],
        )

    @staticmethod
    def _delivery(row: tuple[Any, ...]) -> Delivery:
        return Delivery(
            key=row[0],
            recipient=row[1],
            state=DeliveryState(row[2]),
            forwarded_at=datetime.fromisoformat(row[3]),
            deadline_at=datetime.fromisoformat(row[4]),
            every=timedelta(seconds=row[5]) if row[5] is not None else None,
            max_retransmits=row[6],
            retransmits=row[7],
            acked_at=_dt(row[8]),
            ack_message_id=row[9],
            timed_out_at=_dt(row[10]),
        )

    def notifications(self) -> list[Notification]:
        rows = self._db.execute("SELECT * FROM notifications ORDER BY received_at, key").fetchall()
        return [self._notification(r) for r in rows]

    def notification(self, key: str) -> Notification | None:
        row = self._db.execute("SELECT * FROM notifications WHERE key = ?", (key,)).fetchone()
        return self._notification(row) if row else None

    def find(self, message_id: str) -> list[Notification]:
        rows = self._db.execute(
            "SELECT * FROM notifications WHERE message_id = ? OR key = ? ORDER BY received_at", (message_id, message_id)
        ).fetchall()
        return [self._notification(r) for r in rows]

    def deliveries(self, key: str) -> list[Delivery]:
        rows = self._db.execute("SELECT * FROM deliveries WHERE key = ? ORDER BY recipient", (key,)).fetchall()
        return [self._delivery(r) for r in rows]

    def all_deliveries(self) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {}
        for row in self._db.execute("SELECT * FROM deliveries ORDER BY key, recipient").fetchall():
            d = self._delivery(row)
            out.setdefault(d.key, []).append(d)
        return out

    def state_counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall()
        return {state: n for state, n in rows}

    def due_deliveries(self, now: datetime) -> list[Delivery]:
        """Pending deliveries whose deadline or next re-send is at or before ``now`` (indexed, not a scan)."""
        rows = self._db.execute(
            "SELECT * FROM deliveries WHERE state = 'pending' AND next_due_at <= ?", (_sortable(now),)
        ).fetchall()
        return [self._delivery(r) for r in rows]

    def pending(self) -> list[Delivery]:
        rows = self._db.execute("SELECT * FROM deliveries WHERE state = 'pending'").fetchall()
        return [self._delivery(r) for r in rows]

    def timeline(self, key: str) -> list[TimelineEntry]:
        rows = self._db.execute("SELECT at, kind, detail FROM timeline WHERE key = ? ORDER BY seq", (key,)).fetchall()
        return [TimelineEntry(datetime.fromisoformat(a), k, json.loads(d or "{}")) for a, k, d in rows]

    # writing ----------------------------------------------------------------------------------
    def apply(self, events: list[StatusEvent], offsets: dict[tuple[str, int], int], policy: PolicyLookup) -> None:
        """Apply status events and advance the offsets, all or nothing."""
        with self._txn() as db:
            for event in events:
                _Apply(db, policy).event(event)
            db.executemany(
                "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(t, p, o) for (t, p), o in offsets.items()],
            )


class _Apply:
    """How one status event changes the ledger (inside the caller's transaction)."""

    def __init__(self, db: sqlite3.Connection, policy: PolicyLookup) -> None:
        self.db = db
        self.policy = policy

    def _note(self, key: str, at: datetime, kind: str, **detail: Any) -> None:
        self.db.execute(
            "INSERT INTO timeline (key, at, kind, detail) VALUES (?, ?, ?, ?)",
            (key, at.isoformat(), kind, json.dumps(detail, default=str)),
        )

    def _exists(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM notifications WHERE key = ?", (key,)).fetchone() is not None

    def _insert(self, n: Notification) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                n.key, n.message_id, n.message_type, n.sender, n.agreement, n.launch_key, json.dumps(n.recipients),
                n.refers_to, _ts(n.window_start), _ts(n.received_at), n.outcome, json.dumps(n.reasons),
                n.closed_by, n.amended, n.source,
            ),
        )  # fmt: skip

    def _delivery(self, key: str, recipient: str) -> Delivery | None:
        row = self.db.execute("SELECT * FROM deliveries WHERE key = ? AND recipient = ?", (key, recipient)).fetchone()
        return SqliteLedger._delivery(row) if row else None

    def _save(self, d: Delivery, *, insert_only: bool = False) -> None:
        on_conflict = (
            "DO NOTHING"
            if insert_only
            else "DO UPDATE SET state = excluded.state, retransmits = excluded.retransmits, "
            "acked_at = excluded.acked_at, ack_message_id = excluded.ack_message_id, "
            "timed_out_at = excluded.timed_out_at, next_due_at = excluded.next_due_at"
        )
        due_at = None
        if d.state is DeliveryState.PENDING:
            retransmit_at = d.next_retransmit_at
            due_at = min(d.deadline_at, retransmit_at) if retransmit_at else d.deadline_at
        self.db.execute(
            "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608 - fixed text, no input
            f"ON CONFLICT (key, recipient) {on_conflict}",
            (
                d.key, d.recipient, d.state.value, d.forwarded_at.isoformat(), d.deadline_at.isoformat(),
                d.every.total_seconds() if d.every else None, d.max_retransmits, d.retransmits, _ts(d.acked_at),
                d.ack_message_id, _ts(d.timed_out_at), _sortable(due_at) if due_at else None,
            ),
        )  # fmt: skip

    def event(self, e: StatusEvent) -> None:
        handler = {
            EventKind.FORWARDED: self._forwarded,
            EventKind.REJECTED: self._rejected,
            EventKind.DUPLICATE: self._duplicate,
            EventKind.RETRANSMITTED: self._retransmitted,
            EventKind.ACKNOWLEDGEMENT_OVERDUE: self._overdue,
        }[e.kind]
        handler(e)

    def _forwarded(self, e: StatusEvent) -> None:
        n = lc.from_event(e)
        # A notice rejected before and redriven by an operator is forwarded now: it takes the forward's place.
        self.db.execute(
            "UPDATE notifications SET outcome = ?, reasons = ?, received_at = ?, source = ? "
            "WHERE key = ? AND outcome = 'rejected'",
            (n.outcome, json.dumps(n.reasons), _ts(n.received_at), n.source, n.key),
        )
        self._insert(n)
        self._note(n.key, e.at, "forwarded", recipients=list(n.recipients), message_type=n.message_type)
        for new in lc.deliveries_for(e, self.policy(e.agreement)):
            self._save(new, insert_only=True)
        if not e.refers_to or not e.sender:
            return
        if e.message_type == "acknowledgement" and e.recipients:
            ref_key = message_key(e.recipients[0], e.refers_to)
            target = self._delivery(ref_key, e.sender)
            if target is None:
                self._note(ref_key, e.at, "acknowledgement_unmatched", by=e.sender, ack=e.message_id)
                return
            acked = lc.acknowledge(target, e.message_id or "", e.received_at or e.at)
            if acked != target:
                self._save(acked)
                latency = acked.latency.total_seconds() if acked.latency else None
                self._note(ref_key, e.at, acked.state.value, by=e.sender, ack=e.message_id, latency_s=latency)
            return
        ref_key = message_key(e.sender, e.refers_to)
        if e.message_type == "amendment":
            self.db.execute("UPDATE notifications SET amended = amended + 1 WHERE key = ?", (ref_key,))
            self._note(ref_key, e.at, "amended", by=e.message_id)
        elif e.message_type in ("cancellation", "completed_launch"):
            self.db.execute("UPDATE notifications SET closed_by = ? WHERE key = ?", (e.message_type, ref_key))
            self._note(ref_key, e.at, "cancelled" if e.message_type == "cancellation" else "completed", by=e.message_id)
            for row in self.db.execute("SELECT * FROM deliveries WHERE key = ?", (ref_key,)).fetchall():
                d = SqliteLedger._delivery(row)
                if d.state is DeliveryState.PENDING:
                    self._save(lc.stop(d))

    def _rejected(self, e: StatusEvent) -> None:
        n = lc.from_event(e)
        if self._exists(n.key):  # e.g. a conflicting reuse of a forwarded id: keep both rows
            n = Notification(**{**n.__dict__, "key": lc.notification_key(None, None, e)})
        self._insert(n)
        self._note(n.key, e.at, "rejected", reasons=[r.code for r in e.reasons])

    def _duplicate(self, e: StatusEvent) -> None:
        key = lc.notification_key(e.sender, e.message_id, e)
        src = e.source
        self._note(key, e.at, "duplicate", source=f"{src.topic}:{src.partition}:{src.offset}" if src else None)

    def _retransmitted(self, e: StatusEvent) -> None:
        key = lc.notification_key(e.sender, e.message_id, e)
        for r in e.recipients:
            d = self._delivery(key, r)
            if d is not None:
                self._save(lc.retransmitted(d, e.attempt or d.retransmits + 1))
            self._note(key, e.at, "retransmitted", recipient=r, attempt=e.attempt)

    def _overdue(self, e: StatusEvent) -> None:
        key = lc.notification_key(e.sender, e.message_id, e)
        for r in e.recipients:
            d = self._delivery(key, r)
            if d is not None:
                self._save(lc.timed_out(d, e.at))
            self._note(key, e.at, "timed_out", recipient=r)
