"""One record by its address, for the watch: the original bytes a notification was judged on, and whether its
signature verifies with the sender's registered key."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from launchrelay.contract.headers import Headers, from_record
from launchrelay.contract.messages import RecordRef
from launchrelay.errors import kafka_errors
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


async def read_record(
    bootstrap: str, ref: RecordRef, client_options: dict[str, Any] | None = None, timeout_s: float = 10.0
) -> tuple[bytes, Headers] | None:
    """The value and headers of the committed record at ``ref``; None when it is no longer there (retention)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False, **(client_options or {}))  # fmt: skip
    tp = TopicPartition(ref.topic, ref.partition)
    try:
        with kafka_errors(f"cannot read {ref} on {bootstrap}"):
            await consumer.start()
            consumer.assign([tp])
            consumer.seek(tp, ref.offset)
            async with asyncio.timeout(timeout_s):
                while True:
                    batch = await consumer.getmany(tp, timeout_ms=300, max_records=1)
                    for record in batch.get(tp, []):
                        if record.offset == ref.offset:
                            return record.value or b"", from_record(record.headers)
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
    value, headers = found
    checked = verify_headers(value, headers, {k: public_key_from_b64(v) for k, v in keys.items()})
    return Original(ref, value, headers, checked.verdict, checked.key_id)
