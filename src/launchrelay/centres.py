"""Two national centres on one machine: each its own Kafka, relay, tracker and keys, joined by MirrorMaker 2.

What ``launchrelay demo --two-centres`` runs and what the two-centre tests drive::

    CN's planners -> [CN's Kafka] lr.CN.out -> CN's relay -> lr.link.RU
        --MirrorMaker 2 run by RU--> [RU's Kafka] CN.lr.link.RU -> RU's relay -> lr.RU.in -> RU's system
    RU's receipts and acknowledgements come back the same way (lr.link.CN -> CN.lr.link.CN ...).

Each centre's config names its own party (``[centre]``), the other's public keys, and the link to the other's
cluster with the other relay's key (``[links.XX]``); each relay signs with its own key. Nothing is shared but
the public keys: neither centre holds a credential of the other's cluster beyond its mirror's read-only one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from launchrelay.clients import Publisher
from launchrelay.contract.messages import Receipt
from launchrelay.demo import keys_in
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.provision.local import LocalBroker, free_port
from launchrelay.provision.mirror import ClusterAccess, LocalMirror
from launchrelay.settings import child_environment
from launchrelay.signing import Signer
from launchrelay.topics import Topics

PARTY_NAMES = {"CN": "People's Republic of China", "RU": "Russian Federation"}
#: the command line of each process a centre runs, by the name it is known by (its log file's)
COMMANDS = {"proofs": ("audit", "publish")}


def _other(party: str) -> str:
    return "RU" if party == "CN" else "CN"


def centre_config(party: str, keys: dict[str, Signer], prefix: str, other_bootstrap: str, extra: str = "",
                  decision_log: bool = False) -> str:  # fmt: skip
    """One centre's TOML: its party, both parties' keys, its relay's key and the link to the other centre (and,
    with ``decision_log``, the log kept with a head at least every second)."""
    other = _other(party)
    relay, other_relay = keys[f"relay-{party}"], keys[f"relay-{other}"]
    log = ["decision_log = true", 'log_head_interval = "PT1S"'] if decision_log else []
    lines = ["[relay]", f'topic_prefix = "{prefix}"', 'presets = ["CN-RU-2009"]', "partitions = 3",
             f'keys = {{ {relay.key_id} = "{relay.public_b64}" }}', *log, "",
             "[centre]", f'party = "{party}"', ""]  # fmt: skip
    for code, name in PARTY_NAMES.items():
        s = keys[code]
        lines += [f"[parties.{code}]", f'name = "{name}"', f'keys = {{ {s.key_id} = "{s.public_b64}" }}', ""]
    lines += [f"[links.{other}]", f'bootstrap = "{other_bootstrap}"',
              f'relay_keys = {{ {other_relay.key_id} = "{other_relay.public_b64}" }}', ""]  # fmt: skip
    return "\n".join(lines) + extra


def centre_keys(keys_dir: Path) -> dict[str, Signer]:
    """The parties' and both relays' signing keys, made on first use and kept."""
    return keys_in(keys_dir, ["CN", "RU", "relay-CN", "relay-RU"])


@dataclass
class LocalCentre:
    """One party's centre: its broker, config, relay and tracker processes, and the mirror it runs."""

    party: str
    dir: Path
    broker: LocalBroker
    keys: dict[str, Signer]
    prefix: str
    config: Path = field(init=False)
    mirror: LocalMirror | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    spawns: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = self.dir / "launchrelay.toml"

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @property
    def ledger(self) -> Path:
        return self.dir / "ledger.sqlite"

    def log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def env(self, name: str) -> dict[str, str]:
        return child_environment({
            "LAUNCHRELAY_BOOTSTRAP_SERVERS": self.bootstrap,
            "LAUNCHRELAY_CONFIG": str(self.config),
            "LAUNCHRELAY_RELAY_KEY": str(self.dir / "relay.pem"),
            "LAUNCHRELAY_RELAY_KEY_ID": self.keys[f"relay-{self.party}"].key_id,
            "LAUNCHRELAY_RELAY_ID": f"{name}-{self.party.lower()}",
            "LAUNCHRELAY_TRACKER_ID": f"tracker-{self.party.lower()}",
            "LAUNCHRELAY_LEDGER": str(self.ledger),
            "LAUNCHRELAY_LOG_FORMAT": "json",
            "LAUNCHRELAY_TRACKER_TICK_S": "0.3",
            "LAUNCHRELAY_DATA_DIR": str(self.dir / "data"),
        })  # fmt: skip

    def write(self, other_bootstrap: str, extra: str = "", decision_log: bool = False) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pem = self.dir / "relay.pem"
        pem.write_bytes(self.keys[f"relay-{self.party}"].to_pem())
        pem.chmod(0o600)
        self.config.write_text(centre_config(self.party, self.keys, self.prefix, other_bootstrap, extra,
                                             decision_log))  # fmt: skip

    async def make_topics(self) -> None:
        from launchrelay.agreements.config import load_config

        d = load_config(self.config)
        await ensure_topics(self.bootstrap, topic_specs(d.topics, list(d.parties), d.relay.partitions,
                                                        decision_log=d.relay.decision_log))  # fmt: skip

    def start(self, name: str) -> None:
        """Start ``relay``, ``tracker`` or ``proofs`` (``python -m launchrelay NAME``; ``audit publish`` for
        ``proofs``), logging JSON to ``logs/NAME.log``."""
        path = self.log(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.spawns[name] = self.spawns.get(name, 0) + 1
        with path.open("ab") as out:
            out.write(f'{{"event":"spawn","n":{self.spawns[name]}}}\n'.encode())
            out.flush()
            cmd = [sys.executable, "-m", "launchrelay", *COMMANDS.get(name, (name,))]
            self.procs[name] = subprocess.Popen(cmd, env=self.env(name), stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL)  # fmt: skip

    def wait_for(self, name: str, text: str, timeout_s: float = 120.0) -> None:
        """Until the latest spawn of ``name`` has logged ``text``."""
        deadline = time.monotonic() + timeout_s
        path = self.log(name)
        while time.monotonic() < deadline:
            latest = path.read_text(errors="replace").rsplit('{"event":"spawn"', 1)[-1]
            if text in latest:
                return
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} of {self.party} exited early; see {path}")
            time.sleep(0.2)
        raise RuntimeError(f"{name} of {self.party} did not log {text!r} within {timeout_s:.0f}s; see {path}")

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        if self.mirror is not None:
            self.mirror.stop()


