"""The decision log as it stands on its topic, as statements a party checks (docs/audit-log.md): every committed
leaf and signed tree head, in the order written."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiokafka import AIOKafkaConsumer

from launchrelay.contract.headers import header
from launchrelay.errors import kafka_errors
from launchrelay.kafka.consume import read_to_end
from launchrelay.topics import Topics

_KIND, _INDEX = "lr-log-kind", "lr-log-index"


async def read_log(
    bootstrap: str, topics: Topics, client_options: dict[str, Any] | None = None, timeout_s: float = 120.0
) -> list[dict[str, Any]]:
    """Every committed leaf (as a ``leaf`` statement) and head (``tree_head``) of the log topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
                                enable_auto_commit=False, **(client_options or {}))  # fmt: skip
    out: list[dict[str, Any]] = []
    try:
        with kafka_errors(f"cannot read {topics.decision_log} on {bootstrap}"):
            await consumer.start()
            async for _, records in read_to_end(consumer, topics.decision_log, {}, None, timeout_s, 5000):
                for r in records:
                    kind = header(r.headers, _KIND)
                    if kind == b"leaf":
                        index = int((header(r.headers, _INDEX) or b"-1").decode())
                        out.append({"type": "leaf", "log": (r.key or b"").decode(errors="replace"), "index": index,
                                    "leaf": base64.b64encode(r.value or b"").decode()})  # fmt: skip
                    elif kind == b"head":
                        out.append(json.loads(r.value or b"{}"))
    finally:
        await consumer.stop()
    return out
