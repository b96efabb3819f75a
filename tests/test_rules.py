"""The agreements' rules, one test per article they enforce (or [I] and its source), for all four presets.

Pure functions: no broker. ``received_at`` is NOW (2026-11-28 12:00 UTC) unless a test says otherwise. Every
numeric rule is tested at its threshold and one unit past it (a second, a metre, a tenth of a minute).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conftest import NOW, planned_data
from launchrelay.agreements.config import Agreement, GeometryRules, load_presets
from launchrelay.agreements.geometry import Boundary, Shape
from launchrelay.agreements.rules import check
from launchrelay.contract import decode
from launchrelay.contract.messages import Amendment, CompletedLaunch, PartyMessage, PlannedLaunch, VehicleCategory
from launchrelay.contract.notice import Notice

PRESETS = load_presets()
SECOND = timedelta(seconds=1)

# A synthetic boundary running north-south along 75°E, with a westward spike
# reaching 73.8°E at 29.5°N. Drawn south to north: IN's test sites lie west of it, on its left.
BOUNDARY = {
    "type": "LineString",
    "coordinates": [[75.0, 20.0], [75.0, 29.0], [73.8, 29.5], [75.0, 30.0], [75.0, 36.0]],
}
LINE = Boundary.from_geojson(BOUNDARY)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _msg(**overrides: Any) -> PlannedLaunch:
    msg = decode(json.dumps(planned_data(**overrides)))
    assert isinstance(msg, PlannedLaunch), msg
    return msg


def _window(lead: timedelta, length: timedelta = timedelta(days=1)) -> dict[str, str]:
    return {"start": _iso(NOW + lead), "end": _iso(NOW + lead + length)}


def codes(message: PartyMessage, agreement: Agreement, at: datetime = NOW, notice: Notice | None = None) -> list[str]:
    return [r.code for r in check(message, agreement, at, notice).reasons]


def _follow(kind: str, notice: PlannedLaunch, **fields: Any) -> PartyMessage:
    """An amendment or a report of ``notice``, sent at NOW."""
    data = {k: getattr(notice, k) for k in ("agreement", "sender", "recipients", "launch_key")}
    data |= {"message_type": kind, "message_id": f"{kind}-1", "refers_to": notice.message_id,
             "created_at": _iso(NOW - timedelta(minutes=1)), **fields}  # fmt: skip
    return decode(json.dumps(data, default=str))  # type: ignore[return-value]


# --- CN-RU 2009 -------------------------------------------------------------------------------

CNRU = PRESETS["CN-RU-2009"]


def test_cn_ru_valid_icbm_notification_passes() -> None:
    """CN-RU 2009: an ICBM notice 7 days ahead to the other party, heading NE, breaks no rule."""
    assert codes(_msg(window=_window(timedelta(days=7))), CNRU) == []


@pytest.mark.parametrize(("range_km", "expected"), [(2000.0, ["OUT_OF_SCOPE_RANGE"]), (2000.001, [])])
def test_cn_ru_art1_missile_range_over_2000_km(range_km: float, expected: list[str]) -> None:
    """CN-RU 2009 art. 1: ballistic missiles with a range over 2000 km; exactly 2000 km is outside."""
    msg = _msg(vehicle={"category": "other_ballistic_missile", "generic_class": "DF-21", "range_km": range_km})
    assert codes(msg, CNRU) == expected


def test_cn_ru_art1_missile_without_range_cannot_be_scoped() -> None:
    """CN-RU 2009 art. 1: scope depends on range, so a missile notice must give it."""
    assert codes(_msg(vehicle={"category": "icbm", "generic_class": "DF-41"}), CNRU) == ["RANGE_REQUIRED"]


def test_cn_ru_art1_space_launch_needs_no_range() -> None:
    """CN-RU 2009 art. 1: space launch vehicles are covered whatever their range and direction."""
    msg = _msg(vehicle={"category": "space_launch_vehicle", "generic_class": "Long March 5"}, impact_areas=[],
               direction={"sector": "SE"})  # fmt: skip
    assert codes(msg, CNRU) == []


@pytest.mark.parametrize(
    ("lead", "length", "expected"),
    [
        (timedelta(hours=24), timedelta(days=1), []),
        (timedelta(hours=24) - SECOND, timedelta(days=1), ["LEAD_TIME_TOO_SHORT"]),
        (timedelta(days=29), timedelta(days=1), []),  # the window ends exactly 30 days ahead
        (timedelta(days=29), timedelta(days=1) + SECOND, ["LEAD_TIME_TOO_LONG"]),
        (timedelta(days=30) + SECOND, timedelta(hours=1), ["LEAD_TIME_TOO_LONG"]),
        # the audit's case: 48 hours before a window that runs to day 40 (a launch on day 39 would be notified 39
        # days ahead)
        (timedelta(hours=48), timedelta(days=38), ["LEAD_TIME_TOO_LONG"]),
    ],
)
def test_cn_ru_notice_between_24_hours_and_30_days_ahead(
    lead: timedelta, length: timedelta, expected: list[str]
) -> None:
    """CN-RU 2009: no later than 24 hours and no earlier than 30 days before the launch date (DOMAIN.md, timing).
    Any moment of the window may be the launch date, so the 30 days hold to its end (``max_lead_to = "end"``),
    the 24 hours to its start."""
    assert codes(_msg(window=_window(lead, length)), CNRU) == expected
    assert CNRU.max_lead_to == "end"


@pytest.mark.parametrize(
    ("lead", "length", "expected"),
    [
        (timedelta(0), timedelta(hours=2), ["WINDOW_IN_PAST"]),  # opens at receipt: already open
        (-timedelta(hours=1), timedelta(hours=2), ["WINDOW_IN_PAST"]),
        (-timedelta(days=2), timedelta(days=1), ["WINDOW_IN_PAST"]),  # over
        (SECOND, timedelta(hours=2), ["LEAD_TIME_TOO_SHORT"]),  # a second ahead: not past, only too late
    ],
)
def test_window_already_open_is_in_the_past_not_too_late(
    lead: timedelta, length: timedelta, expected: list[str]
) -> None:
    """Every agreement's pre-launch notice comes before the window: one already open (or over) is WINDOW_IN_PAST,
    which says more than LEAD_TIME_TOO_SHORT."""
    assert codes(_msg(window=_window(lead, length)), CNRU) == expected


def test_cn_ru_message_to_a_third_state_is_refused() -> None:
    """CN-RU 2009 is bilateral: a CN notice goes to RU and nobody else."""
    assert codes(_msg(recipients=["US"], window=_window(timedelta(days=2))), CNRU) == ["RECIPIENT_NOT_PARTY"]


def test_cn_ru_every_violation_is_reported() -> None:
    """All violations come back together, not only the first."""
    msg = _msg(recipients=["US"], vehicle={"category": "icbm", "generic_class": "X", "range_km": 1000.0},
               window=_window(timedelta(hours=1)))  # fmt: skip
    assert codes(msg, CNRU) == ["RECIPIENT_NOT_PARTY", "LEAD_TIME_TOO_SHORT", "OUT_OF_SCOPE_RANGE"]


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (datetime(2010, 12, 15, 23, 59, 59, tzinfo=UTC), ["AGREEMENT_NOT_IN_FORCE"]),
        (datetime(2010, 12, 16, tzinfo=UTC), []),
        (datetime(2030, 12, 15, 23, 59, 59, tzinfo=UTC), []),
        (datetime(2030, 12, 16, tzinfo=UTC), ["AGREEMENT_NOT_IN_FORCE"]),
    ],
)
def test_cn_ru_in_force_from_16_dec_2010_to_16_dec_2030(received: datetime, expected: list[str]) -> None:
    """CN-RU 2009: in force 16 Dec 2010; extended by the Protocol of 15 Dec 2020 for ten years, to 16 Dec 2030."""
    window = {"start": _iso(received + timedelta(days=3)), "end": _iso(received + timedelta(days=4))}
    msg = _msg(created_at=_iso(received - timedelta(minutes=1)), window=window)
    assert codes(msg, CNRU, received) == expected


@pytest.mark.parametrize(
    ("sender", "direction", "expected"),
    [
        ("CN", {"sector": "NE"}, []),
        ("CN", {"azimuth_deg": 135.0}, ["OUT_OF_SCOPE_DIRECTION"]),  # SE: away from Russia
        ("CN", {"azimuth_deg": 337.4}, []),  # NW (22.5 degrees around 315)
        ("RU", {"sector": "SE"}, []),
        ("RU", {"sector": "W"}, ["OUT_OF_SCOPE_DIRECTION"]),
    ],
)
def test_cn_ru_missiles_toward_the_other_party(sender: str, direction: dict[str, Any], expected: list[str]) -> None:
    """[I] CN-RU 2009 scope, as analysts read the missile part (russianforces.org, 2010): launches toward the other
    party's territory (RU: E, NE, S, SE; CN: W, NW, N, NE)."""
    other = "RU" if sender == "CN" else "CN"
    assert codes(_msg(sender=sender, recipients=[other], direction=direction), CNRU) == expected