class TwoCentres:
    """CN's and RU's centres, each with a single-node broker; each runs the mirror for what it receives."""

    def __init__(self, base: Path, keys: dict[str, Signer], prefix: str = "lr", extra: dict[str, str] | None = None,
                 cache_dir: Path | None = None, decision_log: bool = False) -> None:  # fmt: skip
        #: per party, TOML appended to its centre's config (e.g. a setting where the two sides differ)
        self.base, self.keys, self.prefix, self.extra = base, keys, prefix, extra or {}
        #: each centre keeps the decision log, runs its publisher of proofs, and its mirror copies the other's
        #: proofs for its party beside the link
        self.decision_log = decision_log
        self.centres = {
            p: LocalCentre(
                p,
                base / p,
                LocalBroker(base / p / "kafka", port=free_port(), controller_port=free_port(), cache_dir=cache_dir),
                keys,
                prefix,
            )
            for p in ("CN", "RU")
        }
        self.cache_dir = cache_dir

    def __getitem__(self, party: str) -> LocalCentre:
        return self.centres[party]

    def start_brokers(self) -> None:
        for c in self.centres.values():
            c.broker.launch()
        for c in self.centres.values():
            c.broker.wait_ready()
        for p, c in self.centres.items():
            c.write(self.centres[_other(p)].bootstrap, self.extra.get(p, ""), self.decision_log)

    async def make_topics(self) -> None:
        for c in self.centres.values():
            await c.make_topics()

    def new_mirror(self, party: str) -> LocalMirror:
        """The mirror ``party``'s centre runs: the other's ``P.link.<party>`` into ``party``'s cluster."""
        here, there = self.centres[party], self.centres[_other(party)]
        topics = Topics(self.prefix)  # the other centre's names (the same prefix) for what it sends this one
        also = (topics.proofs(party),) if self.decision_log else ()
        return LocalMirror(here.dir / "mirror", ClusterAccess(there.party, there.bootstrap),
                           ClusterAccess(here.party, here.bootstrap), topics.link_out(party), also=also,
                           cache_dir=self.cache_dir)  # fmt: skip

    def start_mirrors(self) -> None:
        for p, c in self.centres.items():
            c.mirror = self.new_mirror(p)
            c.mirror.launch()
        for c in self.centres.values():
            assert c.mirror is not None
            c.mirror.wait_ready(180)

    def start_services(self) -> None:
        for c in self.centres.values():
            c.start("relay")
            c.start("tracker")
        for c in self.centres.values():
            c.wait_for("relay", "relay.partitions_assigned")
            c.wait_for("tracker", "tracker.started")
            if self.decision_log:
                c.start("proofs")
                c.wait_for("proofs", "proofs.started")

    def stop(self) -> None:
        for c in self.centres.values():
            c.stop_all()
        for c in self.centres.values():
            c.broker.stop()


