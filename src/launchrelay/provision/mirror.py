"""The link between two centres: Apache Kafka's MirrorMaker 2 (``connect-mirror``), in dedicated mode.

The centre that *receives* runs the mirror for its direction: it reads the counterpart's outgoing link topic
(``P.link.<here>`` in the counterpart's cluster, with the read-only credential the counterpart issued) and
writes it into its own cluster as ``<counterpart>.P.link.<here>`` (MirrorMaker 2's default replication
policy). Everything MirrorMaker 2 keeps for itself (its Connect offsets, status and configuration, its offset
syncs, its heartbeats) lives in the receiving cluster, so the mirror never writes to the counterpart's.

It copies at least once: a record may arrive twice after a crash of the mirror. The receiving relay absorbs
every repeat (the same sender, id and bytes: see :func:`launchrelay.relay.decide.decide`). Records of aborted
transactions are not copied (the source consumer reads ``read_committed``).

The jars come from Maven Central (``org.apache.kafka:connect-mirror`` and what it needs) into the same cache as
the broker's, once; the process is Kafka's own ``org.apache.kafka.connect.mirror.MirrorMaker``.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from launchrelay.agreements.config import Deployment
from launchrelay.errors import BrokerError, ConfigError
from launchrelay.provision._process import run_until_signal, stop_pid_file
from launchrelay.provision.local import KAFKA_VERSION, _require_tool, resolve_classpath
from launchrelay.settings import Settings, default_cache_dir, jvm_options

log = structlog.get_logger(__name__)

MIRROR_MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
_READY_MARK = "Started MirrorSourceConnector"

_LOG4J2 = """status = warn
appender.mirror.type = File
appender.mirror.name = MIRROR
appender.mirror.fileName = {log}
appender.mirror.layout.type = PatternLayout
appender.mirror.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.mirror.ref = MIRROR
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


