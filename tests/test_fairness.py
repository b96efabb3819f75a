"""Fairness: one party's flood does not hold up another party's notices.

CN's out topic holds a backlog of 20,000 notices when the relay starts; RU sends one
notice a second for CN while it drains. The relay hands out at most a batch per
partition per round, so RU's partition has its turn in every round. The test asserts
what must hold (every quiet notice forwarded, in order, while the flood still drains);
the latencies are printed here and measured as a ratio by ``python -m bench.fairness``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from harness import Deploy, RelayProcess, make_deploy, message, read_topic
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import encode

pytestmark = pytest.mark.kafka

FLOOD = 20_000


async def _preload_flood(d: Deploy, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=d.bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        sends = []
        for i in range(n):
            notice = message("CN", ["RU"], launch_key=f"CN-FLOOD-{i % 64}")
            value = encode(notice)
            headers = d.signers["CN"].headers(value)
            sends.append(await producer.send(d.topics.outbound("CN"), value, key=notice.launch_key.encode(),
                                             headers=headers))  # fmt: skip
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def _from_ru(records: list[ConsumerRecord]) -> list[str]:
    docs = [json.loads(r.value) for r in records]
    return [doc["message_id"] for doc in docs if doc.get("sender") == "RU"]


def _flood_forwarded(relay: RelayProcess, topic: str) -> int:
    return sum(e.get("forwarded", 0) for e in relay.events() if e.get("event") == "relay.committed"
               and e.get("partition", "").startswith(topic + ":"))  # fmt: skip


async def test_a_flood_from_one_party_does_not_hold_up_another(kafka_bootstrap: str, tmp_path: Path) -> None:
    """While 20,000 of CN's notices drain, each of RU's one-a-second notices is forwarded, in order."""
    d = await make_deploy(kafka_bootstrap, tmp_path)
    await _preload_flood(d, FLOOD)
    relay = RelayProcess(d, "relay-fair").start()
    quiet: list[str] = []
    during: list[float] = []
    alone: list[float] = []
    try:
        async with Publisher(d.bootstrap, "RU", d.signers["RU"], topic_prefix=d.prefix) as ru:
            await relay.wait("relay.partitions_assigned")
            while _flood_forwarded(relay, d.topics.outbound("CN")) < FLOOD:
                started = time.monotonic()
                notice = message("RU", ["CN"], launch_key="RU-QUIET-1")
                receipt = await ru.publish_and_wait(notice, timeout_s=60)
                assert receipt.outcome == "forwarded", receipt
                quiet.append(notice.message_id)
                if _flood_forwarded(relay, d.topics.outbound("CN")) < FLOOD:  # forwarded while the flood drains
                    during.append(time.monotonic() - started)
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            for _ in range(5):  # the same notices with the relay idle
                started = time.monotonic()
                notice = message("RU", ["CN"], launch_key="RU-QUIET-1")
                assert (await ru.publish_and_wait(notice, timeout_s=60)).outcome == "forwarded"
                quiet.append(notice.message_id)
                alone.append(time.monotonic() - started)
        # the first is sent as the relay starts on the backlog; a machine draining it in under a second would
        # leave no second one to see, so the flood is sized for several seconds of draining here
        assert len(during) >= 2, f"only {len(during)} quiet notices went through while the flood drained"
        forwarded = await read_topic(d.bootstrap, d.topics.inbound("CN"), lambda rs: len(_from_ru(rs)) >= len(quiet))
        assert _from_ru(forwarded) == quiet  # every quiet notice once, in the order sent
    finally:
        relay.ensure_stopped()
    print(
        f"\nquiet party during a {FLOOD}-notice flood: p50 {statistics.median(during) * 1000:.0f} ms, "
        f"max {max(during) * 1000:.0f} ms over {len(during)}; alone: p50 {statistics.median(alone) * 1000:.0f} ms"
    )
