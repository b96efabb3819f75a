"""The agreements' rules, one test per article they enforce, for all four presets.

Pure functions: no broker. ``received_at`` is fixed at NOW (2026-11-28 12:00 UTC).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from conftest import NOW, planned_data
from launchrelay.agreements.config import Agreement, GeometryRules, load_presets
from launchrelay.agreements.rules import check
from launchrelay.contract import decode
from launchrelay.contract.messages import PartyMessage, PlannedLaunch

PRESETS = load_presets()

# A synthetic boundary running north-south along 75°E, with a westward spike
# reaching 73.8°E at 29.5°N.
BOUNDARY = {
    "type": "LineString",
    "coordinates": [[75.0, 20.0], [75.0, 29.0], [73.8, 29.5], [75.0, 30.0], [75.0, 36.0]],
}


def _iso(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _msg(**overrides: Any) -> PartyMessage:
    msg = decode(json.dumps(planned_data(**overrides)))
    assert isinstance(msg, PlannedLaunch), msg
    return msg


def _window(lead: timedelta, length: timedelta = timedelta(days=1)) -> dict[str, str]:
    return {"start": _iso(lead), "end": _iso(lead + length)}


def codes(message: PartyMessage, agreement: Agreement) -> list[str]:
    return [r.code for r in check(message, agreement, NOW)]


# --- CN-RU 2009 -------------------------------------------------------------------------------

CNRU = PRESETS["CN-RU-2009"]


def test_cn_ru_valid_icbm_notification_passes() -> None:
    """CN-RU 2009: an ICBM notice 7 days ahead to the other party breaks no rule."""
    assert codes(_msg(window=_window(timedelta(days=7))), CNRU) == []


@pytest.mark.parametrize("range_km", [1500.0, 2000.0])
def test_cn_ru_art1_missile_range_not_over_2000_km_is_out_of_scope(range_km: float) -> None:
    """CN-RU 2009 art. 1: a ballistic missile of 2000 km or less is outside the agreement's scope."""
    msg = _msg(vehicle={"category": "other_ballistic_missile", "generic_class": "DF-21", "range_km": range_km})
    assert codes(msg, CNRU) == ["OUT_OF_SCOPE_RANGE"]


def test_cn_ru_art1_missile_without_range_cannot_be_scoped() -> None:
    """CN-RU 2009 art. 1: scope depends on range, so a missile notice must give it."""
    msg = _msg(vehicle={"category": "icbm", "generic_class": "DF-41"})
    assert codes(msg, CNRU) == ["RANGE_REQUIRED"]


def test_cn_ru_art1_space_launch_needs_no_range() -> None:
    """CN-RU 2009 art. 1: space launch vehicles are covered whatever their range."""
    msg = _msg(
        vehicle={"category": "space_launch_vehicle", "generic_class": "Long March 5"},
        impact_areas=[],
        window=_window(timedelta(days=3)),
    )
    assert codes(msg, CNRU) == []


def test_cn_ru_lead_time_23_hours_is_too_late() -> None:
    """CN-RU 2009: notice no later than 24 h before launch; 23 h is too late."""
    assert codes(_msg(window=_window(timedelta(hours=23))), CNRU) == ["LEAD_TIME_TOO_SHORT"]


def test_cn_ru_lead_time_exactly_24_hours_is_in_time() -> None:
    """CN-RU 2009: exactly 24 h ahead meets the minimum."""
    assert codes(_msg(window=_window(timedelta(hours=24))), CNRU) == []


def test_cn_ru_lead_time_31_days_is_too_early() -> None:
    """CN-RU 2009: notice no earlier than 30 days before launch; 31 days is too early."""
    assert codes(_msg(window=_window(timedelta(days=31))), CNRU) == ["LEAD_TIME_TOO_LONG"]


def test_cn_ru_message_to_a_third_state_is_refused() -> None:
    """CN-RU 2009 is bilateral: a CN notice goes to RU and nobody else."""
    assert codes(_msg(recipients=["US"], window=_window(timedelta(days=2))), CNRU) == ["RECIPIENT_NOT_PARTY"]


def test_cn_ru_every_violation_is_reported() -> None:
    """All violations come back together, not only the first."""
    msg = _msg(
        recipients=["US"],
        vehicle={"category": "icbm", "generic_class": "X", "range_km": 1000.0},
        window=_window(timedelta(hours=1)),
    )
    assert codes(msg, CNRU) == ["RECIPIENT_NOT_PARTY", "OUT_OF_SCOPE_RANGE", "LEAD_TIME_TOO_SHORT"]