@pytest.mark.parametrize(
    ("group", "interval", "expected"),
    [
        ("simultaneous", 4.9, []),
        ("simultaneous", 5.0, ["GROUP_INTERVAL_TOO_LONG"]),
        ("near_simultaneous", 59.9, []),
        ("near_simultaneous", 60.0, ["GROUP_INTERVAL_TOO_LONG"]),
        ("simultaneous", None, ["GROUP_INTERVAL_REQUIRED"]),
    ],
)
def test_cn_ru_art1_group_launches_within_their_limit(group: str, interval: float | None, expected: list[str]) -> None:
    """CN-RU 2009 art. 1: simultaneous launches are less than 5 minutes apart, near-simultaneous less than 60."""
    vehicle: dict[str, Any] = {"category": "icbm", "generic_class": "DF-5", "range_km": 12000.0, "launch_count": 3,
                               "group": group}  # fmt: skip
    if interval is not None:
        vehicle["launch_interval_minutes"] = interval
    assert codes(_msg(vehicle=vehicle), CNRU) == expected


@pytest.mark.parametrize(("ahead", "expected"), [(timedelta(minutes=5), []), (timedelta(minutes=5) + SECOND,
                                                                               ["CREATED_AT_SKEW"])])  # fmt: skip
def test_created_at_far_ahead_of_receipt(ahead: timedelta, expected: list[str]) -> None:
    """A created_at more than the tolerance (5 minutes) after the broker's receipt: the sender's clock is wrong."""
    assert codes(_msg(created_at=(NOW + ahead).isoformat().replace("+00:00", "Z")), CNRU) == expected


