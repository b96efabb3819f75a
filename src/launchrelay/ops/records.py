"""One record by its address, for the watch: the original bytes a notification was judged on, and whether its
signature verifies with the sender's registered key."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from launchrelay.contract.headers import Headers, from_record
from launchrelay.contract.messages import RecordRef
from launchrelay.errors import kafka_errors
from launchrelay.kafka.consume import partitions_of
from launchrelay.signing import Verdict, public_key_from_b64, verify_headers


@dataclass(frozen=True)
class Original:
    ref: RecordRef
    value: bytes
    headers: Headers
    verdict: Verdict
    key_id: str | None

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")

    @property
    def header_texts(self) -> list[tuple[str, str]]:
        return [(k, (v or b"").decode("utf-8", errors="replace")) for k, v in self.headers]


@dataclass(frozen=True)
class Stored:
    """A record as it is stored: its bytes, headers, key and the broker's timestamp."""

    value: bytes
    headers: Headers
    key: bytes | None
    at: datetime


async def read_record(
    bootstrap: str, ref: RecordRef, client_options: dict[str, Any] | None = None, timeout_s: float = 10.0
) -> Stored | None:
    """The committed record at ``ref``; None when it is no longer there (retention)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False, **(client_options or {}))  # fmt: skip
    tp = TopicPartition(ref.topic, ref.partition)
    try:
        with kafka_errors(f"cannot read {ref} on {bootstrap}"):
            await consumer.start()
            if tp not in await partitions_of(consumer, ref.topic, wait_s=2.0):  # a partition that is not there
                return None
            consumer.assign([tp])
            first, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
            if not first <= ref.offset < end:  # removed by retention, or not written (or not committed) yet
                return None
            consumer.seek(tp, ref.offset)
            async with asyncio.timeout(timeout_s):
                while True:
                    batch = await consumer.getmany(tp, timeout_ms=300, max_records=1)
                    for record in batch.get(tp, []):
                        if record.offset == ref.offset:
                            at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
                            return Stored(record.value or b"", from_record(record.headers), record.key, at)
                        return None  # the offset is gone; the next record came instead
    except TimeoutError:
        return None
    finally:
        await consumer.stop()


async def original(
    bootstrap: str, ref: RecordRef, keys: Mapping[str, str], client_options: dict[str, Any] | None = None
) -> Original | None:
    """The record at ``ref`` with its signature checked against ``keys`` (key id -> base64 public key)."""
    found = await read_record(bootstrap, ref, client_options)
    if found is None:
        return None
    checked = verify_headers(found.value, found.headers, {k: public_key_from_b64(v) for k, v in keys.items()})
    return Original(ref, found.value, found.headers, checked.verdict, checked.key_id)
