"""The operator's view of the ledger: a table of notifications, or one notification's timeline."""

from __future__ import annotations

import json
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


def delivery_note(d: Delivery, now: datetime) -> str:
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
        return f"{d.recipient}: overdue by {_span(now - d.deadline_at)}"
    return f"{d.recipient}: stopped"


def rows(ledger: Ledger, filters: Filters, now: datetime) -> list[dict[str, Any]]:
    deliveries = ledger.all_deliveries()
    out = []
    for n in ledger.notifications():
        if n.message_type == "acknowledgement":
            continue  # acknowledgements show up in the timeline of what they acknowledge
        ds = deliveries.get(n.key, [])
        state = overall_state(n, ds, now)
        if filters.pending and state != "pending":
            continue
        if filters.overdue and state != "overdue":
            continue
        if filters.party and filters.party not in (n.sender, *n.recipients):
            continue
        if filters.agreement and filters.agreement != n.agreement:
            continue
        out.append(_row(n, ds, state, now))
    return out


def _row(n: Notification, ds: list[Delivery], state: str, now: datetime) -> dict[str, Any]:
    return {
        "id": n.message_id or n.key,
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
                "note": delivery_note(d, now),
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
