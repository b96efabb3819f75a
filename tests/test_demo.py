"""The README's main command plays the whole exchange and ends with the status table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


def test_demo_runs_the_exchange_and_prints_status(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`launchrelay demo`: forwards, an amendment, a cancellation, a rejection with reasons, a timeout, the table."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHRELAY_")}
    env |= {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "LAUNCHRELAY_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "launchrelay", "demo"], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert out.count(": forwarded") == 5
    assert "OUT_OF_SCOPE_RANGE" in out and "LEAD_TIME_TOO_SHORT" in out
    assert "acknowledgement overdue: CN was alerted" in out
    table = out[out.index("ID  ") :].splitlines()
    states = " ".join(table)
    for state in ("acknowledged", "cancelled", "overdue", "rejected"):
        assert f" {state} " in states, state
    assert "have been stopped" in out
    # the invalid notice, in the dead-letter table with its reasons
    table = out.split("Dead letters (")[1].split("REF ", 1)[1].splitlines()
    assert "OUT_OF_SCOPE_RANGE" in table[1] and table[2].startswith("1 dead letter in")
    logs = list((tmp_path / "data" / "demo").glob("*/logs/relay.log"))
    assert logs and '"relay.committed"' in logs[0].read_text()
