"""The tracker with a real relay process, counterpart SDKs acknowledging, and a clock the test moves.

One scripted exchange runs once for this module with the presets' own
deadlines (CN-RU: an hour, re-sent every 15 minutes at most 3 times): the
tracker runs in this process on a clock the script moves forward, so no test
waits out a deadline. Each test checks one part of it: on time, late, timed out
after retransmissions, cancelled, a Hague Code notice acknowledged by one
recipient of two, and the operator's status output. Crashes of a tracker
process are tests/test_tracker_crash.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from harness import Deploy, RelayProcess, hdr, iso, ledger_view, make_deploy, message, read_topic
from launchrelay.agreements.config import load_config
from launchrelay.clients.inbox import Inbox
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import encode
from launchrelay.contract.messages import PartyMessage
from launchrelay.provision.local import free_port
from launchrelay.runtime.health import OpsServer
from launchrelay.signing import verify
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.metrics import TrackerMetrics
from launchrelay.tracker.service import TrackerOptions, TrackerService

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="module")]

# CN-RU keeps its preset (an hour; re-sent every 15 minutes, 3 times). The Hague Code notice falls due
# with it, and the US-RU notice stays pending through the whole script.
DEADLINES = """
[agreements.HCOC]
ack_deadline = "PT30M"

[agreements.US-RU-1988]
ack_deadline = "P2D"
"""


class MovedClock:
    """The real clock, moved forward by the script: deadlines fall due when the test says so."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.ahead

    def advance(self, delta: timedelta) -> None:
        self.ahead += delta


@dataclass
class Exchange:
    deploy: Deploy
    relay: RelayProcess
    clock: MovedClock
    ids: dict[str, PartyMessage] = field(default_factory=dict)
    seen_by: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    skipped: int = 0
    metrics_port: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)

    def view(self, name: str) -> dict[str, Any] | None:
        return ledger_view(self.deploy, self.ids[name].message_id)


def keyring(deploy: Deploy) -> dict[str, dict[str, Any]]:
    return {p: {s.key_id: s.private_key.public_key()} for p, s in deploy.signers.items()}


def acks(view: dict[str, Any]) -> list[dict[str, Any]]:
    """A notice's acknowledgement deliveries (not the report its sender may owe)."""
    return [d for d in view["deliveries"] if d["kind"] == "ack"]


