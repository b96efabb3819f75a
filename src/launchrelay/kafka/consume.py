"""Helpers for the project's consumers that aiokafka leaves out: where a topic's partitions are, and whether
a consumer has reached the end offsets it was given."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CorruptRecordException, KafkaError, RecordTooLargeError, UnsupportedCodecError

from launchrelay.errors import KafkaRequestFailed

#: How long a fetch may wait for data. aiokafka leaves a partition whose records are still buffered out
#: of the next fetch request, so new data there waits for that request to end: with the default 500 ms,
#: up to half a second behind another partition's fetch. Every consumer of this project on a latency
#: path (the relay, its state reader, the SDK's inbox and receipts) uses this instead.
FETCH_WAIT_MS = 10


async def behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """True while the consumer's position in any of these partitions is short of its end offset."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def partitions_of(consumer: AIOKafkaConsumer, topic: str, wait_s: float = 10.0) -> list[TopicPartition]:
    """The partitions of ``topic``, fetching metadata when the consumer has not seen it yet.

    A topic created a moment ago may not be in every broker's metadata yet, so
    an absent topic is asked for again for up to ``wait_s`` before giving up.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    parts = consumer.partitions_for_topic(topic)
    while not parts:
        cluster = await consumer._client.fetch_all_metadata()
        parts = cluster.partitions_for_topic(topic)
        if parts:
            break
        if loop.time() > deadline:
            raise KafkaRequestFailed(f"topic {topic} does not exist")
        await asyncio.sleep(0.2)
    return [TopicPartition(topic, p) for p in sorted(parts)]


def is_record_fault(exc: BaseException) -> bool:
    """An error from reading records that is about a record's bytes, not the broker or the network.

    aiokafka raises whatever its parser hits (a header name that is not UTF-8 is a ``UnicodeDecodeError``);
    a corrupt or unreadable batch is a ``KafkaError`` that no retry will cure.
    """
    return not isinstance(exc, KafkaError | TimeoutError) or isinstance(
        exc, CorruptRecordException | UnsupportedCodecError | RecordTooLargeError
    )


async def first_unreadable(consumer: AIOKafkaConsumer, tp: TopicPartition, within_s: float = 60.0) -> int | None:
    """Read ``tp`` one record at a time to its end: the offset where the client fails, or None.

    Reads from the consumer's position and leaves it wherever it stopped: the caller seeks back.
    """
    end = (await consumer.end_offsets([tp]))[tp]
    deadline = time.monotonic() + within_s
    while await consumer.position(tp) < end and time.monotonic() < deadline:
        try:
            await consumer.getmany(tp, timeout_ms=500, max_records=1)
        except Exception as exc:
            if not is_record_fault(exc):
                raise
            # The failed read leaves its buffer behind; reading once more settles the position on the record.
            with contextlib.suppress(Exception):
                await consumer.getmany(tp, timeout_ms=0, max_records=1)
            return await consumer.position(tp)  # type: ignore[no-any-return]
    return None


async def read_below(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, most: int) -> list[ConsumerRecord]:
    """Up to ``most`` records of ``tp`` below ``offset``, read one at a time so the client never parses that one."""
    records: list[ConsumerRecord] = []
    while await consumer.position(tp) < offset and len(records) < most:
        got = await consumer.getmany(tp, timeout_ms=200, max_records=1)
        if not got:
            break
        records += got[tp]
    return records


async def committed_with_metadata(consumer: AIOKafkaConsumer, tp: TopicPartition) -> tuple[int | None, str]:
    """The committed offset of ``tp`` in the consumer's group and the metadata committed with it (what the relay
    keeps beside its input offset, in the same transaction). aiokafka's ``committed()`` drops the metadata, so
    this asks its coordinator as ``committed()`` does (a private name, pinned by tests/test_audit_relay.py)."""
    found = await consumer._coordinator.fetch_committed_offsets([tp])
    got = found.get(tp)
    if got is None or got.offset == -1:
        return None, ""
    return got.offset, got.metadata or ""


async def read_to_end(
    consumer: AIOKafkaConsumer,
    topic: str,
    ends: dict[TopicPartition, int],
    starts: dict[int, int] | None = None,
    timeout_s: float = 60.0,
    max_records: int = 500,
) -> AsyncIterator[tuple[TopicPartition, list[ConsumerRecord]]]:
    """Every committed record of ``topic`` from ``starts`` (partition -> offset; absent or removed by retention:
    the first there is) up to the end offsets as they are now, a fetch at a time (the caller keeps what it needs of
    each, so no more than a fetch is held). ``ends`` is filled with those end offsets. The consumer is started and
    read_committed; it is assigned the topic's partitions here."""
    tps = await partitions_of(consumer, topic)
    consumer.assign(tps)
    firsts = await consumer.beginning_offsets(tps)
    ends.update(await consumer.end_offsets(tps))  # the last stable offsets under read_committed
    for tp in tps:
        consumer.seek(tp, max((starts or {}).get(tp.partition, 0), firsts[tp]))
    async with asyncio.timeout(timeout_s):
        while await behind(consumer, ends):
            batch = await consumer.getmany(timeout_ms=300, max_records=max_records)
            for tp in sorted(batch):
                yield tp, [r for r in batch[tp] if r.offset < ends[tp]]
