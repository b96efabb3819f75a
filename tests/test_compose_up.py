"""Where a Docker daemon answers: build the image and bring the compose project up to ready, then down again.

No Docker engine runs on the machines this project is developed and tested on (only the client), so there this
test is skipped and the compose file is held to the Compose specification and to its own rules by
tests/test_deploy.py instead."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from launchrelay.provision.provide import docker_answers
from launchrelay.settings import docker_host

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(not docker_answers(docker_host()), reason="no Docker daemon answers (only the client here)"),
]


def compose(*args: str, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "compose", "-p", "launchrelay-test", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout_s, check=False)  # fmt: skip


def test_compose_builds_and_comes_up_ready() -> None:
    try:
        built = compose("build")
        assert built.returncode == 0, built.stderr[-3000:]
        up = compose("up", "-d", "--wait", "--wait-timeout", "300")
        assert up.returncode == 0, up.stderr[-3000:] + compose("logs", "--no-color").stdout[-5000:]
        for service in ("relay", "tracker"):
            ready = compose("exec", "-T", service, "launchrelay", "health", "--ready")
            assert ready.returncode == 0, ready.stdout + ready.stderr
    finally:
        compose("down", "-v", timeout_s=300)
