"""The main job for a newcomer: a broker, the relay and the tracker, and a short exchange CN <-> RU.

Under the CN-RU 2009 preset with demo-length deadlines: three planned launches,
a postponement, a cancellation, one invalid notification (rejected with
reasons), one acknowledgement that never comes (it times out), the rest
acknowledged. It ends with the status table and cleans up what it started.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from launchrelay.agreements.config import Deployment, parse_config
from launchrelay.clients.inbox import Inbox, InboxItem
from launchrelay.clients.publisher import Publisher
from launchrelay.contract.messages import Amendment, Cancellation, PartyMessage, PlannedLaunch
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.ops import deadletters
from launchrelay.ops.deadletters import read_dead_letters
from launchrelay.provision.local import free_port
from launchrelay.provision.provide import provide_broker
from launchrelay.settings import Settings, child_environment
from launchrelay.signing import Signer
from launchrelay.topics import Topics
from launchrelay.tracker import status
from launchrelay.tracker.ledger import SqliteLedger

DEMO_PARTIES = {"CN": "People's Republic of China", "RU": "Russian Federation"}
DEMO_DEADLINE_S = 8


def demo_keys(keys_dir: Path) -> dict[str, Signer]:
    """One signing key per demo party, one for the relay and one for the watch's operator (redrives), made on
    first use and kept under the data dir."""
    return keys_in(keys_dir, [*DEMO_PARTIES, "relay", "operator"])


def keys_in(keys_dir: Path, names: list[str]) -> dict[str, Signer]:
    """A signing key per name (key id ``<name>-demo``, lower case), made on first use and kept in ``keys_dir``."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    signers = {}
    for code in names:
        path = keys_dir / f"{code.lower()}.pem"
        key_id = f"{code.lower()}-demo"
        if path.exists():
            signers[code] = Signer.from_file(key_id, path)
        else:
            signers[code] = Signer.generate(key_id)
            path.write_bytes(signers[code].to_pem())
            path.chmod(0o600)
    return signers


def demo_config(signers: dict[str, Signer], prefix: str) -> str:
    """The CN-RU 2009 preset with the demo parties' keys and demo-length deadlines, as TOML."""
    relay, operator = signers["relay"], signers["operator"]
    lines = ["[relay]", f'topic_prefix = "{prefix}"', 'presets = ["CN-RU-2009"]', "partitions = 1",
             f'keys = {{ {relay.key_id} = "{relay.public_b64}" }}',
             f'operator_keys = {{ {operator.key_id} = "{operator.public_b64}" }}', ""]  # fmt: skip
    for code, name in DEMO_PARTIES.items():
        s = signers[code]
        lines += [f"[parties.{code}]", f'name = "{name}"', f'keys = {{ {s.key_id} = "{s.public_b64}" }}', ""]
    lines += [
        "[agreements.CN-RU-2009]",
        f'ack_deadline = "PT{DEMO_DEADLINE_S}S"   # demo length; the preset says PT1H',
        'retransmit = { every = "PT3S", max_attempts = 1 }',
        "",
    ]
    return "\n".join(lines)


def demo_deployment(signers: dict[str, Signer], prefix: str = "launchrelay") -> Deployment:
    import tomllib

    return parse_config(tomllib.loads(demo_config(signers, prefix)), origin="demo")


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _planned(n: int, now: datetime, **changes: Any) -> PlannedLaunch:
    data: dict[str, Any] = {
        "message_id": f"cn-demo-{uuid.uuid4().hex[:8]}",
        "agreement": "CN-RU-2009",
        "sender": "CN",
        "recipients": ["RU"],
        "launch_key": f"CN-DEMO-{n}",
        "created_at": _iso(now),
        "vehicle": {"category": "icbm", "generic_class": "DF-41", "range_km": 12000.0},
        "window": {"start": _iso(now + timedelta(days=2 + n)), "end": _iso(now + timedelta(days=3 + n))},
        "launch_area": {"kind": "circle", "centre": {"lat": 40.96, "lon": 100.29}, "radius": 20, "unit": "km"},
        "impact_areas": [{"kind": "circle", "centre": {"lat": 45.1, "lon": 110.4}, "radius": 50, "unit": "km"}],
        "direction": {"azimuth_deg": 60.0},
    }
    data.update(changes)
    return PlannedLaunch.model_validate_json(json.dumps(data))


