"""The broker the project starts supports what the relay relies on: transactions and groups."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import NewTopic

from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.kafka.consume import partitions_of
from launchrelay.topics import Topics

pytestmark = pytest.mark.kafka


async def _read_all(bootstrap: str, topic: str, isolation: str, expect_at_least: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values.extend(r.value for r in records)
            if len(values) >= expect_at_least and not batch:
                break
    finally:
        await consumer.stop()
    return values


async def test_committed_transaction_visible_aborted_not(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A read_committed consumer sees a committed transaction's records and never an aborted one's."""
    topic = f"{topic_prefix}.txn"
    await ensure_topics(kafka_bootstrap, [NewTopic(topic, 1, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"{topic_prefix}-tx")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
            await producer.send_and_wait(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3")
    finally:
        await producer.stop()

    committed = await _read_all(kafka_bootstrap, topic, "read_committed", 3)
    assert committed == [b"committed-1", b"committed-2", b"committed-3"]
    uncommitted = await _read_all(kafka_bootstrap, topic, "read_uncommitted", 4)
    assert b"aborted" in uncommitted  # the record was written, only hidden by the abort


async def test_consumer_group_commits_offsets(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A consumer group joins at once (no initial rebalance delay) and resumes from committed offsets."""
    topic = f"{topic_prefix}.grp"
    await ensure_topics(kafka_bootstrap, [NewTopic(topic, 1, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(4):
            await producer.send_and_wait(topic, f"m{i}".encode())
    finally:
        await producer.stop()

    async def consume(n: int) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"{topic_prefix}-g",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            async with asyncio.timeout(30):
                while len(got) < n:
                    batch = await consumer.getmany(timeout_ms=500, max_records=n - len(got))
                    for records in batch.values():
                        got.extend(r.value for r in records)
            await consumer.commit()
        finally:
            await consumer.stop()
        return got

    assert await consume(2) == [b"m0", b"m1"]
    assert await consume(2) == [b"m2", b"m3"]


async def test_created_topics_are_visible_at_once(kafka_bootstrap: str, topic_prefix: str) -> None:
    """`ensure_topics` returns only when a new client finds every partition: callers never race the metadata."""
    for round_ in range(3):
        topics = Topics(f"{topic_prefix}v{round_}")
        specs = topic_specs(topics, ["CN", "RU"], partitions=3)
        assert len(await ensure_topics(kafka_bootstrap, specs)) == len(specs)
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=None)
        await consumer.start()
        try:
            for spec in specs:
                tps = await partitions_of(consumer, spec.name, wait_s=0)
                assert [tp.partition for tp in tps] == [0, 1, 2]
        finally:
            await consumer.stop()