def ensure_mirror_jars(cache_dir: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """MirrorMaker 2's classpath (``connect-mirror`` with the Connect runtime and the log4j binding), resolved once."""
    root = (cache_dir or default_cache_dir()) / f"connect-mirror-{KAFKA_VERSION}"
    return resolve_classpath(root, "connect-mirror", timeout_s=timeout_s)


@dataclass(frozen=True)
class ClusterAccess:
    """How the mirror reaches one cluster: its alias (a party code), address and credentials."""

    alias: str
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None

    def properties(self) -> dict[str, str]:
        """This cluster's part of ``mm2.properties``: ``<alias>.bootstrap.servers`` and its client security."""
        a = self.alias
        props = {f"{a}.bootstrap.servers": self.bootstrap, f"{a}.security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if self.sasl_mechanism == "PLAIN"
                      else "org.apache.kafka.common.security.scram.ScramLoginModule")  # fmt: skip
            user, password = _jaas_quote(self.sasl_username or ""), _jaas_quote(self.sasl_password or "")
            props[f"{a}.sasl.mechanism"] = self.sasl_mechanism
            props[f"{a}.sasl.jaas.config"] = f'{module} required username="{user}" password="{password}";'
        if self.ssl_cafile is not None:
            props[f"{a}.ssl.truststore.type"] = "PEM"
            props[f"{a}.ssl.truststore.location"] = str(self.ssl_cafile)
        return props


def _jaas_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def mirror_properties(
    source: ClusterAccess, target: ClusterAccess, topic: str, also: tuple[str, ...] = ()
) -> dict[str, str]:
    """MirrorMaker 2's configuration for the one flow ``source -> target`` that copies ``topic`` only (and the
    topics ``also`` names: the decision log's proofs for this centre's party, when it is kept).

    Replication factors are -1 (the target broker's ``default.replication.factor``); topic configs and ACLs are
    not synchronised (the receiving centre creates the mirrored topic itself, stamped with LogAppendTime);
    consumer-group checkpoints are off (no group of the counterpart's is mirrored); offset syncs are kept in the
    target, so the mirror needs nothing in the source cluster but to read ``topic``."""
    flow = f"{source.alias}->{target.alias}"
    back = f"{target.alias}->{source.alias}"
    props = {
        "clusters": f"{source.alias}, {target.alias}",
        **source.properties(),
        **target.properties(),
        f"{flow}.enabled": "true",
        f"{flow}.topics": "|".join(re.escape(t) for t in (topic, *also)),
        f"{back}.enabled": "false",
        f"{source.alias}.consumer.isolation.level": "read_committed",  # never a record of an aborted transaction
        f"{source.alias}.consumer.auto.offset.reset": "earliest",
        f"{target.alias}.producer.acks": "all",
        f"{target.alias}.producer.enable.idempotence": "true",
        "replication.factor": "-1",
        "offset-syncs.topic.replication.factor": "-1",
        "heartbeats.topic.replication.factor": "-1",
        "checkpoints.topic.replication.factor": "-1",
        "offset.storage.replication.factor": "-1",
        "status.storage.replication.factor": "-1",
        "config.storage.replication.factor": "-1",
        "offset-syncs.topic.location": "target",
        "sync.topic.acls.enabled": "false",
        "sync.topic.configs.enabled": "false",
        "emit.checkpoints.enabled": "false",
        "sync.group.offsets.enabled": "false",
        "refresh.topics.interval.seconds": "10",
        "refresh.groups.enabled": "false",
        # The source consumer's fetch.max.wait.ms stays Kafka's 500 ms: the broker answers a read_committed fetch
        # as soon as a transaction's commit marker makes its records readable, so waiting longer costs no latency
        # (the mirror's stage of the relay path: p50 1-7 ms either way, bench/two_centres.py), while a 10 ms wait
        # had the mirror ask, and the broker it reads from answer, a hundred empty fetches a second: at idle, 0.1-0.2
        # of a core for the mirror and 0.2 for the broker, measured (brokers alone 0.04).
        f"{target.alias}.producer.linger.ms": "0",
        "offset.flush.interval.ms": "1000",
    }
    return props


def render(props: dict[str, str]) -> str:
    return "".join(f"{k} = {v}\n" for k, v in props.items())


@dataclass
class LocalMirror:
    """One MirrorMaker 2 process running the flow ``source -> target`` for ``topic``, its files in ``data_dir``."""

    data_dir: Path
    source: ClusterAccess
    target: ClusterAccess
    topic: str
    heap_mb: int = 256
    #: more topics of the flow (the decision log's proofs for this centre's party)
    also: tuple[str, ...] = ()
    cache_dir: Path | None = None
    #: MirrorMaker 2 properties set over the flow's own (a benchmark's second mirror between the same clusters)
    extra: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mirror.log"

    def properties(self) -> dict[str, str]:
        """What its ``mm2.properties`` holds: the flow's settings, then ``extra``."""
        return mirror_properties(self.source, self.target, self.topic, self.also) | self.extra

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "mirror.pid"

    def launch(self) -> None:
        libs = ensure_mirror_jars(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "mm2.properties"
        config.write_text(render(self.properties()))
        config.chmod(0o600)  # it holds the credential the counterpart issued
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2.format(log=self.log_path))
        self.log_path.unlink(missing_ok=True)
        java = _require_tool("java")
        cmd = [java, f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC", *jvm_options(), f"-Dlog4j2.configurationFile=file:{log4j}",
               "-cp", f"{libs}/*", MIRROR_MAIN, str(config), "--clusters", self.target.alias]  # fmt: skip
        out = (self.data_dir / "mirror.out").open("wb")
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # fmt: skip
        out.close()
        self.pid_path.write_text(str(self._proc.pid))
        log.info("mirror.starting", flow=f"{self.source.alias}->{self.target.alias}", topic=self.topic,
                 pid=self._proc.pid, log=str(self.log_path))  # fmt: skip

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Until the mirror's source connector has started (it then copies within a second or two)."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"MirrorMaker 2 exited with code {self._proc.returncode}; see {self.log_path}")
            with contextlib.suppress(FileNotFoundError):
                if _READY_MARK in self.log_path.read_text(errors="replace"):
                    log.info("mirror.started", flow=f"{self.source.alias}->{self.target.alias}", pid=self._proc.pid)
                    return
            time.sleep(0.5)
        raise BrokerError(f"MirrorMaker 2 did not start within {timeout_s:.0f}s; see {self.log_path}")

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the mirror dies mid-copy (what it copied but had not yet recorded is copied again)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            log.warning("mirror.killed", flow=f"{self.source.alias}->{self.target.alias}")
            self._proc = None

    def stop(self, timeout_s: float = 30.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        log.info("mirror.stopped", flow=f"{self.source.alias}->{self.target.alias}")
        self._proc = None
        self.pid_path.unlink(missing_ok=True)

    def detach(self) -> None:
        self._proc = None

    def run_until_signal(self) -> None:
        run_until_signal(lambda: self._proc, self.stop)

    def __enter__(self) -> LocalMirror:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_mirror_by_pidfile(data_dir: Path, timeout_s: float = 30.0) -> bool:
    """Stop a mirror started in the background by another process of ours; False when none was running."""
    return stop_pid_file(data_dir / "mirror.pid", timeout_s)


def link_source(deployment: Deployment, code: str) -> ClusterAccess:
    """How this centre's mirror reaches ``code``'s cluster: ``[links.XX]``, the password read from its file."""
    link = deployment.links.get(code)
    if link is None:
        raise ConfigError(f"no [links.{code}] in the config: links: {sorted(deployment.links) or 'none'}")
    password = None
    if link.sasl_password_file is not None:
        try:
            password = link.sasl_password_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"[links.{code}] sasl_password_file cannot be read: {exc.strerror}") from exc
    return ClusterAccess(code, link.bootstrap, link.security_protocol, link.sasl_mechanism, link.sasl_username,
                         password, link.ssl_cafile)  # fmt: skip


def own_cluster(alias: str, settings: Settings) -> ClusterAccess:
    """How the mirror reaches this centre's own cluster: as every process of it does (the settings)."""
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
    return ClusterAccess(alias, settings.bootstrap(), settings.kafka_security_protocol, settings.kafka_sasl_mechanism,
                         settings.kafka_sasl_username, password, settings.kafka_ssl_cafile)  # fmt: skip


def mirror_for(deployment: Deployment, code: str, settings: Settings, data_dir: Path | None = None) -> LocalMirror:
    """The mirror this centre runs to receive what ``code``'s centre sends it (``code``'s ``P.link.<here>``)."""
    if deployment.centre is None:
        raise ConfigError("a link needs [centre] party = the party this centre serves (two-centre mode)")
    here = deployment.centre.party
    return LocalMirror(
        data_dir=data_dir or settings.data_dir / f"mirror-{code}",
        source=link_source(deployment, code),
        target=own_cluster(here, settings),
        topic=deployment.topics.link_out(here),  # the counterpart's name for its link to this centre
        also=(deployment.topics.proofs(here),) if deployment.relay.decision_log else (),
        cache_dir=settings.cache_dir,
    )