def test_cn_ru_changed_window_needs_the_lead_time_again() -> None:
    """[I] CN-RU 2009 says nothing of changes: a changed window is held to the 24 hours like a new notice."""
    notice = _msg(window=_window(timedelta(days=3)))
    moved = _follow("amendment", notice, window=_window(timedelta(hours=23)))
    assert codes(moved, CNRU, notice=Notice.of(notice)) == ["LEAD_TIME_TOO_SHORT"]
    elsewhere = _follow("amendment", notice, direction={"sector": "N"})  # the window is not changed: not judged
    assert codes(elsewhere, CNRU, notice=Notice.of(notice)) == []


@pytest.mark.parametrize(("rule", "at", "reasons", "warnings"), [
    ("reject", timedelta(days=3, hours=12), [], []),
    ("reject", timedelta(days=4) + SECOND, ["LAUNCH_OUTSIDE_WINDOW"], []),
    ("warn", timedelta(days=4) + SECOND, [], ["LAUNCH_OUTSIDE_WINDOW"]),
])  # fmt: skip
def test_cn_ru_completed_launch_within_the_window(
    rule: str, at: timedelta, reasons: list[str], warnings: list[str]
) -> None:
    """CN-RU 2009: reports of completed launches are required; one launched outside the notified window is
    refused, or (where the preset says "warn") forwarded with the warning."""
    notice = _msg(window=_window(timedelta(days=3)))
    report = _follow("completed_launch", notice, launched_at=_iso(NOW + at), vehicle=notice.vehicle.model_dump(),
                     launch_area=notice.launch_area.model_dump())  # fmt: skip
    agreement = CNRU.model_copy(update={"report_outside_window": rule})
    found = check(report, agreement, NOW + at + timedelta(hours=1), Notice.of(notice))
    assert [r.code for r in found.reasons] == reasons and [w.code for w in found.warnings] == warnings


