"""The local broker explains each failure in one line and reuses its jar cache."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from launchrelay.errors import BrokerError, BrokerPortBusy, BrokerToolMissing
from launchrelay.provision.local import LocalBroker, ensure_jars, free_port
from launchrelay.settings import default_cache_dir

pytestmark = pytest.mark.kafka  # starts (and fails to start) real brokers


def test_busy_port_is_named(tmp_path: Path) -> None:
    """A port already taken is reported with the port, before anything is started."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = LocalBroker(tmp_path, port=port, controller_port=free_port())
        with pytest.raises(BrokerPortBusy, match=f"127.0.0.1:{port} is already in use"):
            broker.start()


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without java on PATH the error says what to install."""
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalBroker(tmp_path, port=free_port(), controller_port=free_port())
    with pytest.raises(BrokerToolMissing, match="'java' is not on PATH"):
        broker.start()


def test_second_start_reuses_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Once resolved, the jars are used from the cache without Maven (mvn removed from PATH)."""
    libs = ensure_jars(default_cache_dir())
    monkeypatch.setenv("PATH", str(tmp_path))
    started = time.monotonic()
    assert ensure_jars(default_cache_dir()) == libs
    assert time.monotonic() - started < 1.0


def test_failed_start_names_the_log(tmp_path: Path) -> None:
    """A broker that exits while starting is reported with the path of its own log."""
    # Storage that looks formatted but is not: the broker refuses it and exits.
    (tmp_path / "kraft").mkdir()
    (tmp_path / "kraft" / "meta.properties").write_text("version=1\nnode.id=99\n")
    broker = LocalBroker(tmp_path, port=free_port(), controller_port=free_port())
    with pytest.raises(BrokerError, match=r"exited with code \d+ while starting; see .*server.log"):
        broker.start()


def test_fetch_progress_counts_files_and_megabytes(capsys: pytest.CaptureFixture[str]) -> None:
    """`broker fetch` is not silent for minutes: Maven's download lines are summed into a progress line."""
    from launchrelay.provision.local import _Progress

    progress = _Progress("kafka_2.13", every_s=0)
    for line in (
        "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/apache/kafka/kafka_2.13/x.pom",
        "[INFO] Downloaded from central: https://repo.maven.apache.org/.../kafka_2.13-4.1.1.jar (6.2 MB at 3.1 MB/s)",
        "[INFO] Downloaded from central: https://repo.maven.apache.org/.../scala-library.jar (5.9 MB at 4 MB/s)",
        "[INFO] Downloaded from central: https://repo.maven.apache.org/.../slf4j-api-1.7.36.pom (2.7 kB at 90 kB/s)",
        "[INFO] BUILD SUCCESS",
    ):
        progress.line(line)
    assert (progress.files, round(progress.bytes)) == (3, 12_102_700)
    assert capsys.readouterr().err.splitlines()[-1] == "fetching kafka_2.13: 3 files, 12.1 MB downloaded"


def test_broker_fetch_prints_where_and_how_big(tmp_path: Path) -> None:
    """With the jars cached: each classpath and the class archive, each with its size."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "launchrelay", "broker", "fetch"], capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # the broker's jars, Kafka's tools, MirrorMaker 2's, and the broker's class archive
    assert len(lines) == 4 and all(line.endswith(" MB)") for line in lines)
    assert "kafka-4" in lines[0] and "kafka-tools-4" in lines[1] and "connect-mirror-4" in lines[2]
    assert lines[3].split(" (")[0].endswith("broker-classes.jsa")


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    """The storage tool reads `-t -abc...` as an option: ids are drawn again until they do not start with '-'."""
    from launchrelay.provision.local import new_cluster_id

    ids = [new_cluster_id() for _ in range(5000)]  # about 78 would start with '-' if drawn once
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == len(ids)
