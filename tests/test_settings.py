"""One settings object: environment first, then the config file's [settings] table; secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from launchrelay.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_environment_wins_over_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "launchrelay.toml"
    config.write_text('[settings]\nlog_level = "DEBUG"\ntracker_tick_s = 2.5\n')
    monkeypatch.setenv("LAUNCHRELAY_CONFIG", str(config))
    assert (Settings().log_level, Settings().tracker_tick_s) == ("DEBUG", 2.5)
    monkeypatch.setenv("LAUNCHRELAY_LOG_LEVEL", "WARNING")
    assert (Settings().log_level, Settings().tracker_tick_s) == ("WARNING", 2.5)


def test_sasl_options_reach_the_kafka_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCHRELAY_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LAUNCHRELAY_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LAUNCHRELAY_KAFKA_SASL_USERNAME", "launchrelay-relay")
    monkeypatch.setenv("LAUNCHRELAY_KAFKA_SASL_PASSWORD", "s3cret")
    opts = Settings().kafka_options()
    assert opts == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "launchrelay-relay",
        "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(Settings())


def test_config_check_prints_what_it_resolved_and_masks_secrets(tmp_path: Path) -> None:
    """`launchrelay config check` shows settings, parties with key ids and agreement rules, never the password."""
    env = {"LAUNCHRELAY_KAFKA_SASL_PASSWORD": "s3cret", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "launchrelay", "config", "check", str(ROOT / "deploy/k8s/launchrelay.toml")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout and "kafka_sasl_password = ***" in done.stdout
    assert "key ids cn-2026" in done.stdout and "missiles over 2000 km" in done.stdout
    assert done.stdout.rstrip().endswith("config OK")


def test_config_check_explains_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[relay]\npresets = ["CN-RU-2009"]\n[parties.CN]\nname = "CN"\nkeys = { k = "short" }\n')
    done = subprocess.run([sys.executable, "-m", "launchrelay", "config", "check", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("launchrelay: error:") and "parties.CN.keys" in done.stderr
