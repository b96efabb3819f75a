"""The contract's models are strict and the canonical encoding is stable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import planned_data
from launchrelay.contract import PlannedLaunch, canonical_json, decode, encode
from launchrelay.contract.areas import CircleArea, DistanceUnit, Point
from launchrelay.contract.codec import read
from launchrelay.errors import ContractError

ROOT = Path(__file__).resolve().parent.parent


def _decode(data: dict[str, object]) -> object:
    return decode(json.dumps(data))


def test_valid_planned_launch_parses() -> None:
    """A complete notification parses into the planned-launch model."""
    msg = _decode(planned_data())
    assert isinstance(msg, PlannedLaunch)
    assert msg.window.length.total_seconds() == 86400


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("window", "start"), "2026-12-05T08:00:00+08:00", "UTC"),  # named launchrelay/2 (below)
        (("window", "start"), "2026-12-05T00:00:00", "RFC 3339 in UTC"),
        (("window", "end"), "2026-12-04T00:00:00Z", "after window start"),
        (("launch_area", "centre", "lat"), 90.5, "at most 90"),
        (("launch_area", "centre", "lon"), 180.01, "at most 180"),
        (("launch_area", "radius"), 0, "greater than 0"),
        (("launch_area", "unit"), "mi", "'km' or 'NM'"),
        (("sender",), "XX", "ISO 3166-1"),
        (("vehicle", "range_km"), "12000", "must be a number"),
    ],
)
def test_strict_fields_reject(path: tuple[str, ...], value: object, fragment: str) -> None:
    """Non-UTC times, out-of-range coordinates, bad radii and units, and non-ISO parties are refused."""
    data = planned_data()
    cur = data
    for key in path[:-1]:
        cur = cur[key]
    cur[path[-1]] = value
    if fragment == "UTC":  # launchrelay/1 reads a time at another offset as the same instant (its first schemas
        data["contract"] = "launchrelay/2"  # allowed any RFC 3339 time); launchrelay/2 takes UTC only
    with pytest.raises(ContractError) as info:
        _decode(data)
    assert fragment in str(info.value)


def test_polygon_needs_three_distinct_points() -> None:
    """A polygon whose points collapse to two distinct positions is refused."""
    data = planned_data()
    data["impact_areas"][0]["points"] = [{"lat": 1, "lon": 1}, {"lat": 2, "lon": 2}, {"lat": 1, "lon": 1}]
    with pytest.raises(ContractError, match="3 distinct points"):
        _decode(data)


def test_unknown_fields_are_refused() -> None:
    """Fields the contract does not define are errors, not silently dropped."""
    with pytest.raises(ContractError, match="priority is not a field of the message"):
        _decode(planned_data(priority="high"))


def test_ocean_quadrant_and_water_body_are_areas() -> None:
    """An SLBM launch area may be an ocean quadrant or a named sea (US-USSR 1988)."""
    msg = _decode(
        planned_data(
            launch_area={"kind": "water_body", "name": "Barents Sea"},
            impact_areas=[{"kind": "ocean_quadrant", "ocean": "pacific", "quadrant": "NE"}],
        )
    )
    assert isinstance(msg, PlannedLaunch)
    assert msg.launch_area.kind == "water_body"


def test_nautical_miles_convert_to_km() -> None:
    """A radius in nautical miles is 1.852 km each."""
    area = CircleArea(centre=Point(lat=0, lon=0), radius=10, unit=DistanceUnit.NM)
    assert area.radius_km == pytest.approx(18.52)


def test_canonical_encoding_is_stable_and_round_trips() -> None:
    """Encoding is sorted, compact and identical for equal messages; decoding it gives the same message."""
    msg = _decode(planned_data(message_id="cn-1"))
    raw = encode(msg)
    assert raw == encode(decode(raw))
    assert b" " not in raw.replace(b"DF-41", b"")
    assert raw.startswith(b'{"agreement":"CN-RU-2009"')
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_sender_cannot_address_itself() -> None:
    """A sender is never among its own recipients."""
    with pytest.raises(ContractError, match="own recipients"):
        _decode(planned_data(recipients=["RU", "CN"]))


#: what the models' machinery says, never a sender's business (the issue's audit: "Value error, …", a union's tag
#: in the path, a regular expression)
MACHINERY = ("Value error", "Input should", "Field required", "Extra inputs", "pattern", "^", "[A-Z", "tag ",
             "discriminator", "after validation")  # fmt: skip


@pytest.mark.parametrize("path", sorted((ROOT / "docs/examples/invalid").glob("*.json")), ids=lambda p: p.name)
def test_schema_errors_speak_in_the_documents_own_terms(path: Path) -> None:
    """Each refusal names the field as the document does (no union tag such as `circle` or `planned_launch` in the
    path) and says the rule in words, not in the models' error text or a regular expression."""
    parsed = read(path.read_bytes())
    assert parsed.reasons, path.name
    data = json.loads(path.read_text())
    for reason in parsed.reasons:
        assert not any(m in reason.message for m in MACHINERY), reason
        if reason.field:
            head = reason.field.split(".")[0]
            assert head in data or reason.message.endswith("missing"), reason  # a top-level field of the document


def test_schema_errors_in_words() -> None:
    """The audit's cases, as a sender reads them."""

    def said(name: str) -> list[tuple[str | None, str]]:
        return [(r.field, r.message) for r in read((ROOT / "docs/examples/invalid" / name).read_bytes()).reasons]

    assert said("circle_without_unit.json") == [("launch_area.unit", "launch_area.unit is required and missing")]
    assert said("circle_unknown_unit.json") == [("launch_area.unit", "launch_area.unit must be 'km' or 'NM'")]
    assert said("circle_zero_radius.json") == [("launch_area.radius", "launch_area.radius must be greater than 0")]
    assert said("sender_among_recipients.json") == [(None, "the sender cannot be one of its own recipients")]
    (sender,) = said("party_lowercase.json")
    assert sender == ("sender", "sender must be a party's ISO 3166-1 alpha-2 code, two upper-case letters (e.g. CN)")
    assert [r.message for r in read(b"[]").reasons] == ["the message must be an object"]


def test_every_verdict_is_a_receipt_outcome_and_an_event_kind_as_written() -> None:
    """One enumeration of outcomes (contract/outcomes.py): the relay's decisions, its state, the ledger, the logs and
    the counters speak it; the published enumerations carry each verdict with the same value, so a verdict passes
    to a receipt or a status event unchanged. The relay's own records (a beacon, a linked centre's receipt) are
    outcomes no receipt tells."""
    from launchrelay.contract.events import EventKind
    from launchrelay.contract.messages import ReceiptOutcome
    from launchrelay.contract.outcomes import VERDICTS, Outcome

    for verdict in VERDICTS:
        assert ReceiptOutcome(verdict.value).value == EventKind(verdict.value).value == verdict
    assert {o.value for o in Outcome} - {o.value for o in VERDICTS} == {"remote_receipt", "beacon"}
    assert "beacon" not in {o.value for o in ReceiptOutcome} | {k.value for k in EventKind}