def test_not_launched_report_is_a_report() -> None:
    """CN-RU 2009: a report that the launch did not take place needs no launch time, vehicle or area."""
    notice = _msg(window=_window(timedelta(days=3)))
    report = _follow("completed_launch", notice, outcome="not_launched", reason={"en": "weather", "ru": "погода"})
    assert isinstance(report, CompletedLaunch) and codes(report, CNRU, notice=Notice.of(notice)) == []


# --- US-USSR 1988 ------------------------------------------------------------------------------

USRU = PRESETS["US-RU-1988"]


def _us(**overrides: Any) -> PlannedLaunch:
    base: dict[str, Any] = {"agreement": "US-RU-1988", "sender": "US", "recipients": ["RU"]}
    return _msg(**{**base, **overrides})


@pytest.mark.parametrize(("lead", "expected"), [(timedelta(hours=24), []), (timedelta(hours=24) - SECOND,
                                                                             ["LEAD_TIME_TOO_SHORT"])])  # fmt: skip
def test_us_ru_1988_art1_at_least_24_hours(lead: timedelta, expected: list[str]) -> None:
    """US-USSR 1988 art. I: no less than 24 hours in advance."""
    assert codes(_us(window=_window(lead)), USRU) == expected


def test_us_ru_1988_covers_only_icbm_and_slbm() -> None:
    """US-USSR 1988: ICBM and SLBM launches; a space launch is outside its scope."""
    msg = _us(
        vehicle={"category": "space_launch_vehicle", "generic_class": "Falcon 9"}, window=_window(timedelta(days=2))
    )
    assert codes(msg, USRU) == ["OUT_OF_SCOPE_CATEGORY"]


@pytest.mark.parametrize(("length", "expected"), [(timedelta(days=4), []), (timedelta(days=4) + SECOND,
                                                                             ["WINDOW_TOO_LONG"])])  # fmt: skip
def test_us_ru_1988_notice_valid_four_days(length: timedelta, expected: list[str]) -> None:
    """US-USSR 1988 ([I] secondary, NRRC practice): a notice is valid four days, so its window is at most four."""
    assert codes(_us(window=_window(timedelta(days=2), length)), USRU) == expected


def test_us_ru_1988_art2_slbm_from_named_sea_passes() -> None:
    """US-USSR 1988 art. II: an SLBM's launch area may be a named sea; its impact area is by coordinates."""
    slbm = {"category": "slbm", "generic_class": "Bulava", "range_km": 8000.0}
    msg = _us(sender="RU", recipients=["US"], vehicle=slbm, launch_area={"kind": "water_body", "name": "White Sea"},
              window=_window(timedelta(days=2)))  # fmt: skip
    assert codes(msg, USRU) == []


@pytest.mark.parametrize(
    ("category", "launch_area", "impact", "expected"),
    [
        ("icbm", {"kind": "ocean_quadrant", "ocean": "pacific", "quadrant": "NE"}, None, ["AREA_KIND_NOT_ALLOWED"]),
        ("icbm", None, {"kind": "ocean_quadrant", "ocean": "pacific", "quadrant": "NE"}, ["AREA_KIND_NOT_ALLOWED"]),
        ("slbm", {"kind": "ocean_quadrant", "ocean": "atlantic", "quadrant": "NW"}, None, []),
        ("slbm", None, {"kind": "water_body", "name": "Kara Sea"}, ["AREA_KIND_NOT_ALLOWED"]),
    ],
)
def test_us_ru_1988_art2_areas_by_coordinates(
    category: str, launch_area: Any, impact: Any, expected: list[str]
) -> None:
    """US-USSR 1988 art. II: impact areas by coordinates (boundary points, or a centre and radius); an ocean quadrant
    or a named sea is a launch area only for a submarine-launched ballistic missile."""
    over: dict[str, Any] = {"vehicle": {"category": category, "generic_class": "x", "range_km": 9000.0}}
    if launch_area:
        over["launch_area"] = launch_area
    if impact:
        over["impact_areas"] = [impact]
    assert codes(_us(**over), USRU) == expected