async def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` when it has not within ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        await asyncio.sleep(0.2)


async def counterpart(ex: Exchange, party: str, ack: Callable[[PartyMessage], bool], stop: asyncio.Event) -> None:
    """A counterpart system: read the in topic, acknowledge what ``ack`` approves."""
    d = ex.deploy
    async with Inbox(
        d.bootstrap, party, d.signers[party], sender_keys=keyring(d),
        relay_keys={"relay-test": d.relay_signer.private_key.public_key()}, topic_prefix=d.prefix,
    ) as inbox:  # fmt: skip

        async def handle(item: Any) -> None:
            msg = item.message
            if msg.message_type in ("receipt", "acknowledgement"):
                return
            ex.seen_by.setdefault(party, []).append((msg.message_id, item.retransmission))
            if item.retransmission == 0 and ack(msg):
                await inbox.acknowledge(msg)

        await inbox.run(handle, stop)
        ex.skipped += inbox.skipped


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exchange(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exchange]:
    deploy = await make_deploy(kafka_bootstrap, tmp_path_factory.mktemp("tracker"), extra_config=DEADLINES)
    relay = RelayProcess(deploy, "relay-t").start()
    clock = MovedClock()
    metrics = TrackerMetrics()
    options = TrackerOptions(bootstrap=deploy.bootstrap, tracker_id="tracker-t", signer=deploy.relay_signer,
                             tick_s=0.1, clock=clock, hooks=metrics)  # fmt: skip
    ledger = SqliteLedger(deploy.dir / "ledger.sqlite")
    tracker = TrackerService(load_config(deploy.config), options, ledger)
    ops = OpsServer("127.0.0.1", free_port(), metrics.registry, tracker.ready, metrics.ready)
    ex = Exchange(deploy, relay, clock, metrics_port=ops.port)
    with capture_logs() as ex.logs:
        await ops.start()
        await tracker.start()
        running = asyncio.create_task(tracker.run())
        try:
            await ex.relay.wait("relay.partitions_assigned")
            await script(ex)
            yield ex
        finally:
            tracker.request_stop()
            await running
            await tracker.stop()
            await ops.stop()
            ledger.close()
            relay.ensure_stopped()


async def script(ex: Exchange) -> None:
    """Publish the exchange, let the counterparts answer, and move the clock through the deadlines."""
    deploy = ex.deploy
    ex.ids = {
        "on_time": message("CN", ["RU"]),
        "late": message("CN", ["RU"]),
        "silent": message("CN", ["RU"]),
        "cancelled": message("CN", ["RU"]),
        "hcoc": message("FR", ["AT", "GB"], "HCOC", lead=timedelta(hours=3)),
        "pending": message("US", ["RU"], "US-RU-1988", lead=timedelta(days=2)),
        "rejected": message("CN", ["RU"], lead=timedelta(hours=1)),
    }
    ex.ids["completed"] = message("CN", ["RU"])
    ex.ids["report"] = message(
        "CN", ["RU"], message_type="completed_launch", refers_to=ex.ids["completed"].message_id,
        # launched a minute ago, before the notified window: a report of what happened is forwarded (flagged
        # LAUNCH_OUTSIDE_WINDOW on CN's receipt); one dated in the future would be refused LAUNCHED_IN_FUTURE
        launch_key=ex.ids["completed"].launch_key, launched_at=iso(-timedelta(minutes=1)),
        vehicle=ex.ids["completed"].vehicle.model_dump(mode="json"),
        launch_area=ex.ids["completed"].launch_area.model_dump(mode="json"),
    )  # fmt: skip
    ex.ids["amended"] = message("CN", ["RU"])
    moved = ex.ids["amended"].window
    ex.ids["postpone"] = message(
        "CN", ["RU"], message_type="amendment", refers_to=ex.ids["amended"].message_id,
        launch_key=ex.ids["amended"].launch_key, reason={"en": "weather", "ru": "погода"},
        window={"start": (moved.start + timedelta(days=1)).isoformat(),
                "end": (moved.end + timedelta(days=1)).isoformat()},
    )  # fmt: skip
    ex.ids["cancel"] = message("CN", ["RU"], message_type="cancellation", refers_to=ex.ids["cancelled"].message_id,
                               launch_key=ex.ids["cancelled"].launch_key)  # fmt: skip
    # A forged record straight into RU's in topic: the counterpart SDK must not yield it.
    forged = encode(message("CN", ["RU"]))
    producer = AIOKafkaProducer(bootstrap_servers=deploy.bootstrap)
    await producer.start()
    await producer.send_and_wait(deploy.topics.inbound("RU"), forged, headers=deploy.signers["RU"].headers(forged))
    await producer.stop()

    never = {ex.ids[n].message_id for n in ("silent", "late", "cancelled", "pending")}
    stop = asyncio.Event()
    ru = asyncio.create_task(counterpart(ex, "RU", lambda m: m.message_id not in never, stop))
    at = asyncio.create_task(counterpart(ex, "AT", lambda m: True, stop))
    gb = asyncio.create_task(counterpart(ex, "GB", lambda m: False, stop))
    cn = ("on_time", "late", "silent", "cancelled", "cancel", "rejected", "completed", "report", "amended", "postpone")
    for sender, names in (("CN", cn), ("FR", ("hcoc",)), ("US", ("pending",))):
        async with Publisher(deploy.bootstrap, sender, deploy.signers[sender], topic_prefix=deploy.prefix,
                             watch_receipts=False) as pub:  # fmt: skip
            for name in names:
                await pub.publish(ex.ids[name])

    def state(name: str) -> str | None:
        v = ex.view(name)
        return v["state"] if v else None

    def retransmits(name: str) -> int:
        v = ex.view(name)
        return acks(v)[0]["retransmits"] if v and acks(v) else -1

    await wait_until(lambda: state("on_time") == "acknowledged", "on time")
    await wait_until(lambda: state("cancelled") == "cancelled", "cancelled")
    await wait_until(lambda: state("completed") == "completed", "completed")
    await wait_until(lambda: "amended" in [e["event"] for e in (ex.view("amended") or {"timeline": []})["timeline"]],
                     "amended")  # fmt: skip
    acked = ("amended", "postpone", "cancel", "report")
    await wait_until(lambda: all(state(n) == "acknowledged" for n in acked), "RU's acknowledgements recorded")
    await wait_until(lambda: state("pending") == "pending" and state("silent") == "pending", "the rest forwarded")
    for attempt in (1, 2, 3):  # every 15 minutes, a re-send of what is not acknowledged
        ex.clock.advance(timedelta(minutes=15))
        await wait_until(
            lambda n=attempt: retransmits("silent") == n and retransmits("late") == n, f"re-send {attempt}"
        )
    ex.clock.advance(timedelta(minutes=15, seconds=1))  # past the hour: the deadline
    await wait_until(lambda: state("late") == "overdue" and state("silent") == "overdue", "overdue after an hour")
    await wait_until(lambda: state("hcoc") == "overdue", "hcoc: GB overdue")
    # The counterpart finally acknowledges: recorded as late, never lost.
    async with Inbox(deploy.bootstrap, "RU", deploy.signers["RU"], sender_keys=keyring(deploy), relay_keys={},
                     topic_prefix=deploy.prefix, group_id="late-acker") as late_ru:  # fmt: skip
        await late_ru.acknowledge(ex.ids["late"])
    await wait_until(lambda: state("late") == "acknowledged_late", "late ack recorded")
    stop.set()
    await asyncio.gather(ru, at, gb)


async def overdue_receipts(ex: Exchange, party: str, name: str) -> list[dict[str, Any]]:
    d = ex.deploy
    records = await read_topic(d.bootstrap, d.topics.inbound(party), lambda rs: True)
    out = []
    for r in records:
        body = json.loads(r.value)
        if body.get("outcome") == "acknowledgement_overdue" and body.get("refers_to") == ex.ids[name].message_id:
            assert verify(d.relay_signer.private_key.public_key(), r.value, hdr(r, "lr-signature") or b"")
            out.append(body)
    return out


async def test_acknowledged_on_time(exchange: Exchange) -> None:
    """RU acknowledges at once: the ledger records it with its latency, and CN receives the acknowledgement."""
    view = exchange.view("on_time")
    assert view is not None and view["state"] == "acknowledged"
    (d,) = acks(view)
    assert d["state"] == "acknowledged" and 0 < d["latency_s"] < 60
    assert await overdue_receipts(exchange, "CN", "on_time") == []


async def test_acknowledged_late(exchange: Exchange) -> None:
    """An acknowledgement after the timeout is recorded as late; the overdue alert went out exactly once."""
    view = exchange.view("late")
    assert view is not None and view["state"] == "acknowledged_late"
    events = [e["event"] for e in view["timeline"]]
    assert events.index("timed_out") < events.index("acknowledged_late")
    assert len(await overdue_receipts(exchange, "CN", "late")) == 1


async def test_timed_out_after_retransmissions(exchange: Exchange) -> None:
    """CN-RU preset: re-sent 3 times (every 15 minutes), then at the hour one signed overdue receipt to CN and a
    WARNING log line."""
    view = exchange.view("silent")
    assert view is not None and view["state"] == "overdue"
    assert acks(view)[0]["retransmits"] == 3
    mid = exchange.ids["silent"].message_id
    assert sorted(n for m, n in exchange.seen_by["RU"] if m == mid) == [0, 1, 2, 3]
    (receipt,) = await overdue_receipts(exchange, "CN", "silent")
    assert receipt["forwarded_to"] == ["RU"] and receipt["recipient"] == "CN"
    warnings = [
        e for e in exchange.logs
        if e.get("event") == "tracker.acknowledgement_overdue" and e.get("message_id") == mid
    ]  # fmt: skip
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert warnings[0]["launch_key"] == exchange.ids["silent"].launch_key and warnings[0]["recipient"] == "RU"
    events = [e["event"] for e in view["timeline"]]
    assert events.count("retransmitted") == 3 and events.count("timed_out") == 1


async def test_cancelled_before_deadline(exchange: Exchange) -> None:
    """A cancellation stops the notice's deadline: no overdue alert, delivery stopped."""
    view = exchange.view("cancelled")
    assert view is not None and view["state"] == "cancelled"
    assert [d["state"] for d in view["deliveries"]] == ["stopped", "stopped"]  # RU's ack and CN's report
    assert await overdue_receipts(exchange, "CN", "cancelled") == []


async def test_completed_launch_report_closes_the_notification(exchange: Exchange) -> None:
    """A completed-launch report referring to a notice marks it completed in the ledger and its timeline."""
    view = exchange.view("completed")
    assert view is not None and view["state"] == "completed"
    assert "completed" in [e["event"] for e in view["timeline"]]


async def test_hague_code_one_recipient_acknowledges(exchange: Exchange) -> None:
    """Hague Code notice to AT and GB: AT acknowledges, GB does not; the alert names GB only."""
    view = exchange.view("hcoc")
    assert view is not None
    states = {d["recipient"]: d["state"] for d in acks(view)}
    assert states == {"AT": "acknowledged", "GB": "timed_out"}
    (receipt,) = await overdue_receipts(exchange, "FR", "hcoc")
    assert receipt["forwarded_to"] == ["GB"]


async def test_counterpart_sdk_skips_forgeries(exchange: Exchange) -> None:
    """The inbox verifies end to end: a record whose signature does not match its sender is never yielded."""
    assert exchange.skipped >= 1
    assert all(p in exchange.seen_by for p in ("RU", "AT", "GB"))


async def test_tracker_metrics_and_readiness(exchange: Exchange) -> None:
    """The tracker's /metrics counts timeouts, retransmissions and acknowledgement latency; /readyz is ready."""
    from test_ops import get, metric

    base = f"http://127.0.0.1:{exchange.metrics_port}"
    assert (await asyncio.to_thread(get, f"{base}/readyz"))[0] == 200
    _, text = await asyncio.to_thread(get, f"{base}/metrics")
    assert metric(text, "launchrelay_timeouts_total", agreement="CN-RU-2009", recipient="RU") == 2
    assert metric(text, "launchrelay_timeouts_total", agreement="HCOC", recipient="GB") == 1
    assert metric(text, "launchrelay_retransmissions_total", agreement="CN-RU-2009", recipient="RU") == 6
    assert metric(text, "launchrelay_ack_latency_seconds_count", agreement="CN-RU-2009") >= 3
    assert metric(text, "launchrelay_late_acks_total", agreement="CN-RU-2009") == 1
    assert metric(text, "launchrelay_overdue_deliveries") == 2  # silent (RU) and the Hague notice (GB)
    assert metric(text, "launchrelay_pending_deliveries") >= 1  # the US-RU notice, deadline one hour
    # series of every configured agreement and recipient exist from the start, at zero until an event
    assert 'launchrelay_timeouts_total{agreement="IN-PK-2005",recipient="PK"} 0.0' in text
    assert 'launchrelay_reports_overdue_total{agreement="HCOC"} 0.0' in text
    assert metric(text, "launchrelay_ready") == 1


def run_status(ex: Exchange, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launchrelay", "status", *args],
        env=ex.deploy.env("status"), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_status_table_text_and_json(exchange: Exchange) -> None:
    """`launchrelay status` lists every state; --json says the same; filters narrow it."""
    table = json.loads(run_status(exchange, "--json").stdout)
    by_id = {r["id"]: r["state"] for r in table}
    expected = {
        "on_time": "acknowledged", "late": "acknowledged_late", "silent": "overdue", "cancelled": "cancelled",
        "hcoc": "overdue", "pending": "pending", "rejected": "rejected", "completed": "completed",
    }  # fmt: skip
    for name, state in expected.items():
        assert by_id[exchange.ids[name].message_id] == state, name
    text = run_status(exchange).stdout
    for name, state in expected.items():
        line = next(x for x in text.splitlines() if exchange.ids[name].message_id in x)
        assert state in line
    assert "ACK / TIME LEFT" in text.splitlines()[0]
    pending = json.loads(run_status(exchange, "--pending", "--json").stdout)
    assert [r["id"] for r in pending] == [exchange.ids["pending"].message_id]
    overdue = {r["id"] for r in json.loads(run_status(exchange, "--overdue", "--json").stdout)}
    assert overdue == {exchange.ids["silent"].message_id, exchange.ids["hcoc"].message_id}
    fr = json.loads(run_status(exchange, "--party", "FR", "--json").stdout)
    assert [r["id"] for r in fr] == [exchange.ids["hcoc"].message_id]
    us = json.loads(run_status(exchange, "--agreement", "US-RU-1988", "--json").stdout)
    assert [r["id"] for r in us] == [exchange.ids["pending"].message_id]


async def test_status_timeline_of_one_notification(exchange: Exchange) -> None:
    """`launchrelay status ID` shows the timeline: retransmissions, timeout; and a rejection's reasons."""
    text = run_status(exchange, exchange.ids["silent"].message_id).stdout
    assert text.count("retransmitted") == 3 and "timed_out" in text and "forwarded" in text
    rejected = run_status(exchange, exchange.ids["rejected"].message_id)
    assert "LEAD_TIME_TOO_SHORT" in rejected.stdout and rejected.returncode == 0
    as_json = json.loads(run_status(exchange, exchange.ids["late"].message_id, "--json").stdout)
    assert [e["event"] for e in as_json["timeline"]][-1] == "acknowledged_late"


async def test_status_without_ledger(exchange: Exchange, tmp_path: Any) -> None:
    """Status says clearly when the ledger is missing, or when it is empty."""
    env = exchange.deploy.env("status") | {"LAUNCHRELAY_LEDGER": str(tmp_path / "none.sqlite")}
    missing = subprocess.run([sys.executable, "-m", "launchrelay", "status"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert missing.returncode == 1 and "no ledger at" in missing.stderr
    SqliteLedger(tmp_path / "empty.sqlite").close()
    env["LAUNCHRELAY_LEDGER"] = str(tmp_path / "empty.sqlite")
    empty = subprocess.run([sys.executable, "-m", "launchrelay", "status"], env=env, capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
    assert empty.returncode == 0 and "is empty" in empty.stdout


async def test_status_shows_the_notice_as_amended(exchange: Exchange) -> None:
    """`launchrelay status ID` shows the notice as it stands (the postponed window) and what the amendment changed."""
    view = json.loads(run_status(exchange, exchange.ids["amended"].message_id, "--json").stdout)
    postponed = exchange.ids["postpone"].window
    assert view["notice"]["window"]["start"] == postponed.start.isoformat().replace("+00:00", "Z")
    assert view["window_start"] == postponed.start.isoformat()
    (amended,) = [e for e in view["timeline"] if e["event"] == "amended"]
    assert amended["changed"] == ["window"] and amended["by"] == exchange.ids["postpone"].message_id
    text = run_status(exchange, exchange.ids["amended"].message_id).stdout
    assert "notice as it stands" in text and '"changed": ["window"]' in text
