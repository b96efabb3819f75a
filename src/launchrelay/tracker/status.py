"""The operator's view of the ledger: a table of notifications, or one notification's timeline."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from launchrelay.tracker.ledger import Ledger
from launchrelay.tracker.lifecycle import Delivery, DeliveryKind, DeliveryState, Notification, overall_state


@dataclass(frozen=True)
class Filters:
    pending: bool = False
    overdue: bool = False
    party: str | None = None
    agreement: str | None = None


def _span(delta: timedelta) -> str:
    s = abs(delta.total_seconds())
    if s < 120:
        return f"{s:.1f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def delivery_note(d: Delivery, now: datetime, sender: str | None = None) -> str:
    if d.kind is DeliveryKind.REPORT:
        return {
            DeliveryState.PENDING: f"{d.recipient}'s report due in {_span(d.deadline_at - now)}",
            DeliveryState.TIMED_OUT: f"{d.recipient}'s report overdue by {_span(now - d.deadline_at)}",
        }.get(d.state, f"{d.recipient}'s report: {d.state.value}")
    if d.state in (DeliveryState.ACKNOWLEDGED, DeliveryState.ACKNOWLEDGED_LATE) and d.latency is not None:
        return f"{d.recipient}: acked in {_span(d.latency)}" + (
            " (late)" if d.state is DeliveryState.ACKNOWLEDGED_LATE else ""
        )
    if d.state is DeliveryState.PENDING:
        if d.deadline_at < now:  # the tracker raises the alert at its next tick
            return f"{d.recipient}: due {_span(now - d.deadline_at)} ago"
        return f"{d.recipient}: {_span(d.deadline_at - now)} left"
    if d.state is DeliveryState.TIMED_OUT:
        # who was told, and when: the tracker's overdue receipt went to the sender as the deadline passed
        alerted = f"; {sender or 'the sender'} alerted {d.timed_out_at:%H:%M} UTC" if d.timed_out_at else ""
        return f"{d.recipient}: overdue by {_span(now - d.deadline_at)}{alerted}"
    return f"{d.recipient}: stopped"


#: notifications read per query while a view is filled
CHUNK = 500


@dataclass(frozen=True)
class Page:
    """Rows of a view, and whether more matched than it holds (``limit`` reached)."""

    rows: list[dict[str, Any]]
    more: bool


def _matches(n: Notification, state: str, filters: Filters) -> bool:
    if n.message_type == "acknowledgement":
        return False  # acknowledgements show up in the timeline of what they acknowledge
    if filters.pending and state != "pending":
        return False
    if filters.overdue and state != "overdue":
        return False
    if filters.party and filters.party not in (n.sender, *n.recipients):
        return False
    return not (filters.agreement and filters.agreement != n.agreement)


def _fill(
    chunks: Iterator[list[Notification]], ledger: Ledger, filters: Filters, now: datetime, limit: int | None,
    where: Callable[[dict[str, Any]], bool] | None,
) -> Page:  # fmt: skip
    out: list[dict[str, Any]] = []
    for chunk in chunks:
        deliveries = ledger.deliveries_of([n.key for n in chunk])
        for n in chunk:
            ds = deliveries.get(n.key, [])
            state = overall_state(n, ds, now)
            if not _matches(n, state, filters):
                continue
            row = _row(n, ds, state, now)
            if where is not None and not where(row):
                continue
            if limit is not None and len(out) == limit:
                return Page(out, more=True)
            out.append(row)
    return Page(out, more=False)


def recent(
    ledger: Ledger, filters: Filters, now: datetime, limit: int | None = None,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> Page:  # fmt: skip
    """The notifications matching ``filters`` (and ``where``), the latest changed first, at most ``limit``.

    Read a chunk at a time: memory holds a chunk and the page, never the ledger."""

    def chunks() -> Iterator[list[Notification]]:
        cursor: int | None = None
        while True:
            found, cursor = ledger.recent(CHUNK, cursor)
            if found:
                yield found
            if cursor is None:
                return

    return _fill(chunks(), ledger, filters, now, limit, where)


def open_rows(
    ledger: Ledger, filters: Filters, now: datetime, limit: int | None = None,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> Page:  # fmt: skip
    """The notifications still waiting on someone: overdue first, then by the nearest deadline (from the ledger's
    due index, so the first page of a million pending costs what the first page of ten does)."""

    def chunks() -> Iterator[list[Notification]]:
        for keys in ledger.open_keys(CHUNK):
            found = ledger.notifications_of(keys)
            yield [found[k] for k in keys if k in found]

    return _fill(chunks(), ledger, filters, now, limit, where)


def rows(ledger: Ledger, filters: Filters, now: datetime) -> list[dict[str, Any]]:
    """Every notification matching ``filters``, oldest change first (small ledgers: tests, the demo)."""
    return list(reversed(recent(ledger, filters, now).rows))


def _row(n: Notification, ds: list[Delivery], state: str, now: datetime) -> dict[str, Any]:
    return {
        "id": n.message_id or n.key,
        #: sender and id (SENDER/ID): what names one story, where two parties may use the same message id
        "key": n.key,
        "type": n.message_type,
        "agreement": n.agreement,
        "sender": n.sender,
        "recipients": list(n.recipients),
        "launch_key": n.launch_key,
        "window_start": n.window_start.isoformat() if n.window_start else None,
        "window_end": n.window_end.isoformat() if n.window_end else None,
        "expires_at": n.expires_at.isoformat() if n.expires_at else None,
        "received_at": n.received_at.isoformat() if n.received_at else None,
        "state": state,
        "reasons": [code for code, _ in n.reasons],
        "deliveries": [
            {
                "recipient": d.recipient,
                "state": d.state.value,
                "deadline_at": d.deadline_at.isoformat(),
                "latency_s": d.latency.total_seconds() if d.latency else None,
                "retransmits": d.retransmits,
                "kind": d.kind.value,
                "note": delivery_note(d, now, n.sender),
            }
            for d in ds
        ],
    }


def render_table(table: list[dict[str, Any]]) -> str:
    headers = ["ID", "TYPE", "AGREEMENT", "FROM -> TO", "WINDOW START", "STATE", "ACK / TIME LEFT"]
    lines = []
    for r in table:
        route = f"{r['sender'] or '?'} -> {','.join(r['recipients']) or '-'}"
        ack = "; ".join(d["note"] for d in r["deliveries"]) or ", ".join(r["reasons"]) or "-"
        window = (r["window_start"] or "-")[:16].replace("T", " ")
        lines.append([r["id"], r["type"] or "-", r["agreement"] or "-", route, window, r["state"], ack])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *lines, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(x.rstrip() for x in [fmt.format(*headers), *(fmt.format(*map(str, line)) for line in lines)])


def timeline(ledger: Ledger, ident: str, now: datetime) -> dict[str, Any] | None:
    found = ledger.find(ident)
    if not found:
        return None
    n = found[0]
    ds = ledger.deliveries(n.key)
    out = _row(n, ds, overall_state(n, ds, now), now)
    out["reason_details"] = [{"code": c, "message": m} for c, m in n.reasons]
    out["notice"] = n.notice  # as it stands, every amendment applied
    out["timeline"] = [{"at": e.at.isoformat(), "event": e.kind, **e.detail} for e in ledger.timeline(n.key)]
    out["other_records"] = [x.key for x in found[1:]]
    out["source"] = n.source  # topic:partition:offset of the original record
    return out


def render_timeline(view: dict[str, Any]) -> str:
    lines = [
        f"{view['id']}  ({view['type']}, {view['agreement']})",
        f"  {view['sender']} -> {', '.join(view['recipients']) or '-'}   launch {view['launch_key']}",
        f"  state: {view['state']}   window start: {view['window_start'] or '-'}",
    ]
    for r in view["reason_details"]:
        lines.append(f"  reason {r['code']}: {r['message']}")
    if view.get("notice"):
        lines.append(f"  notice as it stands: {json.dumps(view['notice'], sort_keys=True)}")
    for d in view["deliveries"]:
        more = f" (retransmits: {d['retransmits']})" if d.get("kind") == "ack" else ""
        lines.append(f"  {'delivery' if d.get('kind') == 'ack' else 'owed'} {d['note']}{more}")
    lines.append("  timeline:")
    for e in view["timeline"]:
        detail = {k: v for k, v in e.items() if k not in ("at", "event") and v is not None}
        lines.append(f"    {e['at'][:23]}  {e['event']:<24} {json.dumps(detail) if detail else ''}")
    return "\n".join(lines)
