"""A local Kafka cluster of several KRaft nodes, from the same Maven jars as the single broker.

Every node is a broker and a voter of a static controller quorum, on loopback,
with its own data directory (``data_dir/node-N``). Internal topics (consumer
offsets, transaction state) keep three copies with ``min.insync.replicas=2``
on three nodes, so one node may die without losing a write or stopping one;
topics the relay creates follow the cluster's size (see
:func:`launchrelay.kafka.admin.replication_for`).

Nodes can be killed (SIGKILL, as in a power cut) and started again, which is
what the fault tests do; the controller quorum's leader is found with Kafka's
own ``MetadataQuorumCommand``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from launchrelay.errors import BrokerError
from launchrelay.provision.local import LocalBroker, ensure_tools, kafka_tool, new_cluster_id

log = structlog.get_logger(__name__)


@dataclass
class LocalCluster:
    """``nodes`` Kafka processes forming one cluster; ``ports[i]`` is node i+1's (client, controller) pair."""

    data_dir: Path
    ports: list[tuple[int, int]]
    heap_mb: int = 384
    cache_dir: Path | None = None
    start_timeout_s: float = 120.0
    members: list[LocalBroker] = field(init=False)

    def __post_init__(self) -> None:
        ids = self.data_dir / "cluster.id"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not ids.exists():
            ids.write_text(new_cluster_id())
        cluster_id = ids.read_text().strip()
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(self.ports, start=1))
        copies = min(3, len(self.ports))
        self.members = [
            LocalBroker(
                data_dir=self.data_dir / f"node-{i}",
                port=p,
                controller_port=c,
                heap_mb=self.heap_mb,
                cache_dir=self.cache_dir,
                start_timeout_s=self.start_timeout_s,
                node_id=i,
                voters=voters,
                cluster_id=cluster_id,
                replication=copies,
            )
            for i, (p, c) in enumerate(self.ports, start=1)
        ]

    @classmethod
    def on_ports(cls, data_dir: Path, nodes: int, port: int, controller_port: int, **kw: object) -> LocalCluster:
        """Node i (from 1) listens on ``port + 2(i-1)`` and ``controller_port + 2(i-1)``: 9092/9093,
        9094/9095, 9096/9097 for the defaults."""
        ports = [(port + 2 * i, controller_port + 2 * i) for i in range(nodes)]
        return cls(data_dir=data_dir, ports=ports, **kw)  # type: ignore[arg-type]

    @property
    def bootstrap(self) -> str:
        return ",".join(m.bootstrap for m in self.members)

    def node(self, node_id: int) -> LocalBroker:
        return self.members[node_id - 1]

    def start(self) -> None:
        """Start every node and wait until all serve clients (a node waits for the quorum to form)."""
        for m in self.members:
            m.launch()
        self._wait([m.node_id for m in self.members])
        log.info("cluster.started", bootstrap=self.bootstrap, nodes=len(self.members))

    def _wait(self, node_ids: Iterable[int]) -> None:
        with ThreadPoolExecutor(max_workers=len(self.members)) as pool:
            for future in [pool.submit(self.node(i).wait_ready) for i in node_ids]:
                future.result()

    def kill(self, node_id: int) -> None:
        """SIGKILL one node."""
        self.node(node_id).kill()

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node again, with its data as it was left, and wait until it serves."""
        member = self.node(node_id)
        member.launch()
        self._wait([node_id])

    def stop(self) -> None:
        """Stop every node at once (one at a time, the last would wait for partners already gone)."""
        with ThreadPoolExecutor(max_workers=len(self.members)) as pool:
            for future in [pool.submit(m.stop) for m in self.members]:
                future.result()

    def detach(self) -> None:
        for m in self.members:
            m.detach()

    def quorum_leader(self, timeout_s: float = 60.0) -> int:
        """The node id of the controller quorum's leader, as Kafka's own quorum tool reports it (asked of the
        nodes that are running)."""
        servers = ",".join(m.bootstrap for m in self.members if m.running)
        cmd = kafka_tool(ensure_tools(self.cache_dir), "org.apache.kafka.tools.MetadataQuorumCommand",
                         "--bootstrap-server", servers, "describe", "--status")  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        found = re.search(r"^LeaderId:\s+(\d+)", done.stdout, re.MULTILINE)
        if done.returncode != 0 or found is None:
            raise BrokerError(f"cannot describe the controller quorum: {(done.stdout + done.stderr).strip()[-300:]}")
        return int(found.group(1))

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
