"""The long-running benchmarks in short (soak, tracker at scale): each runs and writes every figure. Apart from
tests/test_bench.py so that the suite's two workers share the benchmarks (each file runs on one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parent.parent


def test_soak_samples_both_processes_and_fits_the_slopes(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`bench.soak` (the short version of `make bench`'s ten minutes): samples, slopes and extrapolations."""
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "0.35", "--rate", "30", "--every", "3",
                           "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "soak.json").read_text())
    samples = doc["samples"]
    assert len(samples) >= 5 and samples[-1]["published"] == doc["published"] >= 500
    assert samples[-1]["tracker_pending"] == doc["published"]  # every notice forwarded and recorded, none lost
    assert all(s["relay_rss_mb"] > 0 and s["tracker_rss_mb"] > 0 and "load_1m" in s for s in samples)
    assert all("cpu_waited" in s for s in samples)  # the share since the sample before
    for who in ("relay", "tracker"):
        fit = doc["fits"][who]
        assert fit["cpu_ms_per_notice"] > 0 and {"rss_mb_at_1m", "rss_mb_at_10m", "kib_per_notice"} <= set(fit)
    assert "| relay |" in (tmp_path / "soak.md").read_text()


def test_tracker_scale_measures_every_level(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`bench.tracker_scale` at small levels: restart, lateness of every probe, idle CPU and CPU per event."""
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bench.tracker_scale", "--levels", "0,3000", "--burst", "300",
                           "--idle-s", "2", "--probe-lead-s", "8", "--out", str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "tracker_scale.json").read_text())
    assert [row["pending"] for row in doc["levels"]] == [0, 3000]
    for row in doc["levels"]:
        assert row["probes"] == row["lateness_ms"]["n"] == 20 and row["ready_s"] > 0
        assert row["cpu_ms_per_event"] > 0 and row["idle_cpu_pct_of_core"] >= 0 and len(row["loadavg_1m"]) == 2
        assert "cpu_waited" in row
    assert {"cpu_per_event", "rss"} == set(doc["flatness"])


def test_soak_with_a_horizon_refuses_and_forgets(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`bench.soak --horizon`: every notice refused (its window past) and recorded by the tracker, none pending;
    the relay forgets each id after the horizon, and the results name it."""
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "0.3", "--rate", "25", "--every", "3",
                           "--horizon", "PT5S", "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "soak_horizon.json").read_text())
    assert doc["horizon"] == "PT5S" and doc["published"] >= 400
    assert doc["samples"][-1]["behind"] == 0 and all(s["tracker_pending"] == 0 for s in doc["samples"])
    assert "forgotten after PT5S" in (tmp_path / "soak_horizon.md").read_text()