# --- `launchrelay init-centres` (compose's two-centre profile) -----------------------------------------------


def write_centres(root: Path, bootstraps: dict[str, str], prefix: str = "lr") -> list[Path]:
    """Both centres' files for a trial of two-centre mode where the two share one host's volumes (compose's
    ``two-centres`` profile): ``keys/`` (the parties' and both relays' keys), and per party ``P/launchrelay.toml``,
    ``P/relay.pem`` and ``P/mm2.properties`` (the mirror ``P``'s centre runs, as ``launchrelay link run`` would
    configure it: the other's ``prefix.link.P`` into ``P``'s cluster). Kept when they exist (keys stay keys)."""
    from launchrelay.provision.mirror import mirror_properties, render

    missing = {"CN", "RU"} - set(bootstraps)
    if missing:
        raise ValueError(f"an address for each centre's cluster: missing {', '.join(sorted(missing))}")
    keys = centre_keys(root / "keys")
    written = []
    for party in ("CN", "RU"):
        other = _other(party)
        centre = LocalCentre(party, root / party, LocalBroker(root / party / "unused"), keys, prefix)
        if not centre.config.exists():
            centre.write(bootstraps[other])
            written += [centre.config, centre.dir / "relay.pem"]
        mm2 = centre.dir / "mm2.properties"
        if not mm2.exists():
            props = mirror_properties(ClusterAccess(other, bootstraps[other]), ClusterAccess(party, bootstraps[party]),
                                      f"{prefix}.link.{party}")  # fmt: skip
            mm2.write_text(render(props))
            written.append(mm2)
    return written


# --- `launchrelay demo --two-centres` ---------------------------------------------------------------------------

DEMO_DEADLINE_S = 20
#: the demo's two centres differ in one rule, so that the disagreement both sides must see shows up
DEMO_EXTRA = {
    "CN": f'\n[agreements.CN-RU-2009]\nack_deadline = "PT{DEMO_DEADLINE_S}S"   # demo length; the preset says PT1H\n',
    "RU": '\n[agreements.CN-RU-2009]\nmin_lead = "PT72H"   # RU\'s centre is stricter than the preset (24 h)\n',
}


