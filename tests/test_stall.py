"""Bounded retries, then quarantine; and a partition that cannot move is seen, not hidden.

The relay and the tracker run in this process against the real broker, with a
fault put in on purpose: a decide() that raises for marked records (a bug of
the relay's, as no real input does that any more), a decide() that cannot
reach the broker while a switch is on, a ledger that fails one event or every
write. Readiness is asked over HTTP from the same endpoint operators use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from structlog.testing import capture_logs

from harness import Deploy, hdr, make_deploy, message, read_topic, source_of
from launchrelay.agreements.config import load_config
from launchrelay.clients.publisher import Publisher
from launchrelay.kafka.produce import partition_for
from launchrelay.provision.local import free_port
from launchrelay.relay.decide import Decision, InboundRecord, RelayContext, decide
from launchrelay.relay.metrics import RelayMetrics
from launchrelay.relay.service import RelayOptions, RelayService
from launchrelay.relay.state import StateView
from launchrelay.runtime.health import OpsServer
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.metrics import TrackerMetrics
from launchrelay.tracker.service import TrackerOptions, TrackerService

pytestmark = pytest.mark.kafka
STALL_AFTER_S = 3.0


async def readyz(port: int) -> tuple[int, str]:
    """/readyz, asked from a thread: the endpoint answers on this very event loop."""
    return await asyncio.to_thread(_readyz, port)


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def ready(port: int) -> bool:
    return (await readyz(port))[0] == 200


async def unready(port: int) -> tuple[int, str] | None:
    answer = await readyz(port)
    return answer if answer[0] == 503 else None


async def until(check: Callable[[], Any], what: str, timeout_s: float = 45.0) -> Any:
    """Wait for ``check()`` (or the awaitable it returns) to be truthy, polling; fail naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what}")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running(service: Any, registry: Any) -> AsyncIterator[int]:
    """Start ``service`` with its ops endpoint; yield the port; stop it after."""
    port = free_port()
    ops = OpsServer("127.0.0.1", port, registry, service.ready)
    await ops.start()
    await service.start()
    task = asyncio.create_task(service.run())
    try:
        yield port
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 30)
        await service.stop()
        await ops.stop()


def relay_service(
    deploy: Deploy, decider: Callable[[InboundRecord, RelayContext, StateView], Decision]
) -> RelayService:
    options = RelayOptions(
        bootstrap=deploy.bootstrap, relay_id="relay-stall", signer=deploy.relay_signer,
        record_attempts=3, stall_after_s=STALL_AFTER_S, watch_every_s=0.5,
    )  # fmt: skip
    return RelayService(load_config(deploy.config), options, RelayMetrics(), decider=decider)


