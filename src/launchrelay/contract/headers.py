"""The catalogue of Kafka record headers this project reads and writes: one name, one home.

Code, the AsyncAPI document and the tests all take the names (and the
descriptions the document prints) from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from launchrelay.contract.messages import RecordRef

#: Kafka record headers as read and written; a header's value may be null.
Headers = list[tuple[str, bytes | None]]

# Set by a sender, carried unchanged to every recipient.
SIGNATURE_HEADER = "lr-signature"
KEY_ID_HEADER = "lr-key-id"
# Set by the relay on what it writes.
SOURCE_TOPIC = "lr-source-topic"
SOURCE_PARTITION = "lr-source-partition"
SOURCE_OFFSET = "lr-source-offset"
RELAY_ID = "lr-relay-id"
REASONS = "lr-reasons"
REASONS_JSON = "lr-reasons-json"
ERROR = "lr-error"
WARNINGS = "lr-warnings"
# Set by the tracker on a re-sent copy, and by an operator's redrive.
RETRANSMISSION_HEADER = "lr-retransmission"
REDRIVE_HEADER = "lr-redrive"
# An operator's redrive is honoured only with these: who, with which registered key, and the signature.
REDRIVE_BY = "lr-redrive-by"
REDRIVE_KEY_ID = "lr-redrive-key-id"
REDRIVE_SIGNATURE = "lr-redrive-signature"
#: every header of a redrive mark: none of them is forwarded to a recipient
REDRIVE_HEADERS = frozenset({REDRIVE_HEADER, REDRIVE_BY, REDRIVE_KEY_ID, REDRIVE_SIGNATURE})
# Two-centre mode: a relay's beacon on its outgoing link topics (the counterpart knows the link is alive).
LINK_BEACON = "lr-link-beacon"
#: what a relay adds to a forward: a centre that forwards a record again replaces these with its own
RELAY_HEADERS = frozenset({SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, RELAY_ID, WARNINGS})

DESCRIPTIONS: dict[str, str] = {
    SIGNATURE_HEADER: "base64 of the 64-byte Ed25519 signature over the exact bytes of the record's value",
    KEY_ID_HEADER: "id of the signing key, as registered in the config",
    SOURCE_TOPIC: "the out topic the relay read the original record from",
    SOURCE_PARTITION: "that record's partition",
    SOURCE_OFFSET: "that record's offset",
    RELAY_ID: "the relay instance that wrote this record",
    REASONS: "reason codes, comma-separated (docs/reasons.md)",
    REASONS_JSON: "JSON list of {code, message, field}",
    ERROR: "on an INTERNAL_ERROR or RECORD_UNREADABLE dead letter: the error's class and a short message",
    WARNINGS: "on a recipient's copy: reason codes the agreement flags without refusing (e.g. LAUNCH_OUTSIDE_WINDOW)",
    RETRANSMISSION_HEADER: "set by the tracker on a re-sent copy of a notification not yet acknowledged: the "
    "attempt number (the bytes and signature are the original's)",
    REDRIVE_HEADER: "set by `launchrelay redrive` on a dead letter written back to its out topic: the dead letter's "
    "topic:partition:offset",
    REDRIVE_BY: "on a redrive: the operator who made it (a console user, or the name `launchrelay redrive` was given)",
    REDRIVE_KEY_ID: "on a redrive: the id of the operator key that signed the mark, as registered in "
    "`[relay] operator_keys`",
    REDRIVE_SIGNATURE: "on a redrive: base64 Ed25519 signature by that key over the mark (dead letter, operator, "
    "SHA-256 of the value); a mark without a valid one is ignored",
    LINK_BEACON: "two-centre mode, on a link topic: marks a relay's beacon (JSON: centre, relay, time), signed with "
    "the relay's key, so the counterpart centre knows the link is alive; never forwarded to a party",
}


def header(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The last value of header ``name``, or None (absent, or present with a null value)."""
    found = None
    for key, value in headers or []:
        if key == name:
            found = value
    return found


def from_record(raw: Iterable[tuple[str, Any]] | None) -> Headers:
    """A consumed record's headers as plain bytes, keeping a null value null."""
    return [(k, None if v is None else bytes(v)) for k, v in (raw or ())]


def source_headers(ref: RecordRef) -> Headers:
    """The headers naming the record a relay output came from."""
    return [
        (SOURCE_TOPIC, ref.topic.encode()),
        (SOURCE_PARTITION, str(ref.partition).encode()),
        (SOURCE_OFFSET, str(ref.offset).encode()),
    ]


def source_from(headers: Sequence[tuple[str, bytes | None]]) -> RecordRef | None:
    """The record named by the source headers, or None when they are missing or garbled."""
    topic, partition, offset = (header(headers, h) for h in (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET))
    if topic is None or partition is None or offset is None:
        return None
    try:
        return RecordRef(topic=topic.decode(), partition=int(partition), offset=int(offset))
    except ValueError:  # pydantic's ValidationError is one, as are bad digits and bad UTF-8
        return None