@pytest.mark.parametrize(
    ("end_after_validity", "expected"),
    [(timedelta(0), []), (SECOND, ["LEAD_TIME_TOO_SHORT"])],
)
def test_us_ru_1988_postponement_within_validity_needs_no_new_notice(
    end_after_validity: timedelta, expected: list[str]
) -> None:
    """US-USSR 1988 ([I] secondary): a postponement within the notice's four days of validity needs no new 24 hours'
    notice; a window that leaves them does. The same move under CN-RU 2009 needs the lead time."""
    original = _us(window=_window(timedelta(hours=20), timedelta(hours=4)))  # notified days ago, opens in 20 h
    validity_end = NOW + timedelta(hours=20) + timedelta(days=4)
    moved = {"start": _iso(NOW + timedelta(hours=23)), "end": _iso(validity_end + end_after_validity)}
    postponement = _follow("amendment", original, window=moved)
    assert isinstance(postponement, Amendment)
    assert codes(postponement, USRU, notice=Notice.of(original)) == expected
    assert "LEAD_TIME_TOO_SHORT" in codes(postponement, CNRU.model_copy(update={"parties": ["US", "RU"]}),
                                          notice=Notice.of(original))  # fmt: skip


# --- IN-PK 2005 -------------------------------------------------------------------------------

INPK = PRESETS["IN-PK-2005"].model_copy(
    update={"geometry": GeometryRules(boundary=BOUNDARY, party_sides={"IN": "left", "PK": "right"})}
)


def _circle(lon: float, lat: float, radius_km: float = 5.0) -> dict[str, Any]:
    return {"kind": "circle", "centre": {"lat": lat, "lon": lon}, "radius": radius_km, "unit": "km"}


def _in(**overrides: Any) -> PlannedLaunch:
    base: dict[str, Any] = {
        "agreement": "IN-PK-2005",
        "sender": "IN",
        "recipients": ["PK"],
        "vehicle": {"category": "other_ballistic_missile", "generic_class": "Prithvi-II", "range_km": 350.0},
        "window": _window(timedelta(days=4), timedelta(days=2)),
        # About 147 km west of the line, south of its spike, flying south-west to about 200 km from it.
        "launch_area": _circle(73.5, 28.5),
        "impact_areas": [_circle(73.0, 25.0, 10.0)],
    }
    return _msg(**{**base, **overrides})


def _at_distance(lon: float, lat: float, km: float) -> dict[str, Any]:
    """A circle around (lon, lat) whose edge is exactly ``km`` from the boundary."""
    return _circle(lon, lat, LINE.distance_from_point_km(lon, lat) - km)


def test_in_pk_valid_flight_test_passes() -> None:
    """IN-PK 2005: a test well away from the boundary, on IN's side, notified 4 days ahead, breaks no rule."""
    assert codes(_in(), INPK) == []


@pytest.mark.parametrize(("lead", "expected"), [(timedelta(hours=72), []), (timedelta(hours=72) - SECOND,
                                                                             ["LEAD_TIME_TOO_SHORT"])])  # fmt: skip
def test_in_pk_art2_three_days_before_the_window(lead: timedelta, expected: list[str]) -> None:
    """IN-PK 2005 art. 2: no less than 3 days (72 h) before the window opens."""
    assert codes(_in(window=_window(lead)), INPK) == expected


@pytest.mark.parametrize(("length", "expected"), [(timedelta(days=5), []), (timedelta(days=5) + SECOND,
                                                                             ["WINDOW_TOO_LONG"])])  # fmt: skip
def test_in_pk_art2_window_of_at_most_five_days(length: timedelta, expected: list[str]) -> None:
    """IN-PK 2005 art. 2: a launch window of at most five days."""
    assert codes(_in(window=_window(timedelta(days=4), length)), INPK) == expected


def test_in_pk_art1_scope_excludes_space_launches() -> None:
    """IN-PK 2005 art. 1: surface-to-surface ballistic missiles only."""
    msg = _in(vehicle={"category": "space_launch_vehicle", "generic_class": "PSLV"}, impact_areas=[])
    assert "OUT_OF_SCOPE_CATEGORY" in codes(msg, INPK)


