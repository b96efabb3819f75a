"""Test harness: a deployment of every preset with fresh keys, relay processes, and topic readers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from launchrelay.agreements.config import load_config
from launchrelay.contract import decode, encode
from launchrelay.contract.messages import PartyMessage
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.kafka.consume import partitions_of
from launchrelay.provision.local import free_port
from launchrelay.signing import Signer
from launchrelay.topics import Topics
from launchrelay.tracker import status
from launchrelay.tracker.ledger import SqliteLedger

PARTIES = ["CN", "RU", "US", "IN", "PK", "AT", "FR", "GB", "JP"]
BOUNDARY = {"type": "LineString", "coordinates": [[75.0, 20.0], [75.0, 36.0]]}


@dataclass
class Deploy:
    """One isolated deployment: its own topic prefix, keys and config file."""

    bootstrap: str
    prefix: str
    dir: Path
    config: Path
    relay_key: Path
    signers: dict[str, Signer]
    relay_signer: Signer
    #: the watch's operator key, registered in [relay] operator_keys: redrives are signed with it
    operator_signer: Signer
    topics: Topics = field(init=False)

    @property
    def operator_key(self) -> Path:
        return self.dir / "operator.pem"

    def __post_init__(self) -> None:
        self.topics = Topics(self.prefix)

    def env(self, relay_id: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHRELAY_")}
        env.update(
            LAUNCHRELAY_BOOTSTRAP_SERVERS=self.bootstrap,
            LAUNCHRELAY_CONFIG=str(self.config),
            LAUNCHRELAY_RELAY_KEY=str(self.relay_key),
            LAUNCHRELAY_RELAY_KEY_ID="relay-test",
            LAUNCHRELAY_RELAY_ID=relay_id,
            LAUNCHRELAY_LOG_FORMAT="json",
            LAUNCHRELAY_LOG_LEVEL="INFO",
            LAUNCHRELAY_LEDGER=str(self.dir / "ledger.sqlite"),
            LAUNCHRELAY_TRACKER_ID=relay_id,
            LAUNCHRELAY_TRACKER_TICK_S="0.2",
            LAUNCHRELAY_OPERATOR_KEY=str(self.operator_key),
            LAUNCHRELAY_OPERATOR_KEY_ID=self.operator_signer.key_id,
            LAUNCHRELAY_OPERATOR_NAME="watch-test",
        )
        return env


async def make_deploy(
    bootstrap: str,
    directory: Path,
    prefix: str | None = None,
    *,
    max_bytes: int = 65536,
    partitions: int = 3,
    extra_keys: dict[str, tuple[str, str]] | None = None,
    extra_config: str = "",
    client_options: dict[str, Any] | None = None,
    replication: int | None = 1,
) -> Deploy:
    """A deployment of every preset with fresh keys, and its topics on the broker (``replication`` None: as the
    relay creates them, by the cluster's size)."""
    d = deploy_config(bootstrap, directory, prefix, max_bytes=max_bytes, partitions=partitions,
                      extra_keys=extra_keys, extra_config=extra_config)  # fmt: skip
    await ensure_topics(
        bootstrap, topic_specs(d.topics, PARTIES, partitions, replication, max_bytes), client_options=client_options
    )
    return d


def deploy_config(
    bootstrap: str,
    directory: Path,
    prefix: str | None = None,
    *,
    max_bytes: int = 65536,
    partitions: int = 3,
    extra_keys: dict[str, tuple[str, str]] | None = None,
    extra_config: str = "",
) -> Deploy:
    """The deployment's config, keys and boundary file only (no broker is touched)."""
    prefix = prefix or f"t{uuid.uuid4().hex[:10]}"
    directory.mkdir(parents=True, exist_ok=True)
    signers = {p: Signer.generate(f"{p.lower()}-k1") for p in PARTIES}
    relay_signer = Signer.generate("relay-test")
    relay_key = directory / "relay.pem"
    relay_key.write_bytes(relay_signer.to_pem())
    operator_signer = Signer.generate("operator-test")
    (directory / "operator.pem").write_bytes(operator_signer.to_pem())
    (directory / "boundary.geojson").write_text(json.dumps(BOUNDARY))
    lines = [
        "[relay]",
        f'topic_prefix = "{prefix}"',
        'presets = ["CN-RU-2009", "US-RU-1988", "IN-PK-2005", "HCOC"]',
        f"max_message_bytes = {max_bytes}",
        f"partitions = {partitions}",
        f'keys = {{ relay-test = "{relay_signer.public_b64}" }}',
        f'operator_keys = {{ operator-test = "{operator_signer.public_b64}" }}',
        "",
        "[agreements.IN-PK-2005.geometry]",
        'boundary_file = "boundary.geojson"',
        # the test line runs south to north along 75 E: IN's test sites lie west of it, on its left
        'party_sides = { IN = "left", PK = "right" }',
        "",
    ]
    for code, signer in signers.items():
        keys = {signer.key_id: signer.public_b64}
        if extra_keys and code in extra_keys:
            keys[extra_keys[code][0]] = extra_keys[code][1]
        table = ", ".join(f'{kid} = "{b64}"' for kid, b64 in keys.items())
        lines += [f"[parties.{code}]", f'name = "{code}"', f"keys = {{ {table} }}", ""]
    config = directory / "launchrelay.toml"
    config.write_text("\n".join(lines) + "\n" + extra_config)
    deployment = load_config(config)
    assert set(deployment.agreements) == {"CN-RU-2009", "US-RU-1988", "IN-PK-2005", "HCOC"}
    return Deploy(bootstrap, prefix, directory, config, relay_key, signers, relay_signer, operator_signer)


class RelayProcess:
    """``python -m launchrelay relay`` (or ``tracker``) as a real process, logging JSON to a file."""

    def __init__(
        self,
        deploy: Deploy,
        relay_id: str = "relay-a",
        command: str = "relay",
        extra_env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        #: the interpreter (so the environment, so the release) the process runs
        self.python = python
        self.command = command
        self.extra_env = extra_env or {}
        self.deploy = deploy
        self.relay_id = relay_id
        self.log_path = deploy.dir / f"{relay_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> RelayProcess:
        self.starts += 1
        log = self.log_path.open("ab")
        log.write(f'{{"event":"test.spawn","n":{self.starts}}}\n'.encode())
        log.flush()
        self.proc = subprocess.Popen(
            [self.python, "-m", "launchrelay", *self.command.split()],
            env=self.deploy.env(self.relay_id) | self.extra_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def events_since_last_spawn(self) -> list[dict[str, Any]]:
        events = self.events()
        starts = [i for i, e in enumerate(events) if e.get("event") == "test.spawn"]
        return events[starts[-1] + 1 :] if starts else events

    def _seen(self, event: str) -> dict[str, Any] | None:
        for e in self.events_since_last_spawn():
            if e.get("event") == event:
                return e
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.command} exited with {self.proc.returncode}; log: {self.log_path}")
        return None

    def wait_for(self, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The first ``event`` this spawn logged, waiting for it (for code outside an event loop)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (found := self._seen(event)) is not None:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{self.command} did not log {event} within {timeout_s}s; log: {self.log_path}")

    async def wait(self, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
        """The same, in an async test: the event loop goes on while it waits."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if (found := self._seen(event)) is not None:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{self.command} did not log {event} within {timeout_s}s; log: {self.log_path}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m launchrelay ARGS`` with this environment, output captured."""
    return subprocess.run([sys.executable, "-m", "launchrelay", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


@contextlib.contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """``app`` (ASGI) served by uvicorn on a free loopback port, in a thread of its own; its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def publish_refused(deploy: Deploy) -> PartyMessage:
    """A notice from CN signed with a key not (yet) registered for CN: the relay refuses it KEY_UNKNOWN (a dead
    letter that registering the key and a redrive would let through)."""
    from launchrelay.clients.publisher import Publisher

    bad = message("CN", ["RU"])
    raw = encode(bad)
    unregistered = Signer.generate("cn-next-year")
    async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn:
        await cn.publish_raw(raw, bad.launch_key.encode(), unregistered.headers(raw))
        assert (await cn.wait_receipt(bad.message_id, 60)).outcome == "rejected"
    return bad


def bare_cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m launchrelay ARGS`` with only PATH, HOME=``cwd`` and ``env``: no setting of this process leaks."""
    base = {"PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "launchrelay", *args], env=base | (env or {}), cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def ledger_view(deploy: Deploy, message_id: str) -> dict[str, Any] | None:
    """The tracker ledger's timeline of one notification, as `launchrelay status ID` shows it."""
    ledger = SqliteLedger(deploy.dir / "ledger.sqlite")
    try:
        return status.timeline(ledger, message_id, datetime.now(UTC))
    finally:
        ledger.close()


def ledger_state(deploy: Deploy, message_id: str) -> str | None:
    view = ledger_view(deploy, message_id)
    return view["state"] if view else None


async def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[list[ConsumerRecord]], bool],
    timeout_s: float = 45.0,
) -> list[ConsumerRecord]:
    """All committed records of ``topic`` from the start, once ``until(records)`` holds."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        tps = await partitions_of(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            batch = await consumer.getmany(timeout_ms=300, max_records=10000)
            for recs in batch.values():
                records.extend(recs)
            if not batch and until(records):
                return records
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{topic}: condition not met within {timeout_s}s ({len(records)} records)")
    finally:
        await consumer.stop()


def hdr(record: ConsumerRecord, name: str) -> bytes | None:
    found = None
    for k, v in record.headers or ():
        if k == name:
            found = bytes(v)
    return found


def source_of(record: ConsumerRecord) -> tuple[str, int, int] | None:
    topic = hdr(record, "lr-source-topic")
    if topic is None:
        return None
    return (topic.decode(), int(hdr(record, "lr-source-partition") or 0), int(hdr(record, "lr-source-offset") or 0))


async def read_forwards(bootstrap: str, topic: str, ids: set[str], timeout_s: float = 120) -> list[ConsumerRecord]:
    """Every forward on ``topic`` (an in topic: records the relay copied, with their source), once each of ``ids``
    has arrived."""
    return await read_topic(
        bootstrap, topic,
        lambda rs: ids <= {json.loads(r.value).get("message_id") for r in rs if source_of(r)}, timeout_s=timeout_s,
    )  # fmt: skip


def assert_forwarded_once(forwards: list[ConsumerRecord], ids: set[str], *, only: bool = False) -> None:
    """Each of ``ids`` forwarded, none twice: the one check of "nothing lost, nothing doubled" the exactly-once
    tests share. A re-send the tracker made (marked ``lr-retransmission: N``) is its own copy; ``only``: nothing
    else was forwarded either."""
    copies = Counter((json.loads(r.value)["message_id"], hdr(r, "lr-retransmission")) for r in forwards if source_of(r))
    doubled = {k: n for k, n in copies.items() if n > 1}
    assert not doubled, f"{len(doubled)} forwarded twice, e.g. {next(iter(doubled.items()))}"
    arrived = {message_id for message_id, _ in copies}
    assert ids <= arrived, f"{len(ids - arrived)} never forwarded, e.g. {sorted(ids - arrived)[:3]}"
    if only:
        assert arrived == ids, f"forwarded besides: {sorted(arrived - ids)[:3]}"


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def message(
    sender: str = "CN",
    recipients: list[str] | None = None,
    agreement: str = "CN-RU-2009",
    *,
    message_type: str = "planned_launch",
    lead: timedelta = timedelta(days=3),
    window_length: timedelta = timedelta(days=1),
    **overrides: Any,
) -> PartyMessage:
    """A valid message built relative to the real clock (the relay judges lead time by broker time)."""
    data: dict[str, Any] = {
        "message_type": message_type,
        "message_id": f"{sender.lower()}-{uuid.uuid4().hex[:16]}",
        "agreement": agreement,
        "sender": sender,
        "recipients": recipients or ["RU"],
        "launch_key": f"{sender}-{uuid.uuid4().hex[:8]}",
        "created_at": iso(timedelta(0)),
    }
    if message_type == "planned_launch":
        data.update(
            vehicle={"category": "icbm", "generic_class": "test", "range_km": 9000.0},
            window={"start": iso(lead), "end": iso(lead + window_length)},
            launch_area={"kind": "circle", "centre": {"lat": 28.5, "lon": 73.0}, "radius": 5, "unit": "km"},
            impact_areas=[{"kind": "circle", "centre": {"lat": 25.0, "lon": 72.5}, "radius": 10, "unit": "km"}],
            # NE: toward the other party for both CN and RU ([I] CN-RU scope); the Hague Code asks for a direction
            direction={"sector": "NE"},
        )
    data.update(overrides)
    parsed = decode(json.dumps(data))
    assert parsed.message_type != "receipt"
    return parsed  # type: ignore[return-value]
