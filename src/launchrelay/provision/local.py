"""A single-node Apache Kafka (KRaft) assembled from Maven Central jars.

No tarball and no Docker: Maven resolves ``kafka_2.13`` and its runtime
dependencies (plus the log4j SLF4J binding, which only the release tarball
ships) into a cache outside the repository. Storage is formatted once with
``kafka.tools.StorageTool format --standalone`` and the broker is started with
``kafka.Kafka server.properties`` on loopback with a modest heap.

Every wait here is bounded; every failure names its cause and the broker's log.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import structlog

from launchrelay.errors import BrokerError, BrokerPortBusy, BrokerToolMissing
from launchrelay.provision._process import run_until_signal, stop_pid_file
from launchrelay.provision.tls import make_broker_tls
from launchrelay.settings import default_cache_dir, jvm_options

log = structlog.get_logger(__name__)

KAFKA_VERSION = "4.1.1"
#: log4j-core must match the version kafka_2.13 pulls in, and the SLF4J 1.7
#: binding (Kafka uses slf4j-api 1.7.36) must match log4j-core.
LOG4J_VERSION = "2.24.3"
#: The superuser of a broker started with ``admin_password``.
ADMIN_USER = "admin"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>launchrelay</groupId>
  <artifactId>broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.server.type = File
appender.server.name = SERVER
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = SERVER
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""

#: How fast a cluster notices a dead node and moves on (see the README's "Failover" section for figures).
#: A broker killed or frozen is fenced when the active controller has had no heartbeat from it for the session
#: timeout (2 s instead of Kafka's 9 s, with a heartbeat every 0.25 s instead of 2 s); fencing moves leadership and
#: shrinks every ISR at once. A controller quorum whose leader is silent for the fetch timeout (default 2 s)
#: elects another. The price: a node starved of CPU for longer than these is fenced (or loses its quorum
#: leadership) and comes back by itself, moving leaders in between. Nothing here touches durability: acks=all,
#: min.insync.replicas=2 of 3 and no unclean election stay as they are.
FAILOVER = {
    "broker.session.timeout.ms": "2000",
    "broker.heartbeat.interval.ms": "250",
    "controller.quorum.fetch.timeout.ms": "1000",
    "controller.quorum.election.backoff.max.ms": "300",
}

_STARTED_MARK = "Kafka Server started"
ARCHIVE_NAME = "broker-classes.jsa"


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BrokerToolMissing(
            f"'{name}' is not on PATH: the local Kafka broker needs Java 17+ and Maven "
            f"(Debian: apt-get install openjdk-17-jre-headless maven)"
        )
    return path


def ensure_jars(cache_dir: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """The directory holding the broker's classpath (``kafka_2.13`` and the log4j binding), resolved once."""
    root = (cache_dir or default_cache_dir()) / f"kafka-{KAFKA_VERSION}"
    return resolve_classpath(root, "kafka_2.13", timeout_s=timeout_s)