@pytest.mark.parametrize(("km", "expected"), [(40.0, []), (39.999, ["LAUNCH_SITE_TOO_CLOSE", "TRAJECTORY_TOO_CLOSE"])])
def test_in_pk_art5_launch_site_40_km_from_the_boundary(km: float, expected: list[str]) -> None:
    """IN-PK 2005 art. 5: the launch site at least 40 km from the boundary (the trajectory starts there too, and
    art. 6 keeps it 40 km away, so a site too close makes a trajectory too close)."""
    assert codes(_in(launch_area=_at_distance(74.0, 25.0, km), impact_areas=[_circle(72.0, 25.0)]), INPK) == expected


@pytest.mark.parametrize(("km", "expected"), [(70.0, []), (69.999, ["IMPACT_AREA_TOO_CLOSE"])])
def test_in_pk_art5_impact_area_70_km_from_the_boundary(km: float, expected: list[str]) -> None:
    """IN-PK 2005 art. 5: the planned impact area at least 70 km from the boundary."""
    assert codes(_in(impact_areas=[_at_distance(73.3, 25.0, km)]), INPK) == expected


def test_in_pk_art5_impact_threshold_is_configurable() -> None:
    """IN-PK 2005 art. 5: some summaries say 75 km; the threshold comes from config."""
    msg = _in(impact_areas=[_at_distance(73.3, 25.0, 72.0)])
    assert codes(msg, INPK) == []
    assert INPK.geometry is not None
    stricter = INPK.model_copy(update={"geometry": INPK.geometry.model_copy(update={"impact_area_min_km": 75.0})})
    assert codes(msg, stricter) == ["IMPACT_AREA_TOO_CLOSE"]


def test_in_pk_art5_sites_on_the_senders_own_side() -> None:
    """IN-PK 2005 art. 5: launch site and impact area on the notifying party's own side of the boundary."""
    assert codes(_in(launch_area=_circle(77.0, 25.0), impact_areas=[_circle(78.0, 25.0)]), INPK) == [
        "WRONG_SIDE_OF_BOUNDARY", "WRONG_SIDE_OF_BOUNDARY"]  # fmt: skip


def test_in_pk_art6_trajectory_crossing_the_boundary_is_rejected() -> None:
    """IN-PK 2005 art. 6: the trajectory must not cross the boundary (and its impact area is on the far side)."""
    msg = _in(impact_areas=[_circle(76.5, 28.5)])
    assert codes(msg, INPK) == ["WRONG_SIDE_OF_BOUNDARY", "TRAJECTORY_CROSSES_BOUNDARY"]


@pytest.mark.parametrize(("km", "expected"), [(40.0, []), (39.99, ["TRAJECTORY_TOO_CLOSE"])])
def test_in_pk_art6_trajectory_40_km_from_the_boundary(km: float, expected: list[str]) -> None:
    """IN-PK 2005 art. 6: the trajectory at least 40 km from the boundary. Two small areas north and south of the
    spike: the corridor between them passes the spike's tip; moved west until it is exactly 40 km away."""
    spike = (73.8, 29.5)
    lon = spike[0] - 0.36
    target = km + 1e-6  # "exactly", to a millimetre: the solution of a float equation lands either side
    for _ in range(40):  # the corridor of two 1 km circles on a meridian: solve for the meridian that gives km
        got = LINE.corridor(Shape.circle(lon, 31.5, 1.0), Shape.circle(lon, 27.5, 1.0))[1]
        lon -= (target - got) / 100.0
    msg = _in(launch_area=_circle(lon, 31.5, 1.0), impact_areas=[_circle(lon, 27.5, 1.0)])
    assert codes(msg, INPK) == expected


def test_in_pk_named_area_cannot_be_measured() -> None:
    """IN-PK 2005 art. 5-6 measure distances, so areas must be polygons or circles."""
    assert codes(_in(impact_areas=[{"kind": "water_body", "name": "Arabian Sea"}]), INPK) == ["AREA_NOT_MEASURABLE"]