async def run_two_centres_demo(data_dir: Path, cache_dir: Path | None = None) -> int:
    """Two centres on this machine, an exchange across MirrorMaker 2, both sides' status tables; stops all."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from launchrelay.clients import Inbox, InboxItem
    from launchrelay.contract.messages import PlannedLaunch
    from launchrelay.signing import public_key_from_b64
    from launchrelay.tracker import status
    from launchrelay.tracker.ledger import SqliteLedger

    def say(text: str) -> None:
        print(text, flush=True)

    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = data_dir / "demo-two-centres"  # absolute: the caller resolves it
    base = root / run_id
    keys = centre_keys(root / "keys")
    tc = TwoCentres(base, keys, prefix="lr", extra=DEMO_EXTRA, cache_dir=cache_dir)
    say("launchrelay demo --two-centres: CN's centre and RU's, each its own Kafka, relay and tracker,")
    say("joined by MirrorMaker 2 (each centre runs the mirror for what it receives)")
    try:
        tc.start_brokers()
        await tc.make_topics()
        say(f"[1/5] two clusters: CN at {tc['CN'].bootstrap}, RU at {tc['RU'].bootstrap}")
        await asyncio.to_thread(tc.start_mirrors)
        say("[2/5] mirrors: RU's copies lr.link.RU from CN's cluster, CN's copies lr.link.CN from RU's")
        await asyncio.to_thread(tc.start_services)
        say("[3/5] each centre's relay and tracker running")

        now = datetime.now(UTC)

        def iso(at: datetime) -> str:
            return at.strftime("%Y-%m-%dT%H:%M:%SZ")

        def planned(n: int, lead: timedelta) -> PlannedLaunch:
            start, end = iso(now + lead), iso(now + lead + timedelta(hours=12))
            return PlannedLaunch.model_validate_json(json.dumps({
                "message_type": "planned_launch", "message_id": f"cn-2c-{run_id}-{n}", "agreement": "CN-RU-2009",
                "sender": "CN", "recipients": ["RU"], "launch_key": f"CN-2C-{n}", "created_at": iso(now),
                "vehicle": {"category": "icbm", "generic_class": "DF-41", "range_km": 12000.0},
                "window": {"start": start, "end": end},
                "launch_area": {"kind": "circle", "centre": {"lat": 40.96, "lon": 100.29}, "radius": 20, "unit": "km"},
                "impact_areas": [{"kind": "circle", "centre": {"lat": 45.1, "lon": 110.4}, "radius": 50, "unit": "km"}],
                "direction": {"azimuth_deg": 60.0},
            }))  # fmt: skip

        notices = [planned(1, timedelta(days=5)), planned(2, timedelta(days=6)), planned(3, timedelta(days=7))]
        short = planned(4, timedelta(hours=48))  # CN's 24 h minimum passes it; RU's 72 h refuses it
        silent = notices[2].message_id
        relays = {k.key_id: public_key_from_b64(k.public_b64) for k in (keys["relay-CN"], keys["relay-RU"])}
        cn_key = keys["CN"]
        stop = asyncio.Event()

        async def russia() -> None:
            async with Inbox(tc["RU"].bootstrap, "RU", keys["RU"], topic_prefix="lr",
                             sender_keys={"CN": {cn_key.key_id: public_key_from_b64(cn_key.public_b64)}},
                             relay_keys=relays) as inbox:  # fmt: skip

                async def handle(item: InboxItem) -> None:
                    msg = item.message
                    if msg.message_type != "planned_launch" or item.retransmission:
                        return
                    if msg.message_id == silent:
                        say(f"      RU's system received {msg.message_id} (through both centres) and stays silent")
                        return
                    await inbox.acknowledge(msg)
                    say(f"      RU's system received {msg.message_id} through both centres and acknowledged it")

                await inbox.run(handle, stop)

        counterpart = asyncio.create_task(russia())
        async with Publisher(tc["CN"].bootstrap, "CN", cn_key, topic_prefix="lr", relay_keys=relays) as cn:
            say("[4/5] CN's planners publish to CN's centre: three notices, and one only 48 hours ahead")
            for m in [*notices, short]:
                r = await cn.publish_and_wait(m, 60)
                say(f"      {m.message_id}: CN's centre {r.outcome} it")
            for m in [*notices, short]:
                try:
                    there = await _receipt_from(cn, m.message_id, "relay-ru", 90)
                except TimeoutError:
                    say(f"      {m.message_id}: no word from RU's centre yet")
                    continue
                codes = ", ".join(x.code for x in there.reasons)
                say(f"      {m.message_id}: RU's centre {there.outcome} it{f' ({codes})' if codes else ''}")
        say(f"[5/5] waiting for RU's acknowledgements and for the {DEMO_DEADLINE_S}s deadline on {silent}")
        await asyncio.sleep(DEMO_DEADLINE_S + 8)
        stop.set()
        await counterpart
        for party in ("CN", "RU"):
            ledger = SqliteLedger(tc[party].ledger)
            try:
                say(f"\n{party}'s centre, `launchrelay status`:")
                say(status.render_table(status.rows(ledger, status.Filters(), datetime.now(UTC))))
            finally:
                ledger.close()
        say(f"\nLogs and ledgers of both centres: {base}")
        return 0
    finally:
        tc.stop()
        say("Both centres' relays, trackers, mirrors and brokers have been stopped.")


async def _receipt_from(pub: Publisher, message_id: str, issuer: str, timeout_s: float) -> Receipt:
    """The receipt ``issuer`` (a relay id) sent for ``message_id``, as the publisher collected it."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        for r in pub.receipts_for(message_id):
            if r.issued_by == issuer:
                return r
        await asyncio.sleep(0.3)
    raise TimeoutError(message_id)
