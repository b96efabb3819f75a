"""The launchrelay Grafana dashboard, built with grafana-foundation-sdk (Grafana's own typed builders).

``python deploy/grafana/dashboard.py > deploy/grafana/launchrelay.json`` writes it; tests/test_alerting.py
checks the committed file is what this builds, and that every query reads a metric the services serve.
Import the JSON in Grafana (Dashboards > Import) and pick the Prometheus data source that scrapes them.
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel
from grafana_foundation_sdk.cog.encoder import JSONEncoder

#: (title, unit, description, [(PromQL, legend)]) per panel, in rows
ROWS: list[tuple[str, list[tuple[str, str, str, list[tuple[str, str]]]]]] = [
    ("Traffic", [
        ("Messages in by sender", "ops", "Records read from each party's out topic",
         [("sum by (sender) (rate(launchrelay_messages_in_total[5m]))", "{{sender}}")]),
        ("Forwarded by agreement", "ops", "Forwards per agreement and route",
         [("sum by (agreement, sender, recipient) (rate(launchrelay_forwarded_total[5m]))",
           "{{agreement}} {{sender}}→{{recipient}}")]),
    ]),
    ("Outcomes", [
        ("Rejections by reason", "ops", "Refused messages: `launchrelay deadletters --reason CODE` lists them",
         [("sum by (agreement, reason) (rate(launchrelay_rejected_total[5m]))", "{{agreement}} {{reason}}")]),
        ("Duplicates", "ops", "Exact repeats answered 'duplicate', not forwarded again",
         [("sum by (sender) (rate(launchrelay_duplicates_total[5m]))", "{{sender}}")]),
    ]),
    ("Acknowledgements", [
        ("Acknowledgement latency (p50, p99)", "s", "Forward to acknowledgement, per agreement",
         [("histogram_quantile(0.5, sum by (agreement, le) (rate(launchrelay_ack_latency_seconds_bucket[30m])))",
           "p50 {{agreement}}"),
          ("histogram_quantile(0.99, sum by (agreement, le) (rate(launchrelay_ack_latency_seconds_bucket[30m])))",
           "p99 {{agreement}}")]),
        ("Pending and overdue", "short", "Deliveries awaiting acknowledgement, and those past their deadline",
         [("sum(launchrelay_pending_deliveries)", "pending"), ("sum(launchrelay_overdue_deliveries)", "overdue")]),
        ("Timeouts and retransmissions", "short", "Deadlines missed and re-sends, per agreement and recipient",
         [("sum by (agreement, recipient) (increase(launchrelay_timeouts_total[1h]))",
           "timeouts {{agreement}} {{recipient}}"),
          ("sum by (agreement, recipient) (increase(launchrelay_retransmissions_total[1h]))",
           "re-sends {{agreement}} {{recipient}}")]),
    ]),
    ("Pipeline", [
        ("Consumer lag", "short", "Records behind the end of each input partition (relay: out topics; tracker: status)",
         [("sum by (job, topic) (launchrelay_consumer_lag)", "{{job}} {{topic}}")]),
        ("Oldest record waiting", "s", "Age of the oldest undecided record per partition: a stall shows here first",
         [("max by (job, topic, partition) (launchrelay_oldest_pending_seconds)", "{{job}} {{topic}}:{{partition}}")]),
        ("Ready", "short", "1 when /readyz answers 200",
         [("launchrelay_ready", "{{job}} {{instance}}")]),
        ("Broker read errors", "ops", "Failed reads from Kafka, by error",
         [("sum by (job, error) (rate(launchrelay_fetch_errors_total[5m]))", "{{job}} {{error}}")]),
        ("Transaction commit time (p99)", "s", "Time to write and commit one partition's batch",
         [("histogram_quantile(0.99, sum by (le) (rate(launchrelay_transaction_commit_seconds_bucket[5m])))", "p99")]),
    ]),
]  # fmt: skip


def build() -> dict[str, Any]:
    board = (
        Dashboard("launchrelay")
        .uid("launchrelay")
        .description("Launch notifications through the relay: traffic, outcomes, acknowledgements, the pipeline")
        .tags(["launchrelay", "kafka"])
        .refresh("30s")
        .time("now-6h", "now")
    )
    for row_title, panels in ROWS:
        board = board.with_row(Row(row_title))
        for title, unit, description, queries in panels:
            panel = Panel().title(title).description(description).unit(unit).height(8).span(12).min(0)
            for expr, legend in queries:
                panel = panel.with_target(Dataquery().expr(expr).legend_format(legend))
            board = board.with_panel(panel)
    result: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return result


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render(), end="")