# --- US-RU 1988 -------------------------------------------------------------------------------

USRU = PRESETS["US-RU-1988"]


def _us(**overrides: Any) -> PartyMessage:
    base: dict[str, Any] = {"agreement": "US-RU-1988", "sender": "US", "recipients": ["RU"]}
    return _msg(**{**base, **overrides})


def test_us_ru_1988_icbm_48_hours_ahead_passes() -> None:
    """US-USSR 1988: an ICBM launch notified 48 h ahead is in order."""
    assert codes(_us(window=_window(timedelta(hours=48))), USRU) == []


def test_us_ru_1988_launch_announced_23_hours_ahead_is_too_late() -> None:
    """US-USSR 1988: at least 24 hours before launch; 23 h is too late."""
    assert codes(_us(window=_window(timedelta(hours=23))), USRU) == ["LEAD_TIME_TOO_SHORT"]


def test_us_ru_1988_covers_only_icbm_and_slbm() -> None:
    """US-USSR 1988: space launches are outside its scope."""
    msg = _us(
        vehicle={"category": "space_launch_vehicle", "generic_class": "Falcon 9"},
        window=_window(timedelta(days=2)),
    )
    assert codes(msg, USRU) == ["OUT_OF_SCOPE_CATEGORY"]


def test_us_ru_1988_notice_valid_four_days_window_five_is_too_long() -> None:
    """US-USSR 1988: a notice is valid for four days, so a five-day window is too long."""
    assert codes(_us(window=_window(timedelta(days=2), timedelta(days=5))), USRU) == ["WINDOW_TOO_LONG"]
    assert codes(_us(window=_window(timedelta(days=2), timedelta(days=4))), USRU) == []


def test_us_ru_1988_slbm_from_named_sea_passes() -> None:
    """US-USSR 1988 art. 1: an SLBM launch area may be a named sea."""
    msg = _us(
        sender="RU",
        recipients=["US"],
        vehicle={"category": "slbm", "generic_class": "Bulava", "range_km": 8000.0},
        launch_area={"kind": "water_body", "name": "White Sea"},
        window=_window(timedelta(days=2)),
    )
    assert codes(msg, USRU) == []


# --- IN-PK 2005 -------------------------------------------------------------------------------

INPK = PRESETS["IN-PK-2005"].model_copy(update={"geometry": GeometryRules(boundary=BOUNDARY)})


def _circle(lon: float, lat: float, radius_km: float = 5.0) -> dict[str, Any]:
    return {"kind": "circle", "centre": {"lat": lat, "lon": lon}, "radius": radius_km, "unit": "km"}


def _in(**overrides: Any) -> PartyMessage:
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


def test_in_pk_valid_flight_test_passes() -> None:
    """IN-PK 2005: a test well away from the boundary, notified 4 days ahead, breaks no rule."""
    assert codes(_in(), INPK) == []


def test_in_pk_art2_window_opening_71_hours_after_receipt_is_rejected() -> None:
    """IN-PK 2005 art. 2: no less than 3 days (72 h) before the window opens; 71 h is too late."""
    assert codes(_in(window=_window(timedelta(hours=71))), INPK) == ["LEAD_TIME_TOO_SHORT"]
    assert codes(_in(window=_window(timedelta(hours=72))), INPK) == []


def test_in_pk_art2_window_longer_than_5_days_is_rejected() -> None:
    """IN-PK 2005 art. 2: a launch window of at most five days."""
    assert codes(_in(window=_window(timedelta(days=4), timedelta(days=6))), INPK) == ["WINDOW_TOO_LONG"]


def test_in_pk_scope_excludes_space_launches() -> None:
    """IN-PK 2005: surface-to-surface ballistic missiles only."""
    msg = _in(vehicle={"category": "space_launch_vehicle", "generic_class": "PSLV"}, impact_areas=[])
    assert "OUT_OF_SCOPE_CATEGORY" in codes(msg, INPK)


def test_in_pk_art5_launch_site_29_km_from_boundary_is_rejected() -> None:
    """IN-PK 2005 art. 5: the launch site at least 40 km from the boundary; about 28 km is too close.

    The trajectory starts there too, so it is reported as too close as well.
    """
    msg = _in(launch_area=_circle(74.7, 32.0, 0.5), impact_areas=[_circle(73.0, 33.0)])
    assert codes(msg, INPK) == ["LAUNCH_SITE_TOO_CLOSE", "TRAJECTORY_TOO_CLOSE"]