def test_in_pk_polygon_impact_area_is_measured_from_its_edge() -> None:
    """IN-PK 2005 art. 5: a polygon impact area is as close as its nearest edge, not its centre."""
    points = [{"lon": 74.4, "lat": 26.0}, {"lon": 72.0, "lat": 26.0}, {"lon": 72.0, "lat": 27.0}]
    near_edge = {"kind": "polygon", "points": points}
    assert codes(_in(impact_areas=[near_edge]), INPK) == ["IMPACT_AREA_TOO_CLOSE"]


def test_in_pk_amendment_meets_the_lead_time_again_when_it_moves_the_window() -> None:
    """IN-PK 2005 art. 2 (72 h before the start of the window) says nothing of changes; DOMAIN.md ("Amendments
    change a notice", [I]): the lead time applies to a changed window. 48 h before the window, moving the impact
    area is forwarded (the counterpart had its three days' notice of when), moving the window is refused;
    `amendment_lead = "any_change"` holds every amendment to the lead time."""
    notice = _in(window=_window(timedelta(days=4)))
    later = NOW + timedelta(days=2)  # 48 h before the window opens
    area = _follow("amendment", notice, impact_areas=[_circle(73.0, 24.5, 10.0)])
    window = _follow("amendment", notice, window=_window(timedelta(days=2, hours=1)))
    assert INPK.amendment_lead == "always"
    assert codes(area, INPK, later, notice=Notice.of(notice)) == []
    assert codes(window, INPK, later, notice=Notice.of(notice)) == ["LEAD_TIME_TOO_SHORT"]
    strict = INPK.model_copy(update={"amendment_lead": "any_change"})
    assert codes(area, strict, later, notice=Notice.of(notice)) == ["LEAD_TIME_TOO_SHORT"]
    assert codes(area, strict, NOW, notice=Notice.of(notice)) == []  # four days ahead: in time


def test_in_pk_amendment_across_the_boundary_is_judged_as_the_notice_stands() -> None:
    """IN-PK 2005 art. 5-6: an amendment that moves the impact area 200 km across the boundary carries no launch
    area, but the notice as amended does: its trajectory crosses and its impact area is on the other side."""
    notice = _in()
    moved = _follow("amendment", notice, impact_areas=[_circle(77.0, 25.0)])
    assert codes(moved, INPK, notice=Notice.of(notice)) == ["WRONG_SIDE_OF_BOUNDARY", "TRAJECTORY_CROSSES_BOUNDARY"]


def test_amendment_that_leaves_no_impact_area_is_refused() -> None:
    """IN-PK 2005 art. 5 ("the planned impact area"): a notice amended to name none is refused as a notice
    without one would be."""
    notice = _in()
    refused = _follow("amendment", notice, impact_areas=[])
    assert codes(refused, INPK, notice=Notice.of(notice)) == ["IMPACT_AREA_REQUIRED"]


@pytest.mark.parametrize("agreement", ["CN-RU-2009", "US-RU-1988", "IN-PK-2005"])
def test_a_ballistic_notice_names_its_impact_area(agreement: str) -> None:
    """US-USSR 1988 art. II ("the area of impact"), IN-PK 2005 art. 5 ("the planned impact area"), CN-RU 2009
    modelled on 1988 ([I], DOMAIN.md "Content, channel and acknowledgement rules are not public"): a
    ballistic-missile notice without one is refused IMPACT_AREA_REQUIRED, by the agreement, not the schema."""
    a = PRESETS[agreement]
    assert a.requires_impact_area
    sender, counterpart = a.parties
    base = _in() if agreement == "IN-PK-2005" else _msg(agreement=agreement, sender=sender, recipients=[counterpart],
                                                        window=_window(timedelta(days=7)))  # fmt: skip
    bare = base.model_copy(update={"impact_areas": []})
    assert "IMPACT_AREA_REQUIRED" in codes(bare, a)
    assert "IMPACT_AREA_REQUIRED" not in codes(base, a)
    slv = VehicleCategory.SPACE_LAUNCH_VEHICLE
    space = bare.model_copy(update={"vehicle": bare.vehicle.model_copy(update={"category": slv})})
    assert "IMPACT_AREA_REQUIRED" not in codes(space, a)  # a space launch's areas are the agreement's other rules


