"""The benchmark harness runs end to end in quick mode and reports every figure (speed is never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.run import LATENCY, THROUGHPUT

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_produces_every_figure(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`bench.run --mode quick` writes JSON and Markdown: every variant, ratio, tracker and relay-state figure."""
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bench.run", "--mode", "quick", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=560, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    r = json.loads((tmp_path / "quick.json").read_text())
    assert set(r["throughput"]) == set(THROUGHPUT)
    for row in r["throughput"].values():
        assert row["msgs_per_s"] > 0 and row["cpu_ms_per_msg"] >= 0 and row["peak_rss_mb"] > 0
        assert 600 <= row["record_bytes"] <= 1024 and len(row["rounds"]) == r["rounds"] == 1
        assert all(len(run["load_1m"]) == 2 for run in row["rounds"])  # the load beside every figure
        assert all("cpu_waited" in run for run in row["rounds"])  # and how much of it some task waited for a CPU
    assert r["throughput"]["relay_x2"]["processes"] == 2
    assert r["broker"]["producer_msgs_per_s"] > 0 and r["broker"]["consumer_msgs_per_s"] > 0
    assert {(row["variant"], row["offered_per_s"]) for row in r["latency"]} == set(LATENCY)
    assert all(row["delivered"] == row["sent"] > 0 for row in r["latency"])
    assert 0 < r["tracker"]["alerts_measured"] == r["tracker"]["timeout_lateness_ms"]["n"] < r["tracker"]["pending"]
    rs = r["relay_state"]
    assert rs["remembered"] > 0 and rs["restart_s"] > 0 and rs["rss_mb_remembering"] > 0
    assert {"relay_vs_same_work", "relay_p99_vs_floor_p99_at_100", "relay_x2_vs_relay"} <= set(r["ratios"])
    md = (tmp_path / "quick.md").read_text()
    assert "| launchrelay relay, CN-RU (1 process) |" in md and "same-work pipe" in md and "Load average" in md


def test_hostile_benchmark_measures_every_record(tmp_path: Path) -> None:
    """`bench.hostile` decides every hostile kind and a valid notice of two agreements, and writes its table."""
    done = subprocess.run([sys.executable, "-m", "bench.hostile", "--repeat", "1", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = json.loads((tmp_path / "hostile.json").read_text())["rows"]
    assert rows["valid CN-RU notice"]["outcome"] == "forwarded" == rows["valid IN-PK notice"]["outcome"]
    hostile = {name: row for name, row in rows.items() if not name.startswith("valid")}
    assert len(hostile) >= 10 and all(row["outcome"] == "rejected" and row["reasons"] for row in hostile.values())
    assert all(row["median_ms"] > 0 and row["peak_mib"] >= 0 for row in rows.values())
    assert "| ~900 KB polygon (27,000 points) |" in (tmp_path / "hostile.md").read_text()


def test_console_load_measures_both_variants(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`bench.console_load` (`make bench` runs 200 loads over 300 dead letters): a small run of both variants,
    each board load, dead-letter load and /healthz probe answered and timed, and the console's memory read."""
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bench.console_load", "--rounds", "1", "--loads", "20",
                           "--dead-letters", "12", "--notifications", "60", "--out", str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "console_load.json").read_text())
    assert {r["variant"] for r in doc["runs"]} == {"shared render", "render each"}
    for run in doc["runs"]:
        assert run["board_ms"]["n"] == 20 and run["dead_letters_ms"]["n"] == 8 and run["healthz_ms"]["n"] >= 1
        assert run["peak_rss_mib"] > 0 and "load_1m" in run and "cpu_waited" in run
    assert "| shared render |" in (tmp_path / "console_load.md").read_text()


def test_the_decision_logs_cost_is_measured_beside_the_relay_without_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`bench.decision_log` (issue 29's cost): one small round of both variants (no warm-up round here), each with
    a rate and latencies, and the ratios written, the pooled p99 among them."""
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bench.decision_log", "--rounds", "1", "--messages", "150",
                           "--seconds", "1.5", "--warm-rounds", "0", "--out", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "decision_log.json").read_text())
    assert {r["variant"] for r in doc["runs"]} == {"relay", "relay_log"}
    assert all(r["msgs_per_s"] > 0 and r["p99_ms"] > 0 for r in doc["runs"])
    assert doc["throughput_ratio"] > 0 and doc["p99_ratio_at_100"] > 0
    assert all(doc["pooled_ms"][v]["n"] > 0 for v in ("relay", "relay_log"))
    assert all(len(r["cpu_waited"]) == 2 for r in doc["runs"])  # the drain's and the 100/s run's
