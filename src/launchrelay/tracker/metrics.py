"""The tracker's Prometheus metrics (its own registry); also the tracker's hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.runtime.health import WatchedMetrics
from launchrelay.tracker.lifecycle import Delivery, DeliveryKind, Notification

if TYPE_CHECKING:
    from launchrelay.agreements.config import Deployment

LATENCY_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600)


class TrackerMetrics(WatchedMetrics):
    """What the tracker counts; also the tracker's hooks (see ``TrackerHooks``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(
            registry,
            lag_help="Status events not yet applied, per partition",
            oldest_help="Age of the oldest status event not yet applied, per partition (0 when none waits)",
        )
        r = self.registry
        self.events = Counter("launchrelay_status_events", "Status events applied to the ledger", ["kind"], registry=r)
        self.ack_latency = Histogram(
            "launchrelay_ack_latency_seconds", "Forward to acknowledgement", ["agreement"], buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.late_acks = Counter(
            "launchrelay_late_acks", "Acknowledgements after the deadline", ["agreement"], registry=r
        )
        self.pending = Gauge("launchrelay_pending_deliveries", "Deliveries awaiting acknowledgement", registry=r)
        self.overdue = Gauge("launchrelay_overdue_deliveries", "Deliveries timed out and not acknowledged", registry=r)
        self.retransmissions = Counter(
            "launchrelay_retransmissions", "Re-sends to recipients", ["agreement", "recipient"], registry=r
        )
        self.timeouts = Counter("launchrelay_timeouts", "Acknowledgement deadlines missed", ["agreement", "recipient"],
                                registry=r)  # fmt: skip
        self.reports_overdue = Counter(
            "launchrelay_reports_overdue", "Post-launch reports not received by their due time", ["agreement"],
            registry=r,
        )  # fmt: skip
        self.set_aside = Counter(
            "launchrelay_status_events_set_aside", "Status events the ledger failed to apply on every try", registry=r
        )

    def prime(self, deployment: Deployment) -> None:
        """Create every series the configured agreements and recipients can produce, at zero: an alert on
        increase() then fires on the first timeout after a start, not the second."""
        for kind in EventKind:
            self.events.labels(kind.value)
        for a in deployment.agreements.values():
            self.ack_latency.labels(a.id)
            self.late_acks.labels(a.id)
            self.reports_overdue.labels(a.id)
            for recipient in a.parties:
                self.timeouts.labels(a.id, recipient)
                self.retransmissions.labels(a.id, recipient)

    # TrackerHooks
    def on_event(self, event: StatusEvent) -> None:
        self.events.labels(event.kind.value).inc()

    def on_ack(self, agreement: str | None, delivery: Delivery) -> None:
        if delivery.latency is not None:
            self.ack_latency.labels(agreement or "-").observe(delivery.latency.total_seconds())
        if delivery.state.value == "acknowledged_late":
            self.late_acks.labels(agreement or "-").inc()

    def on_timeout(self, notification: Notification, delivery: Delivery) -> None:
        if delivery.kind is DeliveryKind.REPORT:
            self.reports_overdue.labels(notification.agreement or "-").inc()
        else:
            self.timeouts.labels(notification.agreement or "-", delivery.recipient).inc()

    def on_retransmit(self, notification: Notification, delivery: Delivery, attempt: int) -> None:
        self.retransmissions.labels(notification.agreement or "-", delivery.recipient).inc()

    def on_set_aside(self) -> None:
        self.set_aside.inc()

    def set_backlog(self, pending: int, overdue: int) -> None:
        self.pending.set(pending)
        self.overdue.set(overdue)
