"""Writing a transaction's records as batches, partitioned as every Kafka client partitions them.

``AIOKafkaProducer.send()`` costs about 50–130 µs a record in Python: it looks up
the topic's partitions twice and runs a byte-at-a-time murmur2 on the key each
time. A transaction of the relay writes a handful of records per input record,
mostly under the same key (forward, receipt, status event and state record of
one launch), so here each key's hash is computed once and cached, partition
counts are looked up once per topic per transaction, and the records of each
topic-partition go out as one batch (``create_batch``/``send_batch``).

The partition of a keyed record is the Java client's (``BuiltInPartitioner.
partitionForKey``): ``toPositive(murmur2(key)) % partitions``, so a counterpart
reading one launch's records sees them where any other client would put them. A
record without a key (a dead letter of a record that had none) goes to a random
partition, as the Java client's sticky partitioner would spread them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.producer import sender as aiokafka_sender

from launchrelay.topics import OutRecord

#: the largest batch one send carries (a single larger record still goes, alone in its batch)
BATCH_BYTES = 256 * 1024


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``Utils.murmur2`` of the Java client), unsigned.

    aiokafka's takes the key a byte at a time; this one a 32-bit word at a time, at half its cost on the
    relay's state keys (44 bytes: 2.5 against 5 µs). tests/test_produce.py checks the partitions it gives
    against the Java client's own for keys of every tail length."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length >> 2
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail = length & 3
    if tail:
        rest = data[words * 4 :]
        if tail == 3:
            h ^= rest[2] << 16
        if tail >= 2:
            h ^= rest[1] << 8
        h = ((h ^ rest[0]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=1024)  # a transaction's records share a few keys; a large cache only held every key seen
def _positive_murmur2(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for ``key`` among ``partitions``."""
    return _positive_murmur2(key) % partitions


async def send_all(producer: AIOKafkaProducer, records: Iterable[OutRecord]) -> list[asyncio.Future[Any]]:
    """Queue ``records`` in batches per topic-partition, in order within each; the futures of the batches.

    The futures resolve when the broker has the batches. Await them before committing:
    aiokafka commits a transaction even when one of its batches failed.
    """
    counts: dict[str, int] = {}
    batches: dict[tuple[str, int], Any] = {}
    futures: list[asyncio.Future[Any]] = []
    for record in records:
        count = counts.get(record.topic)
        if count is None:
            count = counts[record.topic] = len(await producer.partitions_for(record.topic))
        partition = partition_for(record.key, count) if record.key is not None else random.randrange(count)  # noqa: S311 - spreading, not secrecy
        tp = (record.topic, partition)
        batch = batches.get(tp)
        if batch is None:
            batch = batches[tp] = producer.create_batch()
        if batch.append(key=record.key, value=record.value, timestamp=None, headers=record.headers) is None:
            futures.append(await producer.send_batch(batch, record.topic, partition=partition))
            batch = batches[tp] = producer.create_batch()
            batch.append(key=record.key, value=record.value, timestamp=None, headers=record.headers)
    for (topic, partition), batch in batches.items():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def transact(
    producer: AIOKafkaProducer, records: Iterable[OutRecord], offsets: dict[Any, Any], group_id: str
) -> None:
    """``records`` and the input ``offsets`` (topic-partition -> offset, or (offset, commit metadata)) of
    ``group_id`` in one transaction, or none of it. A fenced or failed producer may refuse to abort; the caller
    discards it either way."""
    await producer.begin_transaction()
    sends: list[asyncio.Future[Any]] = []
    try:
        sends = await send_all(producer, records)
        # The offsets go while the records are still in flight (one round trip fewer); every batch
        # is awaited before the commit, since aiokafka would commit without a batch that failed.
        await asyncio.gather(*sends, producer.send_offsets_to_transaction(offsets, group_id))
        await producer.commit_transaction()
    except BaseException:
        for fut in sends:  # retrieve failures so none is reported as unhandled
            if fut.done() and not fut.cancelled():
                fut.exception()
        with contextlib.suppress(Exception):
            await producer.abort_transaction()
        raise


def set_concurrent_transactions_backoff(seconds: float) -> None:
    """How long aiokafka waits before asking again when the coordinator answers CONCURRENT_TRANSACTIONS.

    After a commit is acknowledged the coordinator still writes the transaction's
    markers, so the next transaction's first AddPartitionsToTxn is often answered
    CONCURRENT_TRANSACTIONS (a third to two thirds of back-to-back transactions on
    this machine). aiokafka retries after a module constant, 20 ms, that no option
    sets; the markers take a millisecond or two on a healthy broker. Process-wide,
    and checked by a test so an aiokafka upgrade that renames it fails loudly.
    """
    aiokafka_sender.BACKOFF_OVERRIDE = seconds