def test_in_pk_art5_impact_area_within_70_km_is_rejected() -> None:
    """IN-PK 2005 art. 5: the impact area at least 70 km from the boundary; about 40 km is too close."""
    msg = _in(impact_areas=[_circle(74.5, 25.0, 10.0)])
    assert codes(msg, INPK) == ["IMPACT_AREA_TOO_CLOSE"]


def test_in_pk_art5_impact_threshold_is_configurable() -> None:
    """IN-PK 2005 art. 5: some summaries say 75 km; the threshold comes from config."""
    msg = _in(impact_areas=[_circle(74.2, 25.0, 1.0)])  # about 80 km from the line
    assert codes(msg, INPK) == []
    stricter = INPK.model_copy(update={"geometry": GeometryRules(boundary=BOUNDARY, impact_area_min_km=85.0)})
    assert codes(msg, stricter) == ["IMPACT_AREA_TOO_CLOSE"]


def test_in_pk_art6_trajectory_crossing_the_boundary_is_rejected() -> None:
    """IN-PK 2005 art. 6: the trajectory must not cross the boundary."""
    msg = _in(impact_areas=[_circle(76.5, 28.5)])
    assert codes(msg, INPK) == ["TRAJECTORY_CROSSES_BOUNDARY"]


def test_in_pk_art6_trajectory_passing_within_40_km_is_rejected() -> None:
    """IN-PK 2005 art. 6: the trajectory at least 40 km from the boundary; ~29 km fails."""
    msg = _in(launch_area=_circle(73.5, 31.0), impact_areas=[_circle(73.5, 28.0)])
    assert codes(msg, INPK) == ["TRAJECTORY_TOO_CLOSE"]


def test_in_pk_named_area_cannot_be_measured() -> None:
    """IN-PK 2005 art. 5-6 measure distances, so areas must be polygons or circles."""
    msg = _in(impact_areas=[{"kind": "water_body", "name": "Arabian Sea"}])
    assert codes(msg, INPK) == ["AREA_NOT_MEASURABLE"]


def test_in_pk_polygon_impact_area_is_measured_from_its_edge() -> None:
    """A polygon impact area is as close as its nearest edge, not its centre."""
    near_edge = {
        "kind": "polygon",
        "points": [{"lon": 74.4, "lat": 26.0}, {"lon": 72.0, "lat": 26.0}, {"lon": 72.0, "lat": 27.0}],
    }
    assert codes(_in(impact_areas=[near_edge]), INPK) == ["IMPACT_AREA_TOO_CLOSE"]


# --- Hague Code of Conduct ----------------------------------------------------------------------

HCOC = PRESETS["HCOC"]


def _fr(**overrides: Any) -> PartyMessage:
    base: dict[str, Any] = {
        "agreement": "HCOC",
        "sender": "FR",
        "recipients": ["AT", "GB", "JP", "US"],
        "vehicle": {"category": "space_launch_vehicle", "generic_class": "Ariane 6"},
        "impact_areas": [],
    }
    return _msg(**{**base, **overrides})


def test_hcoc_one_sender_many_recipients_passes() -> None:
    """Hague Code: a notice fans out to every other subscriber."""
    assert codes(_fr(), HCOC) == []


def test_hcoc_has_no_fixed_lead_time() -> None:
    """Hague Code: no fixed lead time, so a notice one hour ahead is in order."""
    assert codes(_fr(window=_window(timedelta(hours=1))), HCOC) == []


def test_hcoc_recipient_must_subscribe() -> None:
    """Hague Code: recipients are subscribing states of the configured list."""
    assert codes(_fr(recipients=["AT", "CN"]), HCOC) == ["RECIPIENT_NOT_PARTY"]


def test_hcoc_sender_must_subscribe() -> None:
    """Hague Code: a non-subscriber cannot notify through it."""
    assert codes(_fr(sender="BR"), HCOC) == ["SENDER_NOT_PARTY"]


# --- message types other than planned launches -----------------------------------------------


def test_amendment_window_is_held_to_the_same_lead_time() -> None:
    """A postponement's new window is checked like a new notice (CN-RU 2009: 24 h)."""
    amendment = decode(
        json.dumps(
            {
                "message_type": "amendment",
                "message_id": "a1",
                "agreement": "CN-RU-2009",
                "sender": "CN",
                "recipients": ["RU"],
                "launch_key": "CN-1",
                "created_at": "2026-11-28T11:00:00Z",
                "refers_to": "p1",
                "window": _window(timedelta(hours=2)),
            }
        )
    )
    assert codes(amendment, CNRU) == ["LEAD_TIME_TOO_SHORT"]  # type: ignore[arg-type]