def ensure_tools(cache_dir: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """Kafka's own command-line tools (``kafka-tools``: console producer and consumer, perf tools), resolved once.

    The tests' foreign client and the benchmark's broker figures use these, so nothing beyond Java
    and Maven has to be installed for them."""
    root = (cache_dir or default_cache_dir()) / f"kafka-tools-{KAFKA_VERSION}"
    return resolve_classpath(root, "kafka-tools", timeout_s=timeout_s)


def class_archive(libs: Path) -> Path:
    """Where the broker's class-data-sharing archive for the jars in ``libs`` lives (beside them, in the cache).

    Starting a broker is mostly the JVM loading and verifying some 9,000 classes, on a machine busy with other
    work. An AppCDS archive of them, dumped by the JVM when a broker first stops
    (``-XX:ArchiveClassesAtExit``), is mapped at every later start (``-XX:SharedArchiveFile``): a start took
    2.4-3.1 s with it against 4.7-4.9 s without, alternating, on this machine under load (the JVM checks that
    the archive matches the classpath and ignores it otherwise)."""
    return libs.parent / ARCHIVE_NAME


def _archive_options(libs: Path) -> tuple[list[str], Path | None]:
    """JVM options that use the class archive, or that dump one (to a path of its own) when there is none yet."""
    archive = class_archive(libs)
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"], None
    dumping = archive.with_name(f"{archive.name}.{uuid.uuid4().hex[:8]}.tmp")
    return [f"-XX:ArchiveClassesAtExit={dumping}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"], dumping


def _keep_archive(dumping: Path | None) -> None:
    """After a broker that dumped its classes has exited: publish the archive (the first complete one wins)."""
    if dumping is None:
        return
    final = dumping.parent / ARCHIVE_NAME
    try:
        if dumping.stat().st_size > 0 and not final.exists():
            os.replace(dumping, final)
    except FileNotFoundError:
        return  # killed (SIGKILL) before it could dump: the next broker dumps one
    finally:
        dumping.unlink(missing_ok=True)


def kafka_tool(libs: Path, main_class: str, *args: str, heap_mb: int = 256) -> list[str]:
    """The command that runs ``main_class`` from the jars in ``libs`` (quiet logging, a small heap)."""
    java = _require_tool("java")
    return [java, f"-Xmx{heap_mb}m", "-Dlog4j2.level=WARN", "-cp", f"{libs}/*", main_class, *args]


def ensure_class_archive(cache_dir: Path | None = None) -> Path:
    """The broker's class archive (see :func:`class_archive`), made now by starting and stopping a throwaway
    broker on free loopback ports when there is none: ``launchrelay broker fetch`` calls this, so the test
    suite's and the demo's brokers all start from it."""
    import tempfile

    archive = class_archive(ensure_jars(cache_dir))
    if not archive.exists():
        with (
            tempfile.TemporaryDirectory(prefix="launchrelay-cds-") as tmp,
            LocalBroker(Path(tmp), port=free_port(), controller_port=free_port(), cache_dir=cache_dir),
        ):
            pass  # the JVM dumps the classes it loaded as it stops
    return archive


def directory_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class _Progress:
    """Maven's "Downloaded from" lines, summed into one progress line every few seconds (on stderr)."""

    _SIZE = re.compile(r"Downloaded from \S+: \S+ \(([0-9.]+) ([kMG]?B)")
    _UNIT: ClassVar[dict[str, float]] = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}

    def __init__(self, artifact: str, every_s: float = 3.0) -> None:
        self.artifact, self.every_s = artifact, every_s
        self.files, self.bytes, self._last = 0, 0.0, time.monotonic()

    def line(self, text: str) -> None:
        m = self._SIZE.search(text)
        if m is None:
            return
        self.files += 1
        self.bytes += float(m.group(1)) * self._UNIT[m.group(2)]
        if time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.show()

    def show(self) -> None:
        print(f"fetching {self.artifact}: {self.files} files, {self.bytes / 1e6:.1f} MB downloaded",
              file=sys.stderr, flush=True)  # fmt: skip


def resolve_classpath(root: Path, artifact: str, *, timeout_s: float = 900.0) -> Path:
    """``org.apache.kafka:<artifact>`` and its runtime dependencies, with the log4j SLF4J binding, in ``root/libs``.

    Maven resolves them once (progress on stderr every few seconds: files and MB downloaded); a marker
    file says the copy is complete, so a later call only looks.
    """
    libs = root / "libs"
    done = root / ".complete"
    if done.exists() and any(libs.glob(f"{artifact}-*.jar")):
        return libs
    mvn = _require_tool("mvn")
    _require_tool("java")
    root.mkdir(parents=True, exist_ok=True)
    pom = root / "pom.xml"
    pom.write_text(_POM.replace("kafka_2.13</artifactId>", f"{artifact}</artifactId>").format(
        kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))  # fmt: skip
    mvn_log = root / "mvn.log"
    log.info("broker.jars.resolving", artifact=artifact, kafka=KAFKA_VERSION, cache=str(root))
    cmd = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime",
           f"-DoutputDirectory={libs}"]  # fmt: skip
    progress = _Progress(artifact)
    deadline = time.monotonic() + timeout_s
    with mvn_log.open("w") as out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                    text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for text in proc.stdout:
            out.write(text)
            progress.line(text)
            if time.monotonic() > deadline:
                proc.kill()
                raise BrokerError(f"Maven did not resolve {artifact} in {timeout_s:.0f}s; see {mvn_log}")
        returncode = proc.wait()
    if returncode != 0 or not any(libs.glob(f"{artifact}-*.jar")):
        raise BrokerError(f"Maven failed to resolve {artifact} (exit {returncode}); see {mvn_log}")
    done.write_text(KAFKA_VERSION + "\n")
    size_mb = round(directory_bytes(libs) / 1e6, 1)
    if progress.files:
        progress.show()
    log.info("broker.jars.ready", artifact=artifact, kafka=KAFKA_VERSION, jars=len(list(libs.glob("*.jar"))),
             size_mb=size_mb)  # fmt: skip
    return libs


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as ``StorageTool random-uuid``).

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with '-': the storage tool would read it as an
    option (one id in 64 did, and a broker failed to format)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@dataclass
