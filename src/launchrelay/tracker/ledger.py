"""The durable ledger: notifications, deliveries, a timeline, and the status-topic offsets. SQL only.

Every batch of status events is applied in one SQLite transaction together with
the offsets it advances to, so a crash never applies an event twice or skips
one. What an event changes is decided by :func:`launchrelay.tracker.lifecycle.apply`
(pure); this module reads the rows it asks for and writes the rows it returns.
:class:`Ledger` is the interface the tracker and ``launchrelay status`` use;
:class:`SqliteLedger` is the default store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog

from launchrelay.contract.events import StatusEvent
from launchrelay.contract.outcomes import Outcome
from launchrelay.errors import FormatTooNew, LedgerCorrupt
from launchrelay.tracker import lifecycle
from launchrelay.tracker.lifecycle import Delivery, DeliveryKind, DeliveryState, Notification

log = structlog.get_logger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    key TEXT PRIMARY KEY, message_id TEXT, message_type TEXT, sender TEXT, agreement TEXT, launch_key TEXT,
    recipients TEXT NOT NULL, refers_to TEXT, window_start TEXT, received_at TEXT, outcome TEXT NOT NULL,
    reasons TEXT NOT NULL, closed_by TEXT, amended INTEGER NOT NULL DEFAULT 0, source TEXT,
    window_end TEXT, expires_at TEXT, notice TEXT, report_outcome TEXT, refused_there TEXT
);
CREATE INDEX IF NOT EXISTS notifications_by_id ON notifications (message_id);
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, forwarded_at TEXT NOT NULL,
    deadline_at TEXT NOT NULL, every_s REAL, max_retransmits INTEGER NOT NULL, retransmits INTEGER NOT NULL,
    acked_at TEXT, ack_message_id TEXT, timed_out_at TEXT, next_due_at TEXT, kind TEXT NOT NULL DEFAULT 'ack',
    PRIMARY KEY (key, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_due_at);
CREATE TABLE IF NOT EXISTS timeline (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS timeline_by_key ON timeline (key, seq);
CREATE TABLE IF NOT EXISTS offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition));
-- every redrive an operator made from the console: who, when, which dead letter, where it went
CREATE TABLE IF NOT EXISTS redrives (at TEXT NOT NULL, user TEXT NOT NULL, dead_letter TEXT NOT NULL,
    target TEXT NOT NULL);
"""
#: How many deliveries are in each state, kept by triggers in the same transaction as the rows they count: the
#: gauges read these few rows, never the deliveries (a scan grows with the ledger; at a million pending it
#: would take a tenth of a second on every pass). INSERT OR REPLACE fires the delete trigger too, since
#: the connection turns recursive_triggers on.
COUNTS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS delivery_counts (kind TEXT NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (kind, state))""",
    """CREATE TRIGGER IF NOT EXISTS deliveries_counted_in AFTER INSERT ON deliveries BEGIN
    INSERT INTO delivery_counts VALUES (NEW.kind, NEW.state, 1) ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
    END""",
    """CREATE TRIGGER IF NOT EXISTS deliveries_counted_out AFTER DELETE ON deliveries BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    END""",
    """CREATE TRIGGER IF NOT EXISTS deliveries_counted_moved AFTER UPDATE OF kind, state ON deliveries BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    INSERT INTO delivery_counts VALUES (NEW.kind, NEW.state, 1) ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
    END""",
)
#: Columns added since the first ledgers were written: a ledger of an earlier version gets them on opening
#: (SQLite appends them, in this order, as in the CREATE statements above).
ADDED_COLUMNS = {
    "notifications": ["window_end TEXT", "expires_at TEXT", "notice TEXT", "report_outcome TEXT", "refused_there TEXT"],
    "deliveries": ["kind TEXT NOT NULL DEFAULT 'ack'"],
}


#: The ledger's format, kept in SQLite's ``user_version``: 0 is every ledger written before formats were numbered
#: (release 0.1.0), brought up to date in place on opening (the columns above); each later format says here
#: what it changed. A ledger of a format above this one was written by a later release and is refused
#: (:class:`~launchrelay.errors.FormatTooNew`), never misread and never moved aside.
#: 1 (0.2.0): numbered; notifications.refused_there.
LEDGER_FORMAT = 1


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


class Ledger(Protocol):
    """What the tracker and `launchrelay status` need of a ledger (SQLite here; a server database could follow)."""

    def apply(self, events: list[StatusEvent], offsets: dict[tuple[str, int], int]) -> None: ...
    def offsets(self) -> dict[tuple[str, int], int]: ...
    def state_counts(self) -> dict[str, int]: ...
    def rejected_since(self, *times: datetime) -> list[int]: ...
    def pending_count(self) -> int: ...
    def due_deliveries(self, now: datetime) -> list[Delivery]: ...
    def pending(self) -> list[Delivery]: ...
    def notifications(self) -> list[Notification]: ...
    def notification(self, key: str) -> Notification | None: ...
    def find(self, message_id: str) -> list[Notification]: ...
    def deliveries(self, key: str) -> list[Delivery]: ...
    def timeline(self, key: str) -> list[TimelineEntry]: ...
    def recent(self, limit: int, before: int | None = None) -> tuple[list[Notification], int | None]: ...
    def open_keys(self, chunk: int = 500) -> Iterator[list[str]]: ...
    def notifications_of(self, keys: list[str]) -> dict[str, Notification]: ...
    def deliveries_of(self, keys: list[str]) -> dict[str, list[Delivery]]: ...
    def has_notifications(self) -> bool: ...

    @property
    def location(self) -> str: ...


class LedgerChanges:
    """Whether another connection committed to the ledger since the last look (SQLite's ``data_version``), read
    through a read-only connection of its own, opened once the ledger exists: the console's live stream asks it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._seen: int | None = None

    def changed(self) -> bool | None:
        """None: no ledger yet; else whether it changed since the last call (the first call says no)."""
        if self._db is None:
            if not self._path.exists():
                return None
            self._db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
        changed = self._seen is not None and version != self._seen
        self._seen = version
        return changed

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class SqliteLedger:
    """The ledger in one SQLite file (WAL mode, synchronous=FULL: a committed batch survives a crash)."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the ledger at ``path``; :class:`LedgerCorrupt` when it is not a sound database."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # one user at a time, but not always the thread that opened it (the console's server may hop)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._open()
        except sqlite3.DatabaseError as exc:
            with suppress(Exception):
                self._db.close()
            raise LedgerCorrupt(path, str(exc)) from exc
        except FormatTooNew:
            self._db.close()
            raise

    @classmethod
    def recovered(cls, path: Path) -> SqliteLedger:
        """The ledger at ``path``; a corrupt one is moved aside (with its WAL) and a new one started, which the
        tracker fills again from the status topic: the ledger is a view of that topic, not its only record."""
        try:
            return cls(path)
        except LedgerCorrupt as exc:
            cause = exc.cause
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        log.error("tracker.ledger_corrupt", ledger=str(path), cause=cause, moved_to=str(aside),
                  action="rebuilding from the status topic")  # fmt: skip
        return cls(path)

    def _open(self) -> None:
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        if found > LEDGER_FORMAT:
            raise FormatTooNew(f"the ledger {self.path}", found, LEDGER_FORMAT)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA recursive_triggers=ON")
        self._db.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column.split()[0] not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        with self._txn() as db:
            counted = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'delivery_counts'").fetchone()
            for statement in COUNTS_SCHEMA:
                db.execute(statement)
            if not counted:  # a ledger from before the counts: count once, in the transaction that adds them
                db.execute("INSERT INTO delivery_counts SELECT kind, state, count(*) FROM deliveries GROUP BY 1, 2")
            if found < LEDGER_FORMAT:
                db.execute(f"PRAGMA user_version = {LEDGER_FORMAT}")
        # damage past the schema pages shows only when read: look at every page once, at open
        found = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if found != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {found}")

    @property
    def location(self) -> str:
        return str(self.path)

    @classmethod
    def open_existing(cls, path: Path) -> SqliteLedger | None:
        return cls(path) if path.exists() else None

    def record_redrive(self, at: datetime, user: str, dead_letter: str, target: str) -> None:
        """Keep an operator's redrive (the audit the console shows and the log repeats)."""
        with self._txn() as db:
            db.execute("INSERT INTO redrives VALUES (?, ?, ?, ?)", (at.isoformat(), user, dead_letter, target))

    def redrives(self) -> list[dict[str, str]]:
        rows = self._db.execute("SELECT at, user, dead_letter, target FROM redrives ORDER BY rowid DESC").fetchall()
        return [{"at": a, "user": u, "dead_letter": d, "target": t} for a, u, d, t in rows]

    def version(self) -> tuple[int, int]:
        """Changes when anything commits to the ledger: another connection (SQLite's ``data_version``) or this one
        (its count of changed rows)."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0]), self._db.total_changes

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            outcome=Outcome(row[10]),
            reasons=tuple(tuple(r) for r in json.loads(row[11])),
            closed_by=row[12],
            amended=row[13],
            source=row[14],
            window_end=_dt(row[15]),
            expires_at=_dt(row[16]),
            notice=json.loads(row[17]) if row[17] else None,
            report_outcome=row[18],
            refused_there=row[19],
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
            kind=DeliveryKind(row[12]),
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

    # paged: what an operator's view reads, in pieces, however large the ledger ----------------------
    def recent(self, limit: int, before: int | None = None) -> tuple[list[Notification], int | None]:
        """Up to ``limit`` notifications, the latest written first, and the cursor of the next page (None at the end).

        Every change rewrites a notification's row, so the row order is the order of the last change: the
        notifications something last happened to come first. Paged by row id, so a page costs the same at any
        ledger size; one changed while an operator pages moves to the top, where the next refresh shows it."""
        rows = self._db.execute(
            "SELECT rowid, * FROM notifications WHERE rowid < ? ORDER BY rowid DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit),
        ).fetchall()
        cursor = rows[-1][0] if len(rows) == limit else None
        return [self._notification(r[1:]) for r in rows], cursor

    def open_keys(self, chunk: int = 500) -> Iterator[list[str]]:
        """Keys of the notifications still waiting on someone, in the order an operator takes them: those with an
        acknowledgement overdue first, then those pending by their nearest deadline or re-send (the due index);
        ``chunk`` at a time, each key once."""
        given: set[str] = set()
        last_rowid = -1
        while rows := self._db.execute(
            "SELECT rowid, key FROM deliveries WHERE state = 'timed_out' AND kind = 'ack' AND rowid > ? "
            "ORDER BY rowid LIMIT ?",
            (last_rowid, chunk),
        ).fetchall():
            last_rowid = rows[-1][0]
            yield self._fresh([k for _, k in rows], given)
        due, rowid = "", -1
        while rows := self._db.execute(
            "SELECT next_due_at, rowid, key FROM deliveries WHERE state = 'pending' AND (next_due_at, rowid) > (?, ?) "
            "ORDER BY next_due_at, rowid LIMIT ?",
            (due, rowid, chunk),
        ).fetchall():
            due, rowid = rows[-1][0], rows[-1][1]
            yield self._fresh([k for _, _, k in rows], given)

    @staticmethod
    def _fresh(keys: list[str], given: set[str]) -> list[str]:
        out = [k for k in dict.fromkeys(keys) if k not in given]
        given.update(out)
        return out

    def _rows_for(self, query: str, keys: list[str]) -> Iterator[tuple[Any, ...]]:
        """Rows of ``query`` (its ``{keys}`` replaced by placeholders) for ``keys``, 500 at a time: within SQLite's
        limit on bound parameters."""
        for lo in range(0, len(keys), 500):
            part = keys[lo : lo + 500]
            yield from self._db.execute(query.format(keys=",".join("?" * len(part))), part)

    def notifications_of(self, keys: list[str]) -> dict[str, Notification]:
        rows = self._rows_for("SELECT * FROM notifications WHERE key IN ({keys})", keys)
        return {row[0]: self._notification(row) for row in rows}

    def deliveries_of(self, keys: list[str]) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {}
        for row in self._rows_for("SELECT * FROM deliveries WHERE key IN ({keys}) ORDER BY key, recipient", keys):
            d = self._delivery(row)
            out.setdefault(d.key, []).append(d)
        return out

    def has_notifications(self) -> bool:
        return self._db.execute("SELECT 1 FROM notifications LIMIT 1").fetchone() is not None

    def rejected_since(self, *times: datetime) -> list[int]:
        """How many messages were rejected (refused by the relay, a dead letter each) since each of ``times``: one
        pass over the rejections, however many times are asked about."""
        if not times:
            return []
        since = ", ".join("coalesce(sum(received_at >= ?), 0)" for _ in times)
        row = self._db.execute(
            f"SELECT {since} FROM notifications WHERE outcome = ?",  # noqa: S608 - placeholders only
            (*(t.isoformat() for t in times), Outcome.REJECTED.value),
        ).fetchone()
        return [int(n) for n in row]

    def state_counts(self) -> dict[str, int]:
        """Acknowledgements owed per state (pending, acknowledged, ...), from the counts the triggers keep."""
        rows = self._db.execute("SELECT state, n FROM delivery_counts WHERE kind = 'ack' AND n > 0").fetchall()
        return {state: n for state, n in rows}

    def pending_count(self) -> int:
        """Deliveries of any kind (acknowledgements, reports) still awaited."""
        row = self._db.execute("SELECT coalesce(sum(n), 0) FROM delivery_counts WHERE state = 'pending'").fetchone()
        return int(row[0])

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
    def apply(self, events: list[StatusEvent], offsets: dict[tuple[str, int], int]) -> None:
        """Apply status events and advance the offsets, all or nothing."""
        with self._txn() as db:
            view = _TxnView(db)
            for event in events:
                _write(db, lifecycle.apply(event, view))
            db.executemany(
                "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
                "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(t, p, o) for (t, p), o in offsets.items()],
            )


class _TxnView:
    """The ledger as the transaction in hand sees it (what earlier events of the batch wrote included)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def notification(self, key: str) -> Notification | None:
        row = self.db.execute("SELECT * FROM notifications WHERE key = ?", (key,)).fetchone()
        return SqliteLedger._notification(row) if row else None

    def deliveries(self, key: str) -> list[Delivery]:
        rows = self.db.execute("SELECT * FROM deliveries WHERE key = ? ORDER BY recipient", (key,)).fetchall()
        return [SqliteLedger._delivery(r) for r in rows]


def _write(db: sqlite3.Connection, changes: lifecycle.Changes) -> None:
    """Write the rows as they are (insert or replace) and add the timeline entries."""
    for n in changes.notifications:
        db.execute(
            "INSERT OR REPLACE INTO notifications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                n.key, n.message_id, n.message_type, n.sender, n.agreement, n.launch_key, json.dumps(n.recipients),
                n.refers_to, _ts(n.window_start), _ts(n.received_at), n.outcome, json.dumps(n.reasons),
                n.closed_by, n.amended, n.source, _ts(n.window_end), _ts(n.expires_at),
                json.dumps(n.notice) if n.notice is not None else None, n.report_outcome, n.refused_there,
            ),
        )  # fmt: skip
    for d in changes.deliveries:
        due_at = None
        if d.state is DeliveryState.PENDING:
            retransmit_at = d.next_retransmit_at
            due_at = min(d.deadline_at, retransmit_at) if retransmit_at else d.deadline_at
        db.execute(
            "INSERT OR REPLACE INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                d.key, d.recipient, d.state.value, d.forwarded_at.isoformat(), d.deadline_at.isoformat(),
                d.every.total_seconds() if d.every else None, d.max_retransmits, d.retransmits, _ts(d.acked_at),
                d.ack_message_id, _ts(d.timed_out_at), _sortable(due_at) if due_at else None, d.kind.value,
            ),
        )  # fmt: skip
    db.executemany(
        "INSERT INTO timeline (key, at, kind, detail) VALUES (?, ?, ?, ?)",
        [(e.key, e.at.isoformat(), e.kind, json.dumps(e.detail, default=str)) for e in changes.notes],
    )
