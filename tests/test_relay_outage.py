"""Broker unavailable: the relay keeps retrying with backoff, drops nothing, and carries on when it returns."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from harness import RelayProcess, make_deploy, message, read_topic, source_of
from launchrelay.clients.publisher import Publisher
from launchrelay.errors import PublishTimeout
from launchrelay.provision.local import LocalBroker, free_port
from test_audit_relay import full_log, keep_the_log, party_view

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(400)]


async def test_relay_survives_a_broker_restart(tmp_path: Path) -> None:
    """A broker of its own is stopped for several seconds under the relay and started again: every notice
    published before and after is forwarded exactly once, and the relay process never exits. Relay and tracker
    say so in their own words (one WARNING while it is away, one INFO with the outage's length when it is
    back); a publish during the outage ends at its deadline with PublishTimeout. The relay keeps the decision log
    and its publisher of proofs is started while the broker is away: it does not exit either (a WARNING, and it
    tries again), and once the broker is back every head reaches the parties, each leaf proved to each once."""
    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    relay: RelayProcess | None = None
    tracker: RelayProcess | None = None
    proofs: RelayProcess | None = None
    try:
        deploy = await make_deploy(broker.bootstrap, tmp_path / "deploy")
        keep_the_log(deploy.config)
        # an outage is reported once it has lasted the stall limit, then once per that interval: 4 s here
        interval = {"LAUNCHRELAY_STALL_AFTER_S": "4"}
        relay = RelayProcess(deploy, "relay-outage", extra_env=interval).start()
        tracker = RelayProcess(deploy, "tracker-outage", command="tracker", extra_env=interval).start()
        await relay.wait("relay.partitions_assigned")
        await tracker.wait("tracker.started")
        before = [message("CN", ["RU"]) for _ in range(20)]
        after = [message("CN", ["RU"]) for _ in range(20)]
        async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn:
            for m in before:
                await cn.publish(m)
            for m in before:
                assert (await cn.wait_receipt(m.message_id, 60)).outcome == "forwarded"
            await asyncio.to_thread(broker.stop)
            started = asyncio.get_running_loop().time()
            late = message("CN", ["RU"])
            with pytest.raises(PublishTimeout, match="within 2s"):
                await cn.publish(late, timeout_s=2)
            assert asyncio.get_running_loop().time() - started < 5, "the deadline holds while the broker is away"
            # the publisher of proofs starts while the broker is away (as a pod may, before its cluster)
            proofs = RelayProcess(deploy, "proofs-outage", command="audit publish").start()
            await relay.wait("relay.broker_unreachable", 60)
            await tracker.wait("tracker.broker_unreachable", 60)
            assert relay.proc is not None and relay.proc.poll() is None, "the relay must not exit"
            away = await proofs.wait("proofs.restarting", 60)
            assert away["level"] == "warning" and "KafkaConnectionError" in away["error"], away
            assert proofs.proc is not None and proofs.proc.poll() is None, "the publisher must not exit"
            await asyncio.to_thread(broker.start)

            # the same publisher goes on; the record that timed out was still written ("may still be written")
            for m in after:
                await cn.publish(m, timeout_s=60)
            for m in [*after, late]:
                assert (await cn.wait_receipt(m.message_id, 120)).outcome == "forwarded"
        ids = {m.message_id for m in [*before, *after, late]}
        records = await read_topic(
            deploy.bootstrap,
            deploy.topics.inbound("RU"),
            lambda rs: len({json.loads(r.value)["message_id"] for r in rs} & ids) == len(ids),
            timeout_s=120,
        )
        copies = Counter(source_of(r) for r in records)
        assert len(copies) == len(ids) and set(copies.values()) == {1}
        assert relay.proc.poll() is None
        log = await full_log(deploy, len(ids))
        for party in ("CN", "RU"):
            held = await party_view(deploy, party, log)
            proved = Counter((s["log"], s["index"]) for s in held if s["type"] == "inclusion")
            assert len(proved) == len(ids) and set(proved.values()) == {1}, (party, proved.most_common(2))
        assert proofs.proc.poll() is None
        # The outage is in the log as JSON lines, the client library's included, its repeats summarised.
        lines = [json.loads(line) for line in relay.log_path.read_text().splitlines()]
        library = Counter(e["event"] for e in lines if str(e.get("logger", "")).startswith("aiokafka"))
        assert library, "the outage must be visible in the log"
        assert max(library.values()) <= 3, library.most_common(3)
        for service in (relay, tracker):
            name = service.command
            back = await service.wait(f"{name}.broker_reachable", 60)
            assert back["level"] == "info" and back["outage_s"] >= 3, back
            events = service.events()
            away = [e for e in events if e.get("event") == f"{name}.broker_unreachable"]
            assert away and all(e["level"] == "warning" for e in away)
            assert len(away) <= back["outage_s"] / 4 + 1, "one WARNING per interval, not one per attempt"
    finally:
        for service in (relay, tracker, proofs):
            if service is not None:
                service.ensure_stopped()
        broker.stop()