async def _serve_console(
    settings: Settings,
    base: Path,
    ledger: Path,
    bootstrap: str,
    deployment: Deployment,
    operator: Signer,
    services: dict[str, str],
) -> None:
    """The console over the demo's ledger and dead letters, with an operator account made for it, until Ctrl-C:
    with the parties' keys (a notice's original bytes are checked against its sender's) and the relay's and the
    tracker's ops endpoints for its health page."""
    import secrets

    import uvicorn

    from launchrelay.console.accounts import Role, set_user
    from launchrelay.console.app import ConsoleConfig, build_app

    users = base / "console-users.toml"
    password = secrets.token_urlsafe(12)
    set_user(users, "watch", Role.OPERATOR, password)
    keys = {code: dict(party.keys) for code, party in deployment.parties.items()}
    app = build_app(ConsoleConfig(ledger=ledger, users=users, bootstrap=bootstrap,
                                  topic_prefix=deployment.relay.topic_prefix, operator_key=operator,
                                  party_keys=keys, services=services,
                                  agreements=dict(deployment.agreements),
                                  relay_keys=dict(deployment.relay.keys) if deployment.relay.decision_log
                                  else {}))  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host=settings.console_host, port=settings.console_port,
                                           log_config=None, access_log=False))  # fmt: skip
    serving = asyncio.create_task(server.serve())
    # uvicorn says it is listening only by this flag
    while not server.started and not serving.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if serving.done():
        await serving  # its error, e.g. the port is taken
        return
    _say(f"[console] http://{settings.console_host}:{settings.console_port}/  user: watch  password: {password}")
    _say("          relay and tracker keep running; Ctrl-C stops everything")
    await serving


class _Services:
    """The relay and the tracker as child processes, logging JSON to files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, metrics_port: int | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        env = self.env if metrics_port is None else {**self.env, "LAUNCHRELAY_METRICS_PORT": str(metrics_port)}
        with (self.logs / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "launchrelay", name], env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def wait_for(self, name: str, text: str, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        path = self.logs / f"{name}.log"
        while time.monotonic() < deadline:
            if text in path.read_text(errors="replace"):
                return
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"the {name} exited early; see {path}")
            time.sleep(0.2)
        raise RuntimeError(f"the {name} did not report {text!r} within {timeout_s:.0f}s; see {path}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _say(text: str) -> None:
    print(text, flush=True)


async def _until(check: Callable[[], bool], timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        if check():
            return True
        await asyncio.sleep(0.5)
    return check()


async def run_demo(settings: Settings, console: bool = False) -> int:
    """Start (or use) a broker, run relay and tracker, play a CN-RU exchange, print the status table; with
    ``console``, then serve the operators' console over it until Ctrl-C."""
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = (settings.data_dir / "demo" / run_id).resolve()
    base.mkdir(parents=True, exist_ok=True)
    signers = demo_keys(settings.data_dir.resolve() / "demo" / "keys")
    prefix = f"demo-{run_id}"
    config = base / "launchrelay.toml"
    config.write_text(demo_config(signers, prefix))
    deployment = demo_deployment(signers, prefix)
    topics = Topics(prefix)
    ledger_path = base / "ledger.sqlite"
    _say(f"launchrelay demo: CN and RU under {deployment.agreements['CN-RU-2009'].title}")
    _say(f"  acknowledgement deadline shortened to {DEMO_DEADLINE_S}s for the demo (preset: 1 hour)")
    with provide_broker(
        bootstrap=settings.bootstrap_servers,
        data_dir=settings.data_dir.resolve() / "broker",
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap_mb=settings.broker_heap_mb,
        cache_dir=settings.cache_dir,
        use_docker=settings.use_docker,
    ) as bootstrap:
        _say(f"[1/6] Kafka at {bootstrap}")
        await ensure_topics(bootstrap, topic_specs(topics, list(deployment.parties), 1))
        env = child_environment(
            {
                "LAUNCHRELAY_BOOTSTRAP_SERVERS": bootstrap,
                "LAUNCHRELAY_CONFIG": str(config),
                "LAUNCHRELAY_RELAY_KEY": str(settings.data_dir.resolve() / "demo" / "keys" / "relay.pem"),
                "LAUNCHRELAY_RELAY_KEY_ID": signers["relay"].key_id,
                "LAUNCHRELAY_LEDGER": str(ledger_path),
                "LAUNCHRELAY_LOG_FORMAT": "json",
                "LAUNCHRELAY_TRACKER_TICK_S": "0.3",
            }
        )
        services = _Services(env, base / "logs")
        try:
            ops = {name: free_port() for name in ("relay", "tracker")}  # their /readyz and /metrics, on loopback
            services.start("relay", ops["relay"])
            services.start("tracker", ops["tracker"])
            await asyncio.to_thread(services.wait_for, "relay", "relay.partitions_assigned")
            await asyncio.to_thread(services.wait_for, "tracker", "tracker.started")
            _say(f"[2/6] relay and tracker running (logs: {base / 'logs'})")
            code = await _exchange(bootstrap, prefix, signers, ledger_path)
            if console:
                urls = {name: f"http://127.0.0.1:{port}" for name, port in ops.items()}
                await _serve_console(settings, base, ledger_path, bootstrap, deployment, signers["operator"], urls)
        finally:
            services.stop()
        letters = [d.as_dict() for d in await read_dead_letters(bootstrap, topics)]
    _say("")
    ledger = SqliteLedger(ledger_path)
    try:
        _say(status.render_table(status.rows(ledger, status.Filters(), datetime.now(UTC))))
    finally:
        ledger.close()
    _say("")
    _say("Dead letters (`launchrelay deadletters`; when the relay's config was the cause, fix it and")
    _say("`launchrelay redrive REF`, signed with an operator key registered in [relay] operator_keys):")
    _say(deadletters.render_table(letters, topics))
    _say("")
    _say(f"Logs (JSON lines, one event per state change): {base / 'logs'}")
    _say(f"Ledger: {ledger_path}")
    _say(f"  LAUNCHRELAY_LEDGER={ledger_path} launchrelay status [--overdue|--json|MESSAGE_ID]")
    _say("Relay, tracker and the broker this demo started have been stopped.")
    return code


