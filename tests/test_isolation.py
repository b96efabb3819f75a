"""Isolation, live: SASL/SCRAM over TLS and ACLs on a real broker, the access plan applied, real clients refused.

The broker is the project's local Kafka started as production clusters run:
TLS with a certificate from its own CA (which every client is given, as
``LAUNCHRELAY_KAFKA_SSL_CAFILE``), SCRAM authentication and the
StandardAuthorizer (deny when no ACL matches). Users and ACLs come from
``launchrelay access apply``, the same plan ``deploy strimzi`` renders, so a
grant too wide or too narrow in that plan fails here. Each refusal has a
positive control with the same probe, so a probe that could not read or write
anything would fail too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from confluent_kafka import Consumer, KafkaError, Producer

from harness import Deploy, RelayProcess, cli, ledger_state, ledger_view, make_deploy, message
from launchrelay.access import Grant, Principal, access_plan, managed_user, user_prefix
from launchrelay.agreements.config import load_config
from launchrelay.clients.inbox import Inbox
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import encode
from launchrelay.contract.messages import RecordRef
from launchrelay.kafka.access import apply_access, librdkafka_config
from launchrelay.kafka.quotas import user_quotas
from launchrelay.ops.records import read_record
from launchrelay.provision.local import LocalBroker, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="module")]


def scram(user: str, password: str, ca: Path | None) -> dict[str, Any]:
    """aiokafka options for a SCRAM user over TLS, trusting ``ca`` (None: the system's CAs only)."""
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": ssl.create_default_context(cafile=str(ca) if ca else None),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


@dataclass
class Secured:
    broker: LocalBroker
    deploy: Deploy
    users: dict[str, str]  # role or party code -> user name
    passwords: dict[str, str]  # user name -> password

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def ca(self) -> Path:
        return self.broker.ca_file

    def creds(self, who: str) -> dict[str, Any]:
        user = self.users[who]
        return scram(user, self.passwords[user], self.ca)

    def env(self, who: str) -> dict[str, str]:
        return sasl_env(self.creds(who), self.ca)

    def operator_env(self) -> dict[str, str]:
        """The environment of an operator's command: its Kafka user, and the key redrives are signed with."""
        d = self.deploy
        return {"LAUNCHRELAY_BOOTSTRAP_SERVERS": self.bootstrap, "LAUNCHRELAY_CONFIG": str(d.config),
                "PATH": "/usr/local/bin:/usr/bin:/bin", "LAUNCHRELAY_OPERATOR_KEY": str(d.operator_key),
                "LAUNCHRELAY_OPERATOR_KEY_ID": d.operator_signer.key_id, **self.env("operator")}  # fmt: skip

    @contextlib.asynccontextmanager
    async def services(self, name: str) -> AsyncIterator[tuple[RelayProcess, RelayProcess]]:
        """The relay and the tracker as processes, each logged in as its own user of the plan."""
        relay = RelayProcess(self.deploy, f"relay-{name}", extra_env=self.env("relay")).start()
        tracker = RelayProcess(self.deploy, f"tracker-{name}", command="tracker", extra_env=self.env("tracker"))
        tracker.start()
        try:
            await relay.wait("relay.started")
            await tracker.wait("tracker.started")
            yield relay, tracker
        finally:
            relay.ensure_stopped()
            tracker.ensure_stopped()


def sasl_env(options: dict[str, Any], ca: Path) -> dict[str, str]:
    """The settings' environment variables for a client with these aiokafka options."""
    return {
        "LAUNCHRELAY_KAFKA_SECURITY_PROTOCOL": options["security_protocol"],
        "LAUNCHRELAY_KAFKA_SSL_CAFILE": str(ca),
        "LAUNCHRELAY_KAFKA_SASL_MECHANISM": options["sasl_mechanism"],
        "LAUNCHRELAY_KAFKA_SASL_USERNAME": options["sasl_plain_username"],
        "LAUNCHRELAY_KAFKA_SASL_PASSWORD": options["sasl_plain_password"],
    }


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        data_dir=tmp_path_factory.mktemp("kafka-sasl"),
        port=free_port(),
        controller_port=free_port(),
        admin_password=secrets.token_urlsafe(12),
        tls=True,
    )
    with broker:
        yield broker


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured(secure_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    admin = secure_broker.client_options
    deploy = await make_deploy(secure_broker.bootstrap, tmp_path_factory.mktemp("isolation"), client_options=admin)
    yield plan_applied(secure_broker, deploy)


def plan_applied(secure_broker: LocalBroker, deploy: Deploy) -> Secured:
    """``deploy``'s access plan applied to the broker by the operator's command (its users are named after the
    deployment's prefix, so two deployments on one broker keep apart)."""
    admin = secure_broker.client_options
    plan = access_plan(load_config(deploy.config))
    users = {p.party or p.role: p.user for p in plan}
    passwords = {p.user: secrets.token_urlsafe(12) for p in plan}
    pw_file = deploy.dir / "passwords.toml"
    pw_file.write_text("".join(f'{u} = "{pw}"\n' for u, pw in passwords.items()))
    # The operator's command, as the superuser: users with their passwords, and every ACL of the plan.
    env = {
        "LAUNCHRELAY_BOOTSTRAP_SERVERS": secure_broker.bootstrap,
        "LAUNCHRELAY_CONFIG": str(deploy.config),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **sasl_env(admin, secure_broker.ca_file),
    }
    done = cli(env, "access", "apply", "--passwords", str(pw_file))
    assert done.returncode == 0, done.stderr
    assert f"{len(plan)} users set" in done.stdout
    assert admin["sasl_plain_password"] not in done.stdout + done.stderr
    return Secured(secure_broker, deploy, users, passwords)


async def write(bootstrap: str, creds: dict[str, Any], topic: str) -> str:
    """'ok' when one record lands on ``topic``, else the refusal's class name."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000, **creds)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"probe", key=b"probe")
        return "ok"
    except TopicAuthorizationFailedError as exc:
        return type(exc).__name__
    finally:
        await producer.stop()


def read(s: Secured, creds: dict[str, Any], topic: str, group: str, timeout_s: float = 30.0) -> str:
    """'ok' when a record is read from ``topic`` (subscribed in ``group``), else the broker's error name.

    librdkafka reports a refused topic or group as an error event, where aiokafka
    retries its metadata request in silence; the refusal comes from the broker either way.
    """
    consumer = Consumer(
        librdkafka_config(s.bootstrap, creds, s.ca)
        | {"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False, "log_level": 3}
    )
    try:
        consumer.subscribe([topic])
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return "ok"
            if err.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED):
                return str(err.name())
        return "nothing within the timeout"
    finally:
        consumer.close()


async def connects(bootstrap: str, options: dict[str, Any]) -> bool:
    """Whether a client with these options gets a connection (refused: bad login, no SASL, untrusted CA)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    try:
        await asyncio.wait_for(admin.start(), 15)
        return True
    except (KafkaConnectionError, TimeoutError):
        return False
    finally:
        await admin.close()


async def visible(s: Secured, creds: dict[str, Any], topic: str) -> bool:
    """Whether the broker describes ``topic`` to this user (refused with TOPIC_AUTHORIZATION_FAILED otherwise)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap, **creds)
    await admin.start()
    try:
        (desc,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert desc["error_code"] in (0, 29), desc  # 29: TOPIC_AUTHORIZATION_FAILED
    return bool(desc["error_code"] == 0)


async def seed_in_topics(s: Secured) -> None:
    """One record on every partition of CN's and RU's in topics, written by the superuser.

    An allowed read then finds something, so "ok" is a real read; a refused
    read is told so by the broker whatever the topic holds.
    """
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, acks="all", **s.broker.client_options)
    await producer.start()
    try:
        for code in ("CN", "RU"):
            for partition in range(3):
                await producer.send_and_wait(s.deploy.topics.inbound(code), b"seed", partition=partition)
    finally:
        await producer.stop()


async def test_party_writes_only_its_own_out_topic(secured: Secured) -> None:
    """CN may write CN.out; every other topic, including its own in topic and RU's out topic, refuses it."""
    t = secured.deploy.topics
    cn = secured.creds("CN")
    assert await write(secured.bootstrap, cn, t.outbound("CN")) == "ok"
    for topic in (t.outbound("RU"), t.inbound("CN"), t.inbound("RU"), t.status, t.deadletter, t.relay_state):
        assert await write(secured.bootstrap, cn, topic) == "TopicAuthorizationFailedError", topic


async def test_party_reads_only_its_own_in_topic(secured: Secured) -> None:
    """CN may read CN.in; RU's in topic, every out topic and the relay's own topics refuse it."""
    await seed_in_topics(secured)
    t = secured.deploy.topics
    cn, group = secured.creds("CN"), f"{t.prefix}.inbox.CN"
    ok = await asyncio.to_thread(read, secured, cn, t.inbound("CN"), group)
    assert ok == "ok"
    for topic in (t.inbound("RU"), t.outbound("RU"), t.outbound("CN"), t.status, t.deadletter, t.relay_state):
        got = await asyncio.to_thread(read, secured, cn, topic, group)
        assert got == "TOPIC_AUTHORIZATION_FAILED", topic
    # The same probe, as RU, on RU's in topic: the refusals above are about CN, not the probe.
    assert await asyncio.to_thread(read, secured, secured.creds("RU"), t.inbound("RU"),
                                   f"{t.prefix}.inbox.RU") == "ok"  # fmt: skip


async def test_party_cannot_use_another_partys_group(secured: Secured) -> None:
    """Consumer groups are per party too: CN reading its own topic under RU's group name is refused."""
    t = secured.deploy.topics
    await seed_in_topics(secured)
    cn = secured.creds("CN")
    assert await asyncio.to_thread(read, secured, cn, t.inbound("CN"), f"{t.prefix}.inbox.CN-2") == "ok"
    got = await asyncio.to_thread(read, secured, cn, t.inbound("CN"), f"{t.prefix}.inbox.RU")
    assert got == "GROUP_AUTHORIZATION_FAILED"


async def test_operator_redrives_dead_letters_but_reads_no_forwarded_traffic(secured: Secured) -> None:
    """The watch's operator user lists dead letters, writes one back to its out topic and reads an out topic's
    record (the console's story page shows it); in topics and the status topic stay closed."""
    t = secured.deploy.topics
    op = secured.creds("operator")
    body = b'{"message_type": "planned_launch", "sender": "CN", "message_id": "cn-held"}'
    producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, acks="all", **secured.broker.client_options)
    await producer.start()
    try:  # a dead letter as the relay writes one
        headers = [("lr-signature", b"c2ln"), ("lr-key-id", b"cn-k1"), ("lr-reasons", b"UNKNOWN_KEY"),
                   ("lr-source-topic", t.outbound("CN").encode()), ("lr-source-partition", b"0"),
                   ("lr-source-offset", b"0")]  # fmt: skip
        meta = await producer.send_and_wait(t.deadletter, body, key=b"CN-1", headers=headers)
    finally:
        await producer.stop()
    env = secured.operator_env()

    def ops(*args: str) -> str:
        done = cli(env, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    ref = f"{meta.partition}:{meta.offset}"
    listed = await asyncio.to_thread(ops, "deadletters", "--json")
    assert [r["ref"] for r in json.loads(listed) if r["message_id"] == "cn-held"] == [ref]
    out = await asyncio.to_thread(ops, "redrive", ref)
    assert out.startswith(f"{t.deadletter}:{ref} -> {t.outbound('CN')}:")
    # The console, as this user, shows a notification's original bytes: it reads the out topics (whose refused
    # records it already reads in the dead letters), here the copy it just wrote back.
    copy = RecordRef.parse(out.split(" -> ")[1].split()[0])
    found = await read_record(secured.bootstrap, copy, op)
    assert found is not None and found.value == body
    # What the relay forwards is not the operator's to read (not even to see: Read would imply Describe), nor to
    # write.
    assert await visible(secured, op, t.deadletter)
    for topic in (t.inbound("CN"), t.inbound("RU"), t.status):
        assert not await visible(secured, op, topic), topic
        assert await write(secured.bootstrap, op, topic) == "TopicAuthorizationFailedError"


async def test_unauthenticated_clients_are_refused(secured: Secured) -> None:
    """A wrong password, no SASL, or a client that does not trust the brokers' CA gets no connection."""
    user = secured.users["CN"]
    right = secured.passwords[user]
    assert await connects(secured.bootstrap, secured.creds("CN"))  # the probe can succeed
    for options in (scram(user, "not-the-password", secured.ca), {}, scram(user, right, None)):
        assert not await connects(secured.bootstrap, options)


async def test_relay_and_tracker_run_with_only_their_grants(secured: Secured) -> None:
    """The whole flow under least privilege: CN publishes, the relay forwards, RU acknowledges, the tracker records."""
    d = secured.deploy
    async with secured.services("sasl") as (relay, tracker):
        notice = message("CN", ["RU"])
        async with Publisher(d.bootstrap, "CN", d.signers["CN"], topic_prefix=d.prefix,
                             client_options=secured.creds("CN")) as cn:  # fmt: skip
            receipt = await cn.publish_and_wait(notice, timeout_s=60)
        assert receipt.outcome == "forwarded", receipt
        keys: dict[str, Any] = {p: {s.key_id: s.private_key.public_key()} for p, s in d.signers.items()}
        async with Inbox(d.bootstrap, "RU", d.signers["RU"], sender_keys=keys,
                         relay_keys={"relay-test": d.relay_signer.private_key.public_key()},
                         topic_prefix=d.prefix, client_options=secured.creds("RU")) as inbox:  # fmt: skip
            async with asyncio.timeout(60):
                async for item in inbox:
                    if item.message.message_id == notice.message_id:
                        await inbox.acknowledge(item.message)
                        break

        async with asyncio.timeout(60):
            while ledger_state(d, notice.message_id) != "acknowledged":
                await asyncio.sleep(0.3)
        for proc in (relay, tracker):
            assert proc.terminate() == 0
            errors = [e for e in proc.events() if e.get("level") in ("error", "critical")]
            assert errors == [], errors


async def test_prune_revokes_what_the_plan_no_longer_gives(secured: Secured) -> None:
    """A grant added by hand is taken back, and a party that leaves loses its user, by `apply --prune`."""
    t, d = secured.deploy.topics, secured.deploy
    plan = access_plan(load_config(d.config))

    async def apply(plan: list[Principal], passwords: dict[str, str] | None = None, prune: str | None = None) -> Any:
        return await asyncio.to_thread(apply_access, secured.bootstrap, plan, passwords or {},
                                       secured.broker.client_options, prune=prune, ca_file=secured.ca)  # fmt: skip

    prune = managed_user(d.prefix)
    cn, group = secured.creds("CN"), f"{t.prefix}.inbox.CN"
    await seed_in_topics(secured)
    # Someone widened CN's access by hand: CN can read RU's in topic.
    (cn_principal,) = [p for p in plan if p.party == "CN"]
    widened = replace(cn_principal, grants=(*cn_principal.grants, Grant("topic", t.inbound("RU"), ("Read",))))
    await apply([widened])
    assert await asyncio.to_thread(read, secured, cn, t.inbound("RU"), group) == "ok"
    # JP leaves: the plan without it, applied with prune.
    without_jp = [p for p in plan if p.party != "JP"]
    report = await apply(without_jp, prune=prune)
    assert report.removed_users == [secured.users["JP"]]
    jp_acls = [op for p in plan if p.party == "JP" for g in p.grants for op in g.operations]
    assert len(report.removed_acls) == 1 + len(jp_acls)
    assert await asyncio.to_thread(read, secured, cn, t.inbound("RU"), group) == "TOPIC_AUTHORIZATION_FAILED"
    assert not await connects(secured.bootstrap, secured.creds("JP"))
    # Everyone else is untouched, and applying again removes nothing more.
    assert await write(secured.bootstrap, cn, t.outbound("CN")) == "ok"
    again = await apply(without_jp, prune=prune)
    assert (again.removed_acls, again.removed_users) == ([], [])
    # Put JP back for whatever runs after this.
    jp_user = secured.users["JP"]
    await apply(plan, {jp_user: secured.passwords[jp_user]})


async def _apply(s: Secured, plan: list[Principal], passwords: dict[str, str] | None = None, **kw: Any) -> Any:
    return await asyncio.to_thread(apply_access, s.bootstrap, plan, passwords or {}, s.broker.client_options,
                                   ca_file=s.ca, **kw)  # fmt: skip


async def test_prune_touches_only_the_names_the_plan_can_produce(secured: Secured) -> None:
    """Principals that merely share the prefix (a person's account, another deployment's users) keep their logins,
    ACLs and quotas through `apply --prune`; `--dry-run` shows the revocation and changes nothing."""
    t, d = secured.deploy.topics, secured.deploy
    users = user_prefix(d.prefix)
    outsiders = [f"{users}admin", f"{users}staging-party-cn", f"{users}staging-relay"]
    passwords = {u: secrets.token_urlsafe(12) for u in outsiders}
    quota = (("producer_byte_rate", 12345.0),)
    by_hand = [Principal(u, "operator", (Grant("topic", t.deadletter, ("Read", "Describe")),), quotas=quota)
               for u in outsiders]  # fmt: skip
    await _apply(secured, by_hand, passwords)  # made by someone else, without prune
    plan = access_plan(load_config(d.config))
    (cn,) = [p for p in plan if p.party == "CN"]
    await _apply(secured, [replace(cn, grants=(*cn.grants, Grant("topic", t.inbound("RU"), ("Read",))))])
    env = {"LAUNCHRELAY_BOOTSTRAP_SERVERS": secured.bootstrap, "LAUNCHRELAY_CONFIG": str(d.config),
           "PATH": "/usr/local/bin:/usr/bin:/bin", **sasl_env(secured.broker.client_options, secured.ca)}  # fmt: skip

    dry = await asyncio.to_thread(cli, env, "access", "apply", "--prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove ACL: User:{cn.user} READ topic {t.inbound('RU')}" in dry.stdout, dry.stdout
    assert not any(u in dry.stdout for u in outsiders), dry.stdout
    group = f"{t.prefix}.inbox.CN"
    await seed_in_topics(secured)
    assert await asyncio.to_thread(read, secured, secured.creds("CN"), t.inbound("RU"), group) == "ok"  # unchanged

    done = await asyncio.to_thread(cli, env, "access", "apply", "--prune")
    assert done.returncode == 0, done.stderr
    assert "pruned: 1 ACLs, users none" in done.stdout, done.stdout
    assert await asyncio.to_thread(read, secured, secured.creds("CN"), t.inbound("RU"), group) == (
        "TOPIC_AUTHORIZATION_FAILED"
    )
    for user in outsiders:  # untouched: they log in, hold their grant, keep their quota
        creds = scram(user, passwords[user], secured.ca)
        assert await connects(secured.bootstrap, creds), user
        assert await visible(secured, creds, t.deadletter), user
    async with asyncio.timeout(30):  # quotas reach the brokers' view through the metadata log
        while True:
            quotas = await user_quotas(secured.bootstrap, secured.broker.client_options)
            if all(quotas.get(u) == dict(quota) for u in outsiders):
                break
            await asyncio.sleep(0.5)


def _flood(s: Secured, who: str, topic: str, count: int = 100, size: int = 1000) -> list[int]:
    """Write ``count`` records of ``size`` bytes as ``who``; the throttle times (ms) the broker answered with."""
    throttled: list[int] = []
    producer = Producer(librdkafka_config(s.bootstrap, s.creds(who), s.ca) | {
        "linger.ms": 200, "batch.size": 1_000_000, "acks": "all", "log_level": 3,
        "throttle_cb": lambda e: throttled.append(int(e.throttle_time * 1000)),
    })  # fmt: skip
    for i in range(count):
        producer.produce(topic, b"x" * size, key=f"flood-{i}".encode())
        producer.poll(0)
    assert producer.flush(60) == 0
    end = time.monotonic() + 3  # a throttle is reported with the response: give the callback its turn
    while time.monotonic() < end and not throttled:
        producer.poll(0.2)
    return [t for t in throttled if t > 0]


async def test_a_party_over_its_quota_is_throttled_and_another_is_not(secured: Secured) -> None:
    """The broker holds back a party past its producer_byte_rate; a party within its own rate is never throttled."""
    t, d = secured.deploy.topics, secured.deploy
    plan = access_plan(load_config(d.config))
    (us,) = [p for p in plan if p.party == "US"]
    assert dict(us.quotas) == {"producer_byte_rate": 1024 * 1024.0}  # the default every party gets
    tight = replace(us, quotas=(("producer_byte_rate", 2000.0),))
    await _apply(secured, [tight])
    try:
        async with asyncio.timeout(30):
            while (await user_quotas(secured.bootstrap, secured.broker.client_options)).get(us.user) != {
                "producer_byte_rate": 2000.0
            }:
                await asyncio.sleep(0.5)
        # ~100 kB each: five times US's 2 kB/s over the broker's 10-second rate window, a tenth of IN's 1 MiB/s
        assert await asyncio.to_thread(_flood, secured, "US", t.outbound("US")), "US was not throttled"
        assert await asyncio.to_thread(_flood, secured, "IN", t.outbound("IN")) == []
    finally:
        await _apply(secured, [us])


async def test_a_party_cannot_forge_an_operators_redrive(secured: Secured) -> None:
    """Under ACLs, a party that marks its own re-publish as a redrive gets a duplicate that says the mark was
    ignored; the operator's signed redrive is decided again, and names the operator in the log and the ledger."""
    d = secured.deploy
    async with secured.services("redrive") as (relay, _):
        late = message("CN", ["RU"], lead=timedelta(hours=2))  # CN-RU needs a day's notice: rejected
        value = encode(late)
        async with Publisher(d.bootstrap, "CN", d.signers["CN"], topic_prefix=d.prefix,
                             client_options=secured.creds("CN")) as cn:  # fmt: skip
            assert (await cn.publish_and_wait(late, timeout_s=60)).outcome == "rejected"
        async with Publisher(d.bootstrap, "CN", d.signers["CN"], topic_prefix=d.prefix,
                             client_options=secured.creds("CN")) as cn:  # fmt: skip
            forged = [
                *d.signers["CN"].headers(value),
                ("lr-redrive", b"x:0:0"),
                ("lr-redrive-by", b"watch-test"),
                ("lr-redrive-key-id", d.operator_signer.key_id.encode()),
                ("lr-redrive-signature", b"AAAA"),
            ]
            await cn.publish_raw(value, late.launch_key.encode(), forged)
            again = await cn.wait_receipt(late.message_id, 60)
        assert again.outcome == "duplicate", again
        assert [r.code for r in again.reasons] == ["DUPLICATE", "REDRIVE_UNAUTHENTICATED"]

        env = secured.operator_env()
        listed = await asyncio.to_thread(cli, env, "deadletters", "--json", "--reason", "LEAD_TIME_TOO_SHORT")
        assert listed.returncode == 0, listed.stderr
        (letter,) = [r for r in json.loads(listed.stdout) if r["message_id"] == late.message_id]
        async with Publisher(d.bootstrap, "CN", d.signers["CN"], topic_prefix=d.prefix,
                             client_options=secured.creds("CN")) as cn:  # fmt: skip
            done = await asyncio.to_thread(cli, env, "redrive", letter["ref"], "--by", "watch-alice")
            assert done.returncode == 0, done.stderr
            redriven = await cn.wait_receipt(late.message_id, 60)
        assert redriven.outcome == "rejected", redriven  # decided again (still too late), not a duplicate
        mark = f"{d.topics.deadletter}:{letter['ref']}"
        operator = f"watch-alice ({d.operator_signer.key_id})"
        async with asyncio.timeout(60):
            while not (committed := [e for e in relay.events() if e.get("redrive_of") == [mark]]):
                await asyncio.sleep(0.3)
        assert committed[0]["redriven_by"] == [operator]
        async with asyncio.timeout(60):  # the tracker's ledger keeps who redrove it, on the notification's timeline
            while not (notes := [e for e in (ledger_view(d, late.message_id) or {}).get("timeline", [])
                                 if "redriven_by" in e]):  # fmt: skip
                await asyncio.sleep(0.3)
        assert [(e["event"], e["redrive_of"], e["redriven_by"]) for e in notes] == [("rejected", mark, operator)]


async def test_with_the_decision_log_each_party_checks_its_own_proofs_and_reads_no_other(
    secure_broker: LocalBroker, tmp_path: Path
) -> None:
    """The decision log under least privilege (a deployment of its own that keeps it): the relay writes the log and
    the publisher of proofs, as the relay's user, sends each party its view; RU fetches its view with its own
    credentials and its verifier passes, with an inclusion proof of the notice CN sent it; RU is refused CN's
    proofs topic and the log topic itself."""
    from launchrelay.kafka.admin import ensure_topics, topic_specs
    from test_audit_relay import keep_the_log

    admin = secure_broker.client_options
    deploy = await make_deploy(secure_broker.bootstrap, tmp_path, client_options=admin)
    keep_the_log(deploy.config)
    d, t = load_config(deploy.config), deploy.topics
    await ensure_topics(deploy.bootstrap, topic_specs(t, list(d.parties), 3, 1, d.relay.max_message_bytes,
                                                      decision_log=True), client_options=admin)  # fmt: skip
    s = plan_applied(secure_broker, deploy)
    relay = RelayProcess(deploy, "relay-log", extra_env=s.env("relay")).start()
    proofs = RelayProcess(deploy, "proofs-log", command="audit publish", extra_env=s.env("relay"))
    try:
        await relay.wait("relay.partitions_assigned")
        proofs.start()
        await proofs.wait("proofs.started")
        notice = message("CN", ["RU"])
        async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix,
                             client_options=s.creds("CN")) as cn:  # fmt: skip
            assert (await cn.publish_and_wait(notice, timeout_s=60)).outcome == "forwarded"
        env = {**deploy.env("x"), **s.env("RU")}
        async with asyncio.timeout(60):
            while True:  # until the publisher has proved the notice's leaf to RU
                fetched = await asyncio.to_thread(cli, env, "audit", "fetch", "--party", "RU")
                assert fetched.returncode == 0, fetched.stderr
                held = [json.loads(line) for line in fetched.stdout.splitlines() if line.strip()]
                if any(x["type"] == "inclusion" for x in held):
                    break
                await asyncio.sleep(1)
        (tmp_path / "ru.jsonl").write_text(fetched.stdout)
        checked = await asyncio.to_thread(cli, env, "audit", "verify", str(tmp_path / "ru.jsonl"))
        assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked.stdout + checked.stderr
        group = f"{t.prefix}.inbox.RU"
        for topic in (t.proofs("CN"), t.decision_log):
            got = await asyncio.to_thread(read, s, s.creds("RU"), topic, group)
            assert got == "TOPIC_AUTHORIZATION_FAILED", topic
        for proc in (relay, proofs):
            assert proc.terminate() == 0
            errors = [e for e in proc.events() if e.get("level") in ("error", "critical")]
            assert errors == [], errors
    finally:
        relay.ensure_stopped()
        proofs.ensure_stopped()