class LocalBroker:
    """One Kafka process (broker + controller) with its data under ``data_dir``."""

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    heap_mb: int = 512
    cache_dir: Path | None = None
    start_timeout_s: float = 90.0
    #: When set, the broker authenticates every client with SASL/SCRAM-SHA-512,
    #: authorizes with ACLs (StandardAuthorizer, deny when no ACL matches), and
    #: ``admin`` with this password is the only superuser.
    admin_password: str | None = None
    #: With ``admin_password``: the client listener speaks TLS (SASL_SSL) with a
    #: certificate from a CA of its own (:attr:`ca_file`), as production clusters do.
    tls: bool = False
    #: In a cluster (see :class:`launchrelay.provision.cluster.LocalCluster`): this node's id, the static
    #: controller quorum (``id@host:port,...``), the cluster's id, and copies of the internal topics.
    node_id: int = 1
    voters: str | None = None
    cluster_id: str | None = None
    replication: int = 1
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _dumping: Path | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's own log file."""
        return self.data_dir / "logs" / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def ca_file(self) -> Path:
        """The CA certificate a client of the TLS listener trusts."""
        return self.data_dir / "tls" / "ca.pem"

    @property
    def security_protocol(self) -> str:
        if self.admin_password is None:
            return "PLAINTEXT"
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    @property
    def client_options(self) -> dict[str, Any]:
        """What an aiokafka client needs to connect as the superuser (empty for a plaintext broker)."""
        if self.admin_password is None:
            return {}
        opts: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": ADMIN_USER,
            "sasl_plain_password": self.admin_password,
        }
        if self.tls:
            opts["ssl_context"] = ssl.create_default_context(cafile=str(self.ca_file))
        return opts

    def _tls_props(self) -> dict[str, str]:
        if not self.tls:
            return {}
        assert self.admin_password is not None
        files = make_broker_tls(self.data_dir / "tls", self.admin_password)
        return {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(files.keystore),
            "ssl.keystore.password": files.password,
            "ssl.key.password": files.password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(files.ca),
        }

    def _listener_props(self) -> dict[str, str]:
        client = f"127.0.0.1:{self.port}"
        controller = f"127.0.0.1:{self.controller_port}"
        if self.admin_password is None:
            return {
                "listeners": f"PLAINTEXT://{client},CONTROLLER://{controller}",
                "advertised.listeners": f"PLAINTEXT://{client}",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            }
        pw = self.admin_password
        name = self.security_protocol
        # Clients (and the broker itself) use SCRAM; the controller listener, on
        # loopback, uses PLAIN because SCRAM credentials live in the metadata the controller serves.
        return {
            "listeners": f"{name}://{client},CONTROLLER://{controller}",
            "advertised.listeners": f"{name}://{client}",
            "inter.broker.listener.name": name,
            "listener.security.protocol.map": f"{name}:{name},CONTROLLER:SASL_PLAINTEXT",
            **self._tls_props(),
            "sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            f"listener.name.{name.lower()}.scram-sha-512.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN_USER}" password="{pw}";'
            ),
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'username="{ADMIN_USER}" password="{pw}" user_{ADMIN_USER}="{pw}";'
            ),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN_USER}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _write_config(self) -> Path:
        copies, min_isr = str(self.replication), str(2 if self.replication >= 3 else 1)
        quorum = (
            {"controller.quorum.voters": self.voters}
            if self.voters
            else {"controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}"}
        )
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            **quorum,
            "controller.listener.names": "CONTROLLER",
            **self._listener_props(),
            "log.dirs": str(self.data_dir / "kraft"),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "default.replication.factor": copies,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": copies,
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": copies,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": copies,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            # Tests kill relays mid-transaction; abort their leftovers promptly.
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "5000",
            **(FAILOVER if self.voters else {}),
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        path.chmod(0o600)  # it may hold the superuser's password
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return path

    def _java(self, libs: Path, *args: str, heap: bool = False) -> list[str]:
        java = _require_tool("java")
        opts = [f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC"] if heap else ["-Xmx256m"]
        opts += jvm_options()
        if heap:
            archive, self._dumping = _archive_options(libs)
            opts += archive
        elif class_archive(libs).exists():  # the storage tool loads a part of the broker's classes
            opts += _archive_options(libs)[0]
        return [
            java,
            *opts,
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            f"-Dlog4j2.configurationFile=file:{self.data_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def _format(self, libs: Path, config: Path) -> None:
        if (self.data_dir / "kraft" / "meta.properties").exists():
            return
        fmt = subprocess.run(
            self._java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                self.cluster_id or new_cluster_id(),
                "-c",
                str(config),
                *([] if self.voters else ["--standalone"]),  # a cluster's quorum is the static voters
                *(
                    ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={self.admin_password}]"]
                    if self.admin_password is not None
                    else []
                ),
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if fmt.returncode != 0:
            raise BrokerError(f"kafka StorageTool format failed: {(fmt.stdout + fmt.stderr).strip()[-300:]}")

    def start(self) -> None:
        """Provision (first time), start, and wait until the broker serves clients."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Provision (first time) and start the process without waiting (a cluster's nodes wait for each other)."""
        for p in (self.port, self.controller_port):
            if port_in_use(p):
                raise BrokerPortBusy(
                    f"port 127.0.0.1:{p} is already in use; stop what holds it or set "
                    f"LAUNCHRELAY_BROKER_PORT / point LAUNCHRELAY_BOOTSTRAP_SERVERS at a running broker"
                )
        libs = ensure_jars(self.cache_dir)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        self._format(libs, config)
        self.log_path.unlink(missing_ok=True)
        out = (self.data_dir / "logs" / "broker.out").open("wb")
        log.info("broker.starting", bootstrap=self.bootstrap, data_dir=str(self.data_dir))
        self._proc = subprocess.Popen(
            [*self._java(libs, "kafka.Kafka", str(config), heap=True)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.pid_path.write_text(str(self._proc.pid))
        dump_note = self.data_dir / "class-archive.dumping"
        if self._dumping is not None:
            dump_note.write_text(str(self._dumping))
        else:
            dump_note.unlink(missing_ok=True)

    def wait_ready(self) -> None:
        """Wait until the broker serves clients (or fail with the cause and where its log is)."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise BrokerError(
                    f"the Kafka broker exited with code {code} while starting; see {self.log_path} "
                    f"and {self.data_dir / 'logs' / 'broker.out'}"
                )
            if port_in_use(self.port) and self._log_says_started():
                log.info("broker.started", bootstrap=self.bootstrap, node=self.node_id, pid=self._proc.pid,
                         log=str(self.log_path))  # fmt: skip
                return
            time.sleep(0.2)
        self.stop()
        raise BrokerError(f"the Kafka broker did not start within {self.start_timeout_s:.0f}s; see {self.log_path}")

    def _log_says_started(self) -> bool:
        try:
            return _STARTED_MARK in self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it is still alive after ``timeout_s``."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        log.info("broker.stopped", bootstrap=self.bootstrap, exit_code=self._proc.returncode)
        self._proc = None
        _keep_archive(self._dumping)
        with contextlib.suppress(FileNotFoundError):
            self.pid_path.unlink()

    def kill(self) -> None:
        """SIGKILL: the node dies as in a power cut (no controlled shutdown, no leadership handed over)."""
        if self._proc is None:
            return
        self._proc.kill()
        self._proc.wait(10)
        log.warning("broker.killed", bootstrap=self.bootstrap, node=self.node_id)
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def detach(self) -> None:
        """Leave the broker running after this object is gone; ``stop_by_pidfile`` ends it."""
        self._proc = None

    def run_until_signal(self) -> None:
        """Keep the broker in the foreground until SIGTERM or SIGINT, or until it exits by itself; then stop it."""
        run_until_signal(lambda: self._proc, self.stop)

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_by_pidfile(data_dir: Path, timeout_s: float = 30.0) -> bool:
    """Stop a broker started by another process of ours; False when none was running."""
    if not stop_pid_file(data_dir / "broker.pid", timeout_s):
        return False
    note = data_dir / "class-archive.dumping"
    with contextlib.suppress(FileNotFoundError):
        _keep_archive(Path(note.read_text().strip()))
        note.unlink()
    return True
