"""The relay's Prometheus metrics (its own registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from launchrelay.runtime.health import standard_metrics

if TYPE_CHECKING:
    from launchrelay.agreements.config import Deployment


class RelayMetrics:
    """What the relay counts: records in, forwards, rejections by reason, duplicates, commits, lag."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.ready, self.broker_contact = standard_metrics(r)
        self.messages_in = Counter(
            "launchrelay_messages_in", "Records read from party out topics", ["sender"], registry=r
        )
        self.forwarded = Counter(
            "launchrelay_forwarded",
            "Messages forwarded, per recipient",
            ["agreement", "sender", "recipient"],
            registry=r,
        )
        self.rejected = Counter(
            "launchrelay_rejected", "Rejections, per reason code", ["agreement", "sender", "reason"], registry=r
        )
        self.duplicates = Counter("launchrelay_duplicates", "Exact repeats not forwarded again", ["sender"], registry=r)
        self.commit_seconds = Histogram(
            "launchrelay_transaction_commit_seconds", "Time to write and commit one partition's batch", registry=r
        )
        self.consumer_lag = Gauge(
            "launchrelay_consumer_lag", "Records behind the end of each out-topic partition", ["topic", "partition"],
            registry=r,
        )  # fmt: skip
        self.oldest_pending = Gauge(
            "launchrelay_oldest_pending_seconds",
            "Age of the oldest record of each out-topic partition not yet decided (0 when none waits)",
            ["topic", "partition"],
            registry=r,
        )
        self.fetch_errors = Counter(
            "launchrelay_fetch_errors", "Failed reads from the broker, by error", ["error"], registry=r
        )

    def prime(self, deployment: Deployment) -> None:
        """Create every series the configured agreements can produce (but rejections, whose reasons are many),
        at zero: a rate or increase() then sees the first event after a start."""
        for a in deployment.agreements.values():
            for sender in a.parties:
                self.messages_in.labels(sender)
                self.duplicates.labels(sender)
                for recipient in a.parties:
                    if recipient != sender:
                        self.forwarded.labels(a.id, sender, recipient)

    # what the partition watcher learns (runtime.watcher.Gauges)
    def on_partition(self, topic: str, partition: int, lag: int, oldest_pending_s: float) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(lag)
        self.oldest_pending.labels(topic, str(partition)).set(oldest_pending_s)

    def on_contact(self, at: float) -> None:
        self.broker_contact.set(at)

    def on_fetch_error(self, error: str) -> None:
        self.fetch_errors.labels(error).inc()
