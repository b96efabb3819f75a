"""Two centres under SASL/SCRAM over TLS with ACLs on both clusters: the mirror reads one topic and nothing else.

Each centre's cluster runs as production clusters do (TLS from its own CA, SCRAM, deny when no ACL matches), with
the users and ACLs of its own access plan (``launchrelay access apply``). RU's centre runs the mirror for what CN
sends it, reading CN's cluster as the user CN issued (``<prefix>-link-ru``) and writing RU's as RU's own mirror
user. The mirror works with exactly those grants (a record crosses), and the issued credential, the only one RU
holds for CN's cluster, can read CN's link topic for RU and nothing else, and write nothing at all."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from launchrelay.access import access_plan
from launchrelay.agreements.config import load_config
from launchrelay.centres import centre_config, centre_keys
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.provision.local import LocalBroker, free_port
from launchrelay.provision.mirror import ClusterAccess, LocalMirror
from test_isolation import sasl_env, scram, write

pytestmark = [pytest.mark.kafka, pytest.mark.two_centres, pytest.mark.timeout(600)]


class SecureCentre:
    def __init__(self, party: str, base: Path) -> None:
        self.party = party
        self.dir = base / party
        self.broker = LocalBroker(self.dir / "kafka", port=free_port(), controller_port=free_port(),
                                  admin_password=secrets.token_urlsafe(12), tls=True)  # fmt: skip
        self.passwords: dict[str, str] = {}
        self.users: dict[str, str] = {}

    def creds(self, who: str) -> dict[str, Any]:
        user = self.users[who]
        return scram(user, self.passwords[user], self.broker.ca_file)

    def access(self, who: str) -> ClusterAccess:
        """How a Java client (the mirror) logs in here as ``who``."""
        user = self.users[who]
        return ClusterAccess(self.party, self.broker.bootstrap, "SASL_SSL", "SCRAM-SHA-512", user,
                             self.passwords[user], self.broker.ca_file)  # fmt: skip


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SecureCentre]]:
    base = tmp_path_factory.mktemp("secure-centres")
    keys = centre_keys(base / "keys")
    centres = {p: SecureCentre(p, base) for p in ("CN", "RU")}
    for c in centres.values():
        c.broker.launch()
    try:
        for c in centres.values():
            c.broker.wait_ready()
        for p, c in centres.items():
            other = centres["RU" if p == "CN" else "CN"]
            c.dir.mkdir(parents=True, exist_ok=True)
            config = c.dir / "launchrelay.toml"
            config.write_text(centre_config(p, keys, "lr", other.broker.bootstrap))
            d = load_config(config)
            admin = c.broker.client_options
            asyncio.run(ensure_topics(c.broker.bootstrap, topic_specs(d.topics, list(d.parties), 3),
                                      client_options=admin))  # fmt: skip
            plan = access_plan(d)
            c.users = {p.party if p.role == "link" else (p.party or p.role): p.user for p in plan}
            c.passwords = {p.user: secrets.token_urlsafe(12) for p in plan}
            pw = c.dir / "passwords.toml"
            pw.write_text("".join(f'{u} = "{v}"\n' for u, v in c.passwords.items()))
            env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": c.broker.bootstrap, "LAUNCHRELAY_CONFIG": str(config),
                   "PATH": "/usr/local/bin:/usr/bin:/bin", **sasl_env(admin, c.broker.ca_file)}  # fmt: skip
            done = cli(env, "access", "apply", "--passwords", str(pw))
            assert done.returncode == 0, done.stderr
        yield centres
    finally:
        for c in centres.values():
            c.broker.stop()


def test_each_centres_plan_issues_a_read_only_user_for_the_other_mirror(secured: dict[str, SecureCentre]) -> None:
    """CN's plan: CN's own users, CN's mirror, and lr-link-ru (for RU's mirror); RU's the mirror image."""
    assert secured["CN"].users["RU"] == "lr-link-ru" and secured["RU"].users["CN"] == "lr-link-cn"
    assert secured["CN"].users["mirror"] == "lr-mirror"


async def test_the_mirror_crosses_with_least_privilege_and_its_credential_reads_nothing_else(
    secured: dict[str, SecureCentre],
) -> None:
    cn, ru = secured["CN"], secured["RU"]
    issued = cn.creds("RU")  # what RU's centre holds for CN's cluster: the only credential it has there
    # what CN may not give away: its party's traffic, its relay's records, its dead letters, its other link
    for topic in ("lr.CN.out", "lr.CN.in", "lr.status", "lr.deadletter", "lr.relay-state", "RU.lr.link.CN"):
        assert await read(cn.broker.bootstrap, issued, topic) != "ok", f"RU's mirror user can read {topic}"
    for topic in ("lr.link.RU", "lr.CN.out", "lr.CN.in", "RU.lr.link.CN", "lr.status"):
        assert await write(cn.broker.bootstrap, issued, topic) != "ok", f"RU's mirror user can write {topic}"
    # positive control: CN's relay writes its link topic; RU's mirror, with exactly its grants, copies it
    assert await write(cn.broker.bootstrap, cn.creds("relay"), "lr.link.RU") == "ok"
    assert await read(cn.broker.bootstrap, issued, "lr.link.RU") == "ok"
    mirror = LocalMirror(ru.dir / "mirror", cn.access("RU"), ru.access("mirror"), "lr.link.RU")
    await asyncio.to_thread(mirror.start)
    try:
        assert await first_value(ru.broker.bootstrap, ru.creds("relay"), "CN.lr.link.RU") == b"probe"
    finally:
        mirror.stop()
    assert "TopicAuthorizationException" not in mirror.log_path.read_text()


async def read(bootstrap: str, creds: dict[str, Any], topic: str) -> str:
    """'ok' when the user may fetch from ``topic`` (from the start, assigned), else the refusal's class name."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                request_timeout_ms=15000, **creds)  # fmt: skip
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        async with asyncio.timeout(8):  # refused, the client may retry finding a position without end
            await consumer.seek_to_beginning(tp)
            await consumer.getmany(tp, timeout_ms=2000)
            await consumer.position(tp)
        return "ok"
    except (KafkaError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        await consumer.stop()


async def first_value(bootstrap: str, creds: dict[str, Any], topic: str, timeout_s: float = 120) -> bytes | None:
    from aiokafka import AIOKafkaConsumer

    from launchrelay.kafka.consume import partitions_of

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed", **creds)  # fmt: skip
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < end:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                if records:
                    return bytes(records[0].value)
        return None
    finally:
        await consumer.stop()