# --- Hague Code of Conduct ----------------------------------------------------------------------

HCOC = PRESETS["HCOC"]


def _fr(**overrides: Any) -> PlannedLaunch:
    base: dict[str, Any] = {"agreement": "HCOC", "sender": "FR", "recipients": ["AT", "GB", "JP", "US"],
                            "vehicle": {"category": "space_launch_vehicle", "generic_class": "Ariane 6"},
                            "impact_areas": []}  # fmt: skip
    return _msg(**{**base, **overrides})


def test_hcoc_one_sender_many_recipients_passes() -> None:
    """Hague Code: a notice fans out to every other subscriber."""
    assert codes(_fr(), HCOC) == []


def test_hcoc_has_no_fixed_lead_time_but_comes_before_the_window() -> None:
    """Hague Code para 4(a)(iii): no fixed lead time (an hour ahead is in order), but sent before the window."""
    assert codes(_fr(window=_window(timedelta(hours=1))), HCOC) == []
    assert codes(_fr(window=_window(-timedelta(minutes=5))), HCOC) == ["WINDOW_IN_PAST"]


def test_hcoc_ballistic_notice_needs_no_impact_area() -> None:
    """Hague Code para 4(a)(iii) (DOMAIN.md): a pre-launch notification carries the generic class, the window, the
    launch area and the planned direction; no impact area. A ballistic-missile notice without one is forwarded."""
    assert not HCOC.requires_impact_area
    missile = _fr(vehicle={"category": "other_ballistic_missile", "generic_class": "M51"}, impact_areas=[])
    assert codes(missile, HCOC) == []
    strict = HCOC.model_copy(update={"requires_impact_area": True})
    assert codes(missile, strict) == ["IMPACT_AREA_REQUIRED"]


def test_hcoc_notice_gives_the_planned_direction() -> None:
    """Hague Code para 4(a)(iii): the generic class, the window, the launch area and the planned direction."""
    assert codes(_fr(direction=None), HCOC) == ["DIRECTION_REQUIRED"]


def test_hcoc_recipient_must_subscribe() -> None:
    """Hague Code: recipients are subscribing states of the configured list."""
    assert codes(_fr(recipients=["AT", "CN"]), HCOC) == ["RECIPIENT_NOT_PARTY"]


def test_hcoc_sender_must_subscribe() -> None:
    """Hague Code: a non-subscriber cannot notify through it."""
    assert codes(_fr(sender="BR"), HCOC) == ["SENDER_NOT_PARTY"]


def test_hcoc_in_force_since_25_november_2002() -> None:
    """Hague Code: launched in The Hague on 25 November 2002."""
    received = datetime(2002, 11, 24, 12, tzinfo=UTC)
    msg = _fr(created_at=_iso(received), window={"start": _iso(received + timedelta(days=2)),
                                                 "end": _iso(received + timedelta(days=3))})  # fmt: skip
    assert codes(msg, HCOC, received) == ["AGREEMENT_NOT_IN_FORCE"]


def test_presets_cite_their_sources() -> None:
    """Every preset names where its values come from, and marks interpretations [I]."""
    for agreement in PRESETS.values():
        assert agreement.sources, agreement.id
    assert any("[I]" in s for s in CNRU.sources) and any("[I]" in s for s in INPK.sources)


@pytest.mark.parametrize(("agreement", "required"), [("CN-RU-2009", True), ("US-RU-1988", True),
                                                      ("IN-PK-2005", True), ("HCOC", False)])  # fmt: skip
def test_confidential_by_the_agreement(agreement: str, required: bool) -> None:
    """CN-RU 2009 ("Notifications are confidential"), US-RU 1988 (NRRC communications confidential) and IN-PK
    2005 ("Confidential"), DOMAIN.md: a message saying confidential: false is refused NOT_CONFIDENTIAL. The Hague
    Code says nothing of it: the flag is the sender's to set."""
    a = PRESETS[agreement]
    assert a.confidential is required
    open_msg = _msg(confidential=False)
    assert ("NOT_CONFIDENTIAL" in codes(open_msg, a)) is required
    assert "NOT_CONFIDENTIAL" not in codes(_msg(), a)
