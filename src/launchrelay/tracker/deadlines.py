"""Which deadlines are due: pure, over deliveries and a time the caller supplies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from launchrelay.tracker.lifecycle import Delivery, DeliveryKind, DeliveryState


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Retransmit:
    delivery: Delivery
    attempt: int


@dataclass(frozen=True)
class Timeout:
    delivery: Delivery


Action = Retransmit | Timeout


def in_flight_id(key: str, recipient: str, retransmission: int | None, report: bool = False) -> str:
    """Names one deadline action (a retransmission attempt, a timeout when None, a report overdue): the same
    every time, so the ids of what it writes are too."""
    kind = "report" if report else "overdue" if retransmission is None else f"retx{retransmission}"
    return f"{key}|{recipient}|{kind}"


def action_id(action: Action) -> str:
    d = action.delivery
    attempt = action.attempt if isinstance(action, Retransmit) else None
    return in_flight_id(d.key, d.recipient, attempt, report=d.kind is DeliveryKind.REPORT)


def due(deliveries: list[Delivery], now: datetime) -> list[Action]:
    """Timeouts whose deadline has passed, and re-sends whose time has come (at most one per delivery)."""
    actions: list[Action] = []
    for d in deliveries:
        if d.state is not DeliveryState.PENDING:
            continue
        if d.deadline_at <= now:
            actions.append(Timeout(d))
            continue
        at = d.next_retransmit_at
        if at is not None and at <= now:
            actions.append(Retransmit(d, d.retransmits + 1))
    return actions