def gauge(registry: Any, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


async def test_record_failing_every_attempt_is_set_aside_as_internal_error(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A record whose decision raises every time is tried 3 times, then dead-lettered INTERNAL_ERROR with the
    error named, a receipt goes to its sender, and the notices behind it on the same partition are forwarded."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path, partitions=1)

    def buggy(record: InboundRecord, ctx: RelayContext, state: StateView) -> Decision:
        if b"explode" in (record.value or b""):
            raise RecursionError("maximum recursion depth exceeded")
        return decide(record, ctx, state)

    service = relay_service(deploy, buggy)
    bad = message("CN", ["RU"], notes={"en": "explode"})
    good = [message("CN", ["RU"]) for _ in range(3)]
    with capture_logs() as logs:
        async with (
            running(service, service.metrics.registry),
            Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn,
        ):
            sent = await cn.publish(bad)
            for m in good:
                await cn.publish(m)
            receipt = await cn.wait_receipt(bad.message_id, 60)
            outcomes = [(await cn.wait_receipt(m.message_id, 60)).outcome for m in good]
    assert receipt.outcome == "rejected" and [r.code for r in receipt.reasons] == ["INTERNAL_ERROR"]
    assert outcomes == ["forwarded"] * 3
    tries = [e for e in logs if e["event"] == "relay.record_failed" and e["offset"] == sent.offset]
    assert [e["attempt"] for e in tries] == [1, 2]  # the third attempt set it aside
    (aside,) = [e for e in logs if e["event"] == "relay.set_aside"]
    assert aside["log_level"] == "error" and aside["message_id"] == bad.message_id
    dead = await read_topic(deploy.bootstrap, deploy.topics.deadletter,
                            lambda rs: any(source_of(r) == (sent.topic, 0, sent.offset) for r in rs))  # fmt: skip
    (letter,) = [r for r in dead if source_of(r) == (sent.topic, 0, sent.offset)]
    assert hdr(letter, "lr-reasons") == b"INTERNAL_ERROR"
    assert hdr(letter, "lr-error") == b"RecursionError: maximum recursion depth exceeded"
    assert json.loads(letter.value)["message_id"] == bad.message_id  # the original bytes, kept


async def test_stalled_partition_turns_readiness_503_and_recovers(kafka_bootstrap: str, tmp_path: Path) -> None:
    """While the broker 'cannot be reached' for one record, its partition stalls: /readyz is 503 naming it, the
    oldest-pending gauge passes the limit, one WARNING per interval; once it can, the record goes and all is well."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path, partitions=1)
    blocked = asyncio.Event()
    blocked.set()

    def unreachable(record: InboundRecord, ctx: RelayContext, state: StateView) -> Decision:
        if blocked.is_set() and b"stuck" in (record.value or b""):
            raise KafkaConnectionError("broker unreachable (injected)")
        return decide(record, ctx, state)

    service = relay_service(deploy, unreachable)
    registry = service.metrics.registry
    topic = deploy.topics.outbound("CN")
    stuck = message("CN", ["RU"], notes={"en": "stuck"})
    with capture_logs() as logs:
        async with running(service, registry) as port:
            await until(lambda: ready(port), "ready before the fault")
            assert gauge(registry, "launchrelay_consumer_lag", topic=topic, partition="0") == 0  # series exist
            async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn:
                await cn.publish(stuck)
                _, why = await until(lambda: unready(port), "readiness turns 503", 30)
                assert f"stalled: {topic}:0" in why and "KafkaConnectionError" in why
                oldest = {"name": "launchrelay_oldest_pending_seconds", "topic": topic, "partition": "0"}
                await until(lambda: gauge(registry, **oldest) > STALL_AFTER_S, "the gauge passes the limit", 5)
                assert gauge(registry, "launchrelay_consumer_lag", topic=topic, partition="0") >= 1
                await asyncio.sleep(2 * STALL_AFTER_S)  # a few watch intervals: reports must not come per retry
                blocked.clear()
                assert (await cn.wait_receipt(stuck.message_id, 60)).outcome == "forwarded"
            await until(lambda: ready(port), "ready again once it moves")
    reports = [e for e in logs if e["event"] == "relay.partition_stalled"]
    assert reports and reports[0]["partition"] == f"{topic}:0" and reports[0]["log_level"] == "warning"
    # once per interval, however often the record was retried meanwhile (retries back off up to 10 s)
    retries = [e for e in logs if e["event"] == "relay.state_unavailable"]
    assert all(b["waited_s"] - a["waited_s"] >= STALL_AFTER_S - 1 for a, b in pairwise(reports)), reports
    assert len(reports) <= reports[-1]["waited_s"] / STALL_AFTER_S + 1 and len(retries) >= 3
    assert [e for e in logs if e["event"] == "relay.partition_moving"]


class FlakyLedger(SqliteLedger):
    """A ledger that cannot store one message's events, or (while ``broken``) anything at all."""

    def __init__(self, path: Path, poisoned: str) -> None:
        super().__init__(path)
        self.poisoned = poisoned
        self.broken = False

    def apply(self, events: Any, offsets: Any) -> None:
        if self.broken:
            raise OSError("disk I/O error (injected)")
        if any(e.message_id == self.poisoned for e in events):
            raise ValueError("cannot store this event (injected)")
        super().apply(events, offsets)


async def test_tracker_sets_aside_an_event_and_shows_a_stall(kafka_bootstrap: str, tmp_path: Path) -> None:
    """An event the ledger fails on every try is set aside (ERROR, counted) and later events are applied;
    a ledger that fails everything stalls the status topic visibly (503, gauge) until it works again."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path, partitions=1)
    relay = relay_service(deploy, decide)
    poisoned, after, during = message("CN", ["RU"]), message("CN", ["RU"]), message("CN", ["RU"])
    ledger = FlakyLedger(tmp_path / "ledger.sqlite", poisoned.message_id)
    metrics = TrackerMetrics()
    options = TrackerOptions(
        bootstrap=deploy.bootstrap, tracker_id="tracker-stall", signer=deploy.relay_signer, tick_s=0.2,
        event_attempts=3, stall_after_s=STALL_AFTER_S, watch_every_s=0.5, hooks=metrics,
    )  # fmt: skip
    tracker = TrackerService(load_config(deploy.config), options, ledger)
    status = deploy.topics.status
    with capture_logs() as logs:
        async with (
            running(relay, relay.metrics.registry),
            running(tracker, metrics.registry) as port,
            Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn,
        ):
            for m in (poisoned, after):
                assert (await cn.publish_and_wait(m, 60)).outcome == "forwarded"
            await until(lambda: ledger.find(after.message_id), "the event after the poisoned one is applied")
            assert ledger.find(poisoned.message_id) == []
            ledger.broken = True
            assert (await cn.publish_and_wait(during, 60)).outcome == "forwarded"
            _, why = await until(lambda: unready(port), "tracker readiness turns 503", 30)
            assert f"stalled: {status}:0" in why
            oldest = {"name": "launchrelay_oldest_pending_seconds", "topic": status, "partition": "0"}
            await until(lambda: gauge(metrics.registry, **oldest) > STALL_AFTER_S, "the gauge passes the limit", 5)
            ledger.broken = False
            await until(lambda: ledger.find(during.message_id), "applied once the ledger works again")
            await until(lambda: ready(port), "tracker ready again")
    (aside,) = [e for e in logs if e["event"] == "tracker.event_set_aside"]
    assert aside["log_level"] == "error" and aside["message_id"] == poisoned.message_id and aside["attempts"] == 3
    assert metrics.registry.get_sample_value("launchrelay_status_events_set_aside_total") == 1
    assert [e for e in logs if e["event"] == "tracker.partition_stalled"]
    ledger.close()


class HeldClaim(RelayService):
    """A relay whose claim of one partition hangs until released (a slow broker, a long state catch-up)."""

    def __init__(self, *args: Any, held: TopicPartition, release: asyncio.Event, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held, self.release = held, release

    async def _claim(self, tp: TopicPartition) -> Any:
        if tp == self.held:
            await self.release.wait()
        return await super()._claim(tp)


async def test_a_hanging_claim_stalls_only_its_own_partition(kafka_bootstrap: str, tmp_path: Path) -> None:
    """Claims run beside the batch loop: while partition 1's claim hangs, a notice on partition 0 is forwarded;
    once the claim completes, partition 1's notice is forwarded too, once."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path, partitions=2)
    topic = deploy.topics.outbound("CN")
    keys = {partition_for(f"CN-CLAIM-{i}".encode(), 2): f"CN-CLAIM-{i}" for i in range(20)}
    free, blocked = message("CN", ["RU"], launch_key=keys[0]), message("CN", ["RU"], launch_key=keys[1])
    release = asyncio.Event()
    options = RelayOptions(bootstrap=deploy.bootstrap, relay_id="relay-claims", signer=deploy.relay_signer,
                           watch_every_s=0.5)  # fmt: skip
    service = HeldClaim(load_config(deploy.config), options, RelayMetrics(), held=TopicPartition(topic, 1),
                        release=release)  # fmt: skip
    async with (
        running(service, service.metrics.registry),
        Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn,
    ):
        assert (await cn.publish(blocked)).partition == 1
        assert (await cn.publish(free)).partition == 0
        assert (await cn.wait_receipt(free.message_id, 60)).outcome == "forwarded"
        assert not release.is_set()  # partition 0 moved while partition 1's claim was still hanging
        release.set()
        assert (await cn.wait_receipt(blocked.message_id, 60)).outcome == "forwarded"
    forwards = await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"), lambda rs: len(rs) >= 2)
    assert sorted(json.loads(r.value)["message_id"] for r in forwards) == sorted([free.message_id, blocked.message_id])


async def test_idle_after_transactions_is_not_a_stall(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The status topic is written in transactions, so its end lies one past the last event (the commit marker):
    a tracker that has applied everything stays ready and reports no stall however long it idles."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path, partitions=1)
    relay = relay_service(deploy, decide)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    metrics = TrackerMetrics()
    options = TrackerOptions(
        bootstrap=deploy.bootstrap, tracker_id="tracker-idle", signer=deploy.relay_signer, tick_s=0.2,
        stall_after_s=STALL_AFTER_S, watch_every_s=0.5, hooks=metrics,
    )  # fmt: skip
    tracker = TrackerService(load_config(deploy.config), options, ledger)
    notice = message("CN", ["RU"])
    lag = {"name": "launchrelay_consumer_lag", "topic": deploy.topics.status, "partition": "0"}
    with capture_logs() as logs:
        async with (
            running(relay, relay.metrics.registry),
            running(tracker, metrics.registry) as port,
            Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn,
        ):
            assert (await cn.publish_and_wait(notice, 60)).outcome == "forwarded"
            await until(lambda: ledger.find(notice.message_id), "the tracker applies the event")
            await asyncio.sleep(3 * STALL_AFTER_S)  # idle past the stall limit, a dozen watch intervals
            answer, why = await readyz(port)
            assert answer == 200 or "stalled" not in why, why  # (a slow broker answer is another matter)
            assert gauge(metrics.registry, **lag) == 0
    assert [e for e in logs if e["event"] == "tracker.partition_stalled"] == []
    ledger.close()
