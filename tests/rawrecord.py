"""Records no well-behaved client writes: a header name that is not UTF-8.

Kafka's protocol carries header names as bytes and the broker stores them as
given; librdkafka (kcat -H) writes any bytes there, while the Java and Python
clients only write UTF-8. This builds the record batch with aiokafka's own
builder, swaps the header name's bytes for invalid UTF-8 of the same length,
recomputes the batch's CRC-32C, and sends it as it stands.
"""

from __future__ import annotations

import struct

from aiokafka import AIOKafkaProducer
from aiokafka.record.util import calc_crc32c

#: Placeholder name, as UTF-8 (c3 bf c3 be), and the invalid bytes that replace it.
_PLACEHOLDER = "\u00ff\u00fe"
_INVALID = b"\xff\xfe\xff\xfe"
#: In a v2 record batch the CRC sits at bytes 17-20 and covers everything from byte 21 (attributes) on.
_CRC_AT, _CRC_FROM = 17, 21


async def send_with_invalid_header_name(
    bootstrap: str, topic: str, partition: int, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> int:
    """Write one record whose first header name is the bytes ff fe ff fe; returns its offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        batch = producer.create_batch()
        batch.append(timestamp=None, key=key, value=value, headers=[(_PLACEHOLDER, b"x"), *headers])
        buffer = batch._build()  # built once and kept: send_batch sends this very buffer
        at = buffer.find(_PLACEHOLDER.encode())
        assert at > _CRC_FROM
        buffer[at : at + len(_INVALID)] = _INVALID
        struct.pack_into(">I", buffer, _CRC_AT, calc_crc32c(bytes(buffer[_CRC_FROM:])))
        sent = await producer.send_batch(batch, topic, partition=partition)
        return (await sent).offset  # type: ignore[no-any-return]
    finally:
        await producer.stop()
