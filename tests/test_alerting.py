"""The alerting kit under deploy/prometheus: rules that promtool accepts and whose unit tests (each alert firing
on the series that should raise it, quiet on the others) pass; the Prometheus Operator's copy equal to the plain
file; and every metric a rule reads one that the relay or the tracker serves."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from launchrelay.docsgen import metrics_markdown

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "deploy" / "prometheus"


def promtool(*args: str, cwd: Path = KIT) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: Debian's prometheus package provides it (make test installs it as root)")
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", "rules.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_unit_tests_pass_for_every_alert() -> None:
    rules = yaml.safe_load((KIT / "rules.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((KIT / "tests.yaml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert tested == alerts, f"alerts without a unit test: {alerts - tested}"
    for case in tests["tests"]:
        quiet = [t for t in case["alert_rule_test"] if not t.get("exp_alerts")]
        firing = [t for t in case["alert_rule_test"] if t.get("exp_alerts")]
        assert quiet and firing, f"{case['name']}: a case shows the alert both quiet and firing"
    done = promtool("test", "rules", "tests.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_tests_would_catch_a_broken_rule(tmp_path: Path) -> None:
    """The unit tests are not vacuous: with one threshold changed, promtool reports the failure."""
    rules = (KIT / "rules.yaml").read_text()
    stalled = "(launchrelay_oldest_pending_seconds) > 60\n"
    broken = rules.replace(stalled, stalled.replace("60", "600"))
    assert broken != rules
    (tmp_path / "rules.yaml").write_text(broken)
    shutil.copy(KIT / "tests.yaml", tmp_path / "tests.yaml")
    done = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert done.returncode != 0 and "LaunchRelayPartitionStalled" in done.stdout + done.stderr


def test_the_operator_copy_equals_the_rules_file() -> None:
    rules = yaml.safe_load((KIT / "rules.yaml").read_text())
    operator = yaml.safe_load((KIT / "prometheusrule.yaml").read_text())
    assert operator["kind"] == "PrometheusRule" and operator["apiVersion"] == "monitoring.coreos.com/v1"
    assert operator["spec"]["groups"] == rules["groups"]


def test_rules_read_only_metrics_that_exist() -> None:
    served = set(re.findall(r"^\| `([a-z_]+)`", metrics_markdown(), re.MULTILINE)) | {"up"}
    rules = (KIT / "rules.yaml").read_text()
    used = {name for name in re.findall(r"\b(launchrelay_[a-z_]+|up)\b(?=[{\[ )])", rules)}
    assert used and used <= served, used - served


def _dashboard_module() -> Any:
    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "deploy" / "grafana" / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dashboard_is_what_its_builder_makes_and_reads_only_served_metrics() -> None:
    """deploy/grafana/launchrelay.json is built by grafana-foundation-sdk (python deploy/grafana/dashboard.py);
    its panels cover traffic by agreement, outcomes, acknowledgement latency, overdue, lag and stalls."""
    dashboard = _dashboard_module()
    committed = (ROOT / "deploy" / "grafana" / "launchrelay.json").read_text()
    assert committed == dashboard.render(), (
        "stale: python deploy/grafana/dashboard.py > deploy/grafana/launchrelay.json"
    )
    board = json.loads(committed)
    panels = [p for p in board["panels"] if p["type"] == "timeseries"]
    titles = {p["title"] for p in panels}
    for wanted in ("Forwarded by agreement", "Rejections by reason", "Acknowledgement latency (p50, p99)",
                   "Pending and overdue", "Consumer lag", "Oldest record waiting"):  # fmt: skip
        assert wanted in titles
    served = set(re.findall(r"^\| `([a-z_]+)`", metrics_markdown(), re.MULTILINE))
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = {re.sub(r"_(bucket)$", "", m) for e in exprs for m in re.findall(r"\blaunchrelay_[a-z_]+", e)}
    assert used and used <= served, used - served