async def _exchange(bootstrap: str, prefix: str, signers: dict[str, Signer], ledger_path: Path) -> int:
    now = datetime.now(UTC)
    keys = {c: {signers[c].key_id: signers[c].private_key.public_key()} for c in DEMO_PARTIES}
    relay_keys = {signers["relay"].key_id: signers["relay"].private_key.public_key()}
    launches = [_planned(n, now) for n in (1, 2, 3)]
    silent = launches[2].message_id
    stop = asyncio.Event()
    acked: list[str] = []

    async def russia() -> None:
        async with Inbox(bootstrap, "RU", signers["RU"], sender_keys=keys, relay_keys=relay_keys,
                         topic_prefix=prefix) as inbox:  # fmt: skip

            async def handle(item: InboxItem) -> None:
                msg = item.message
                if msg.message_type in ("receipt", "acknowledgement") or item.retransmission:
                    return
                if msg.message_id == silent:
                    _say(f"      RU received {msg.message_id} but will not acknowledge it")
                    return
                await inbox.acknowledge(msg)  # type: ignore[arg-type]
                acked.append(msg.message_id)
                _say(f"      RU acknowledged {msg.message_id} ({msg.message_type})")

            await inbox.run(handle, stop)

    counterpart = asyncio.create_task(russia())
    async with Publisher(bootstrap, "CN", signers["CN"], topic_prefix=prefix, relay_keys=relay_keys) as cn:
        _say("[3/6] CN notifies three planned launches")
        for m in launches:
            r = await cn.publish_and_wait(m, 60)
            _say(f"      {m.message_id} ({m.launch_key}): {r.outcome}")
        postponed = Amendment(
            message_id=f"cn-demo-{uuid.uuid4().hex[:8]}", agreement="CN-RU-2009", sender="CN", recipients=["RU"],
            launch_key=launches[0].launch_key, created_at=datetime.now(UTC), refers_to=launches[0].message_id,
            window=launches[0].window.model_copy(update={"start": launches[0].window.start + timedelta(days=1),
                                                         "end": launches[0].window.end + timedelta(days=1)}),
            reason={"en": "postponed one day for weather", "ru": "перенесён на один день из-за погоды"},
        )  # fmt: skip
        cancelled = Cancellation(
            message_id=f"cn-demo-{uuid.uuid4().hex[:8]}", agreement="CN-RU-2009", sender="CN", recipients=["RU"],
            launch_key=launches[1].launch_key, created_at=datetime.now(UTC), refers_to=launches[1].message_id,
            reason={"en": "test cancelled", "zh": "试验取消"},
        )  # fmt: skip
        _say("[4/6] CN postpones launch 1 and cancels launch 2")
        for change in (postponed, cancelled):
            r = await cn.publish_and_wait(change, 60)
            _say(f"      {change.message_id} ({change.message_type} of {change.refers_to}): {r.outcome}")
        bad: PartyMessage = _planned(
            4, now, vehicle={"category": "other_ballistic_missile", "generic_class": "DF-15", "range_km": 600.0},
            window={"start": _iso(now + timedelta(hours=6)), "end": _iso(now + timedelta(hours=30))},
        )  # fmt: skip
        _say("[5/6] CN sends an invalid notification (short-range missile, six hours' notice)")
        r = await cn.publish_and_wait(bad, 60)
        _say(f"      {bad.message_id}: {r.outcome}")
        for reason in r.reasons:
            _say(f"        {reason.code}: {reason.message}")

    _say(f"[6/6] waiting for RU's acknowledgements and for the {DEMO_DEADLINE_S}s deadline on {silent}")

    def overdue() -> bool:
        if not ledger_path.exists():
            return False
        ledger = SqliteLedger(ledger_path)
        try:
            view = status.timeline(ledger, silent, datetime.now(UTC))
        finally:
            ledger.close()
        return bool(view and view["state"] == "overdue")

    ok = await _until(overdue, DEMO_DEADLINE_S + 60)
    _say(f"      {silent}: {'acknowledgement overdue: CN was alerted' if ok else 'no timeout seen (see logs)'}")
    await asyncio.sleep(1)
    stop.set()
    await counterpart
    return 0 if ok else 1
