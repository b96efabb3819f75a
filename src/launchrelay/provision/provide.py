"""Choose a broker: the configured address, else Docker (testcontainers), else a local one.

The order is the same for the CLI and the test suite:

1. ``LAUNCHRELAY_BOOTSTRAP_SERVERS`` (``Settings.bootstrap_servers``): used as is.
2. A Docker daemon that answers: testcontainers starts ``apache/kafka`` in KRaft mode
   (``LAUNCHRELAY_USE_DOCKER=0``, ``Settings.use_docker``, skips it).
3. A local broker assembled from Maven Central jars.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import structlog

from launchrelay.provision.local import LocalBroker
from launchrelay.settings import docker_host

log = structlog.get_logger(__name__)


def docker_answers(host: str, timeout_s: float = 2.0) -> bool:
    """True when a Docker daemon on the local socket ``host`` (``unix://...``) answers ``GET /_ping``."""
    if not host.startswith("unix://"):
        return False  # remote daemons are not used to start brokers for this project
    path = host.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(256)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


@contextlib.contextmanager
def _docker_broker() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    container = (
        KafkaContainer("apache/kafka:4.1.1")
        .with_kraft()
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    with container as running:
        yield str(running.get_bootstrap_server())


@contextlib.contextmanager
def provide_broker(
    *,
    bootstrap: str | None,
    data_dir: Path,
    port: int = 9092,
    controller_port: int = 9093,
    heap_mb: int = 512,
    cache_dir: Path | None = None,
    use_docker: bool = True,
) -> Iterator[str]:
    """Yield a bootstrap address; whatever was started here is stopped on exit."""
    if bootstrap:
        log.info("broker.configured", bootstrap=bootstrap)
        yield bootstrap
        return
    if use_docker and docker_answers(docker_host()):
        with _docker_broker() as addr:
            log.info("broker.docker", bootstrap=addr)
            yield addr
        return
    broker = LocalBroker(
        data_dir=data_dir, port=port, controller_port=controller_port, heap_mb=heap_mb, cache_dir=cache_dir
    )
    with broker:
        yield broker.bootstrap
