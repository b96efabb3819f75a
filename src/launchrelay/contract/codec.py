"""Bytes <-> messages: the one canonical JSON encoding and strict parsing.

Canonical form: UTF-8, keys sorted, no insignificant whitespace, no NaN,
fields that are ``None`` left out. Signatures cover whatever bytes a sender
published; publishers of this project always publish the canonical form.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, TypeAdapter

from launchrelay.contract.messages import Message

MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


def stable_id(prefix: str, seed: str) -> str:
    """An id derived from ``seed``: the same every time, so a replay after a crash writes the same ids."""
    return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:24]}"


def message_key(sender: str, message_id: str) -> str:
    """A message's identity: ids are scoped per sender, so two parties may use the same one."""
    return f"{sender}/{message_id}"


def canonical_json(data: Any) -> bytes:
    """Encode plain JSON data canonically."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode(message: BaseModel) -> bytes:
    """The canonical bytes of a message."""
    return canonical_json(message.model_dump(mode="json", exclude_none=True))


def encode_fast(message: BaseModel) -> bytes:
    """Compact JSON in field order (not sorted): for the relay's own receipts and events on the hot path."""
    return message.model_dump_json(exclude_none=True).encode("utf-8")


def decode(raw: bytes | str) -> Message:
    """Parse and validate one message; raises ``pydantic.ValidationError``."""
    return MESSAGE_ADAPTER.validate_json(raw)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every message, as committed in docs/schema/."""
    schema = MESSAGE_ADAPTER.json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://launchrelay.example/schema/message.json",
        "title": "launchrelay message",
        **schema,
    }
