"""What the project's Java processes (the local broker, the mirror) share: a foreground wait, a stop by pid file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def run_until_signal(proc: Callable[[], subprocess.Popen[bytes] | None], stop: Callable[[], None]) -> None:
    """Keep a process in the foreground until SIGTERM or SIGINT, or until it exits by itself; then ``stop()``."""
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopping and (p := proc()) is not None and p.poll() is None:
            signal.sigtimedwait([signal.SIGTERM, signal.SIGINT], 0.5)
    finally:
        stop()


def stop_pid_file(pid_path: Path, timeout_s: float = 30.0) -> bool:
    """Stop the process a pid file names (SIGTERM, then SIGKILL after ``timeout_s``); False when none was running."""
    try:
        pid = int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_path.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_path.unlink(missing_ok=True)
    return True
