"""The relay's Prometheus metrics (its own registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from launchrelay.runtime.health import WatchedMetrics

if TYPE_CHECKING:
    from launchrelay.agreements.config import Deployment


class RelayMetrics(WatchedMetrics):
    """What the relay counts: records in, forwards, rejections by reason, duplicates, commits, lag."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(
            registry,
            lag_help="Records behind the end of each out-topic partition",
            oldest_help="Age of the oldest record of each out-topic partition not yet decided (0 when none waits)",
        )
        r = self.registry
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
        # two-centre mode: the links to counterpart centres
        self.link_last_heard = Gauge(
            "launchrelay_link_last_heard_timestamp_seconds",
            "When a record last arrived over the link from a linked centre (its broker time here; beacons every 5 s)",
            ["link"], registry=r,
        )  # fmt: skip
        self.link_delay = Gauge(
            "launchrelay_link_delay_seconds",
            "How long the linked centre's latest beacon took to arrive here (its relay's clock to this broker's)",
            ["link"], registry=r,
        )  # fmt: skip
        self.link_silent = Gauge(
            "launchrelay_link_silent", "1 while a link has been silent past [links.XX] silent_after", ["link"],
            registry=r,
        )  # fmt: skip
        self.link_disagreements = Counter(
            "launchrelay_link_disagreements",
            "Messages this centre accepted and a linked centre refused (its receipt said rejected)",
            ["link"], registry=r,
        )  # fmt: skip
        self.link_repeats = Counter(
            "launchrelay_link_repeats", "Records the mirror copied again, absorbed without effect", ["link"],
            registry=r,
        )  # fmt: skip
        # the decision log ([relay] decision_log): heads over each input partition's log
        self.log_head_time = Gauge(
            "launchrelay_log_head_timestamp_seconds", "When the relay last signed a tree head of this log", ["log"],
            registry=r,
        )  # fmt: skip
        self.log_unheaded = Gauge(
            "launchrelay_log_unheaded_leaves", "Leaves of this log not yet covered by a signed tree head", ["log"],
            registry=r,
        )  # fmt: skip
        self.commit_seconds = Histogram(
            "launchrelay_transaction_commit_seconds", "Time to write and commit one partition's batch", registry=r
        )

    def prime(self, deployment: Deployment) -> None:
        """Create every series the configured agreements can produce (but rejections, whose reasons are many),
        at zero: a rate or increase() then sees the first event after a start."""
        for code in deployment.links:
            for series in (self.link_disagreements, self.link_repeats, self.link_silent):
                series.labels(code)
        for a in deployment.agreements.values():
            for sender in a.parties:
                self.messages_in.labels(sender)
                self.duplicates.labels(sender)
                for recipient in a.parties:
                    if recipient != sender:
                        self.forwarded.labels(a.id, sender, recipient)


class ProofMetrics:
    """What the publisher of proofs (``launchrelay audit publish``) counts: how far each log is proved to the
    parties, the heads it rebuilt from the leaves and found signed right, and logs found broken."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        ProcessCollector(registry=r)
        self.ready = Gauge("launchrelay_ready", "1 when /readyz answers 200 (ready to work), else 0", registry=r)
        self.head_size = Gauge(
            "launchrelay_proofs_head_size", "Leaves of this log under the last head proved to the parties", ["log"],
            registry=r,
        )  # fmt: skip
        self.head_time = Gauge(
            "launchrelay_proofs_head_timestamp_seconds", "When the last head of this log proved to the parties was "
            "signed", ["log"], registry=r,
        )  # fmt: skip
        self.checked = Counter(
            "launchrelay_proofs_heads_checked", "Signed heads whose root the publisher rebuilt from the log's leaves "
            "and found equal", registry=r,
        )  # fmt: skip
        self.broken = Gauge(
            "launchrelay_proofs_broken_logs", "Logs whose leaves and heads do not agree (nothing more is proved for "
            "them; see the proofs.log_broken line)", registry=r,
        )  # fmt: skip
        self.statements = Counter(
            "launchrelay_proofs_statements", "Statements sent to each party's proofs topic", ["party"], registry=r
        )
        self.restarts = Counter(
            "launchrelay_proofs_restarts", "Times the publisher lost the broker and started again (reading the log "
            "from its beginning; see the proofs.restarting line)", registry=r,
        )  # fmt: skip
