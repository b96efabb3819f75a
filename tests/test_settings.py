"""One settings object: environment first, then the config file's [settings] table; secrets never shown."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import bare_cli
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
    assert "key ids cn-2026" in done.stdout and re.search(r"min_ballistic_range_km +2000 +preset", done.stdout)
    assert "its systems read contract launchrelay/1" in done.stdout  # [parties.XX] reads, as resolved
    assert done.stdout.rstrip().endswith("config OK")


def test_config_check_explains_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[relay]\npresets = ["CN-RU-2009"]\n[parties.CN]\nname = "CN"\nkeys = { k = "short" }\n')
    done = subprocess.run([sys.executable, "-m", "launchrelay", "config", "check", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("launchrelay: error:") and "parties.CN.keys" in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        ("LAUNCHRELAY_LOG_LEVEL", "verbose", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("LAUNCHRELAY_BROKER_PORT", "abc", "valid integer"),
        ("LAUNCHRELAY_KAFKA_SECURITY_PROTOCOL", "TLS", "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
        ("LAUNCHRELAY_KAFKA_SASL_MECHANISM", "GSSAPI", "'SCRAM-SHA-512'"),
        ("LAUNCHRELAY_RELAY_BATCH", "0", "greater than or equal to 1"),
        ("LAUNCHRELAY_LOG_FORMAT", "xml", "'auto', 'json' or 'console'"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_it(
    variable: str, value: str, accepted: str, tmp_path: Path
) -> None:
    """No traceback: one line with the variable, its value and what it accepts; exit 2."""
    done = bare_cli("status", env={variable: value}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"launchrelay: error: {variable}={value!r}: ") and accepted in done.stderr


def test_a_bad_value_in_the_settings_table_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "lr.toml"
    config.write_text('[settings]\nstall_after_s = "soon"\n')
    done = bare_cli("status", env={"LAUNCHRELAY_CONFIG": str(config)}, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"stall_after_s in [settings] of {config}" in done.stderr


def test_an_empty_variable_leaves_the_setting_at_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose files write `VAR: ""` to leave a setting unset (the demo's metrics port crashed on that)."""
    monkeypatch.setenv("LAUNCHRELAY_METRICS_PORT", "")
    monkeypatch.setenv("LAUNCHRELAY_LOG_LEVEL", "")
    assert (Settings().metrics_port, Settings().log_level) == (None, "INFO")


def test_version_and_every_command_help_lists_options_and_environment() -> None:
    from launchrelay.cli import READS, build_parser

    done = bare_cli("--version", cwd=ROOT)
    assert done.returncode == 0 and done.stdout.startswith("launchrelay 0.")
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) == set(READS), "every command says which settings it reads"
    listed: set[str] = set()
    for name, sub in commands.items():
        text = sub.format_help()
        assert "options:" in text and "environment" in text, name
        for field in (*READS[name], "log_level"):
            assert f"LAUNCHRELAY_{field.upper()} " in text, (name, field)
        listed |= set(READS[name])
    assert listed == set(Settings.model_fields), "every setting is listed by some command"
    relay = commands["relay"].format_help()
    assert "LAUNCHRELAY_RELAY_FETCH_WAIT_MS" in relay and "(default 10)" in relay


@pytest.mark.parametrize("bad", ["-1", "ten"])
def test_status_limit_refuses_what_is_not_a_count(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`status --limit` takes 0 (every row) or more; anything else is one line naming the option, no traceback."""
    from launchrelay.cli import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["status", "--limit", bad])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "Traceback" not in err
    assert build_parser().parse_args(["status", "--limit", "0"]).limit == 0
