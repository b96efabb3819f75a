"""The README's main command plays the whole exchange and ends with the status table."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from launchrelay.provision.local import free_port

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


def test_demo_with_the_console_serves_the_board_until_interrupted(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`launchrelay demo --console`: after the exchange, the console over it with an account it prints; the
    board shows the overdue notice, its story the original's valid signature, the health page both services;
    Ctrl-C stops the console, relay, tracker and broker."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHRELAY_")}
    env |= {"LAUNCHRELAY_BOOTSTRAP_SERVERS": kafka_bootstrap, "LAUNCHRELAY_DATA_DIR": str(tmp_path / "data"),
            "LAUNCHRELAY_CONSOLE_PORT": str(port)}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "launchrelay", "demo", "--console"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("[console]"):
                break
        found = re.search(r"user: (\S+)  password: (\S+)", lines[-1])
        assert found, "".join(lines)
        overdue_id = re.search(r"(\S+): acknowledgement overdue: CN was alerted", "".join(lines))
        assert overdue_id
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        login = opener.open(f"{base}/login", timeout=10).read().decode()
        token = re.search(r'name="csrf" value="([^"]+)"', login)
        assert token
        form = urllib.parse.urlencode({"name": found.group(1), "password": found.group(2), "csrf": token.group(1)})
        board = opener.open(f"{base}/login", data=form.encode(), timeout=10).read().decode()
        assert f'class="state-overdue" data-id="{overdue_id.group(1)}"' in board
        # issue 26: the demo's console knows the parties' keys (a genuine notice's signature is "valid", not "a key
        # not registered for the sender") and its services' health endpoints (not "No services configured")
        story = opener.open(f"{base}/n/{overdue_id.group(1)}", timeout=30).read().decode()
        assert "Signature: <strong>valid</strong>" in story, story[-3000:]
        health = opener.open(f"{base}/health", timeout=30).read().decode()
        assert "No services configured" not in health and "relay" in health and "tracker" in health
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[0]
        assert proc.returncode in (0, 130), rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
