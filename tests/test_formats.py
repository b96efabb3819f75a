"""Every format the project stores carries its version; a later one is refused, never misread or skipped.

The ledger's is in tests/test_ledger.py (SQLite user_version, and `launchrelay status` saying so in one line);
here the relay's state records and the status events, which name a format only above 1."""

from __future__ import annotations

import json

import pytest

from launchrelay.contract.events import STATUS_EVENT_FORMAT, StatusEvent, event_format
from launchrelay.errors import FormatTooNew
from launchrelay.relay.state import STATE_FORMAT, SeenMessage, Src


def _seen() -> SeenMessage:
    return SeenMessage(sender="CN", message_id="cn-1", digest="0" * 64, message_type="planned_launch",
                       agreement="CN-RU-2009", launch_key="CN-L1", recipients=("RU",), outcome="forwarded",
                       src=Src("lr.CN.out", 0, 7))  # fmt: skip


def test_a_state_record_of_a_later_format_stops_the_reader() -> None:
    raw = _seen().to_bytes()
    assert b'"format"' not in raw, "format 1 is written as before: older relays read it"
    data = json.loads(raw)
    assert SeenMessage.from_bytes(json.dumps(data | {"format": STATE_FORMAT}).encode()) == _seen()
    with pytest.raises(FormatTooNew, match=rf"state topic is in format {STATE_FORMAT + 1}.*reads format"):
        SeenMessage.from_bytes(json.dumps(data | {"format": STATE_FORMAT + 1}).encode())


def test_a_status_event_names_its_format_only_above_1() -> None:
    event = StatusEvent.model_validate_json(b'{"event_id": "evt-1", "kind": "forwarded", "at": "2026-12-02T00:00:00Z"}')
    raw = event.model_dump_json(exclude_none=True).encode()
    assert b'"format"' not in raw and event_format(raw) == 1
    assert event_format(json.dumps(json.loads(raw) | {"format": 2}).encode()) == 2 > STATUS_EVENT_FORMAT
    assert StatusEvent.model_validate_json(json.dumps(json.loads(raw) | {"format": 1})).format == 1
    assert event_format(b'{"format": "2"}') == event_format(b"[1]") == event_format(b"not json format") == 1
