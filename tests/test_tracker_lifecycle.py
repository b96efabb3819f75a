"""Pure tracker logic: deliveries, acknowledgements, deadlines and retransmissions, with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from launchrelay.agreements.config import RetransmitPolicy
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.tracker.deadlines import Retransmit, Timeout, due
from launchrelay.tracker.lifecycle import DeliveryState, acknowledge, deliveries_for, stop, timed_out

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
POLICY = RetransmitPolicy(every=timedelta(minutes=15), max_attempts=3)


def _forwarded(recipients: list[str], deadline_s: float = 3600.0) -> StatusEvent:
    return StatusEvent(
        event_id="e1",
        kind=EventKind.FORWARDED,
        at=T0,
        message_id="cn-1",
        message_type="planned_launch",
        agreement="CN-RU-2009",
        sender="CN",
        recipients=recipients,
        launch_key="L1",
        ack_deadline_s=deadline_s,
    )


def test_one_pending_delivery_per_recipient_with_the_agreement_deadline() -> None:
    """A forwarded notice to four recipients expects four acknowledgements, each due at forward + deadline."""
    ds = deliveries_for(_forwarded(["AT", "GB", "JP", "US"]), POLICY)
    assert [d.recipient for d in ds] == ["AT", "GB", "JP", "US"]
    assert all(d.state is DeliveryState.PENDING and d.deadline_at == T0 + timedelta(hours=1) for d in ds)


def test_retransmissions_every_15_minutes_then_timeout() -> None:
    """Policy: re-send every 15 min at most 3 times; the timeout comes at the deadline (60 min)."""
    (d,) = deliveries_for(_forwarded(["RU"]), POLICY)
    assert due([d], T0 + timedelta(minutes=14)) == []
    assert due([d], T0 + timedelta(minutes=15)) == [Retransmit(d, 1)]
    d3 = d.__class__(**{**d.__dict__, "retransmits": 3})
    assert d3.next_retransmit_at is None
    assert due([d3], T0 + timedelta(minutes=59)) == []
    assert due([d3], T0 + timedelta(minutes=60)) == [Timeout(d3)]


def test_acknowledgement_in_time_and_late() -> None:
    """An acknowledgement before the deadline counts as on time; after a timeout it is recorded late, not lost."""
    (d,) = deliveries_for(_forwarded(["RU"]), None)
    on_time = acknowledge(d, "ack-1", T0 + timedelta(minutes=5))
    assert on_time.state is DeliveryState.ACKNOWLEDGED and on_time.latency == timedelta(minutes=5)
    late = acknowledge(timed_out(d, T0 + timedelta(hours=1)), "ack-2", T0 + timedelta(hours=2))
    assert late.state is DeliveryState.ACKNOWLEDGED_LATE and late.latency == timedelta(hours=2)
    assert acknowledge(on_time, "ack-3", T0 + timedelta(hours=3)) == on_time  # a second ack changes nothing


def test_cancelled_notification_stops_its_deadline() -> None:
    """A cancellation stops pending deadlines: nothing falls due afterwards."""
    (d,) = deliveries_for(_forwarded(["RU"]), POLICY)
    assert due([stop(d)], T0 + timedelta(days=1)) == []


def test_acknowledgements_expect_no_acknowledgement() -> None:
    """Only messages forwarded with a deadline create deliveries (acknowledgements carry none)."""
    event = _forwarded(["CN"]).model_copy(update={"ack_deadline_s": None, "message_type": "acknowledgement"})
    assert deliveries_for(event, POLICY) == []
