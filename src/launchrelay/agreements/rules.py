"""The agreements' rules as pure functions: message + agreement + time -> every violation.

No I/O and no clock: the caller passes ``received_at`` (the relay uses the
broker's append time of the record, so a replay after a crash decides the same).
Each rule returns a list of :class:`~launchrelay.contract.messages.Reason`;
:func:`check` runs all that apply and returns them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache

from launchrelay.agreements.config import Agreement, GeometryRules, Topology
from launchrelay.agreements.geometry import Boundary, geodesic_line, geodesic_polygon
from launchrelay.contract.areas import Area, CircleArea, PolygonArea
from launchrelay.contract.messages import (
    Amendment,
    CompletedLaunch,
    LaunchWindow,
    PartyMessage,
    PlannedLaunch,
    Reason,
    Vehicle,
)
from launchrelay.reasons import ReasonCode as R


def _reason(code: R, message: str, field: str | None = None) -> Reason:
    return Reason(code=code.value, message=message, field=field)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600.0
    return f"{hours:.1f} h" if abs(hours) < 72 else f"{hours / 24.0:.1f} days"


def check_parties(message: PartyMessage, agreement: Agreement) -> list[Reason]:
    """Sender and recipients must be parties; a bilateral message goes to the other party."""
    out: list[Reason] = []
    if message.sender not in agreement.parties:
        out.append(_reason(R.SENDER_NOT_PARTY, f"{message.sender} is not a party to {agreement.id}", "sender"))
    strangers = [r for r in message.recipients if r not in agreement.parties]
    if strangers:
        out.append(
            _reason(R.RECIPIENT_NOT_PARTY, f"{', '.join(strangers)} not a party to {agreement.id}", "recipients")
        )
    elif agreement.topology is Topology.BILATERAL:
        others = [p for p in agreement.parties if p != message.sender]
        if sorted(message.recipients) != others and message.sender in agreement.parties:
            out.append(
                _reason(
                    R.RECIPIENT_NOT_PARTY,
                    f"a {agreement.id} message from {message.sender} goes to {', '.join(others)}",
                    "recipients",
                )
            )
    return out


def check_scope(vehicle: Vehicle, agreement: Agreement, field: str = "vehicle") -> list[Reason]:
    """The vehicle must be of a covered category and, where a range threshold applies, above it."""
    if vehicle.category not in agreement.categories:
        covered = ", ".join(c.value for c in agreement.categories)
        return [
            _reason(
                R.OUT_OF_SCOPE_CATEGORY,
                f"{agreement.id} covers {covered}; {vehicle.category.value} is outside its scope",
                f"{field}.category",
            )
        ]
    threshold = agreement.min_ballistic_range_km
    if threshold is None or not vehicle.category.is_ballistic:
        return []
    if vehicle.range_km is None:
        return [
            _reason(
                R.RANGE_REQUIRED,
                f"{agreement.id} covers ballistic missiles with a range over {threshold:g} km; give range_km",
                f"{field}.range_km",
            )
        ]
    if vehicle.range_km <= threshold:
        return [
            _reason(
                R.OUT_OF_SCOPE_RANGE,
                f"range {vehicle.range_km:g} km is not over {agreement.id}'s threshold of {threshold:g} km",
                f"{field}.range_km",
            )
        ]
    return []


def check_timing(window: LaunchWindow, agreement: Agreement, received_at: datetime) -> list[Reason]:
    """Lead time from receipt to window start, and the window's length."""
    out: list[Reason] = []
    lead = window.start - received_at
    if agreement.min_lead is not None and lead < agreement.min_lead:
        out.append(
            _reason(
                R.LEAD_TIME_TOO_SHORT,
                f"window opens {_hours(lead)} after receipt; {agreement.id} needs at least "
                f"{_hours(agreement.min_lead)}",
                "window.start",
            )
        )
    if agreement.max_lead is not None and lead > agreement.max_lead:
        out.append(
            _reason(
                R.LEAD_TIME_TOO_LONG,
                f"window opens {_hours(lead)} after receipt; {agreement.id} allows at most "
                f"{_hours(agreement.max_lead)}",
                "window.start",
            )
        )
    if agreement.max_window is not None and window.length > agreement.max_window:
        out.append(
            _reason(
                R.WINDOW_TOO_LONG,
                f"window lasts {_hours(window.length)}; {agreement.id} allows at most {_hours(agreement.max_window)}",
                "window.end",
            )
        )
    return out


@lru_cache(maxsize=16)
def _boundary(geojson: str) -> Boundary:
    return Boundary.from_geojson(json.loads(geojson))


def _measurable(area: Area) -> bool:
    return isinstance(area, CircleArea | PolygonArea)


def _centre(area: CircleArea | PolygonArea) -> tuple[float, float]:
    if isinstance(area, CircleArea):
        return (area.centre.lon, area.centre.lat)
    poly = geodesic_polygon([(p.lon, p.lat) for p in area.points])
    return (poly.centroid.x, poly.centroid.y)


def _area_distance_km(area: CircleArea | PolygonArea, boundary: Boundary) -> float:
    if isinstance(area, CircleArea):
        return max(0.0, boundary.distance_from_point_km(area.centre.lon, area.centre.lat) - area.radius_km)
    return boundary.distance_from_km(geodesic_polygon([(p.lon, p.lat) for p in area.points]))


def check_geometry(
    launch_area: Area | None, impact_areas: list[Area] | None, agreement: Agreement, prefix: str = ""
) -> list[Reason]:
    """IN-PK art. 5-6: launch site, impact areas and trajectory kept away from the boundary."""
    rules: GeometryRules | None = agreement.geometry
    if rules is None or rules.boundary is None:
        return []
    boundary = _boundary(json.dumps(rules.boundary, sort_keys=True))
    out: list[Reason] = []
    launch: CircleArea | PolygonArea | None = None
    if launch_area is not None:
        if isinstance(launch_area, CircleArea | PolygonArea):
            launch = launch_area
            dist = _area_distance_km(launch, boundary)
            if dist < rules.launch_site_min_km:
                out.append(
                    _reason(
                        R.LAUNCH_SITE_TOO_CLOSE,
                        f"launch area is {dist:.1f} km from the boundary; {agreement.id} needs "
                        f"{rules.launch_site_min_km:g} km",
                        f"{prefix}launch_area",
                    )
                )
        else:
            out.append(
                _reason(
                    R.AREA_NOT_MEASURABLE,
                    f"{agreement.id} measures distances: give the launch area as a polygon or circle",
                    f"{prefix}launch_area",
                )
            )
    for i, area in enumerate(impact_areas or []):
        where = f"{prefix}impact_areas.{i}"
        if not isinstance(area, CircleArea | PolygonArea):
            out.append(
                _reason(
                    R.AREA_NOT_MEASURABLE,
                    f"{agreement.id} measures distances: give impact areas as polygons or circles",
                    where,
                )
            )
            continue
        dist = _area_distance_km(area, boundary)
        if dist < rules.impact_area_min_km:
            out.append(
                _reason(
                    R.IMPACT_AREA_TOO_CLOSE,
                    f"impact area {i} is {dist:.1f} km from the boundary; {agreement.id} needs "
                    f"{rules.impact_area_min_km:g} km",
                    where,
                )
            )
        if launch is None:
            continue
        path = geodesic_line([_centre(launch), _centre(area)])
        if boundary.crossed_by(path):
            out.append(
                _reason(
                    R.TRAJECTORY_CROSSES_BOUNDARY,
                    f"the trajectory to impact area {i} crosses the boundary",
                    where,
                )
            )
        else:
            t_dist = boundary.distance_from_km(path)
            if t_dist < rules.trajectory_min_km:
                out.append(
                    _reason(
                        R.TRAJECTORY_TOO_CLOSE,
                        f"the trajectory to impact area {i} passes {t_dist:.1f} km from the boundary; "
                        f"{agreement.id} needs {rules.trajectory_min_km:g} km",
                        where,
                    )
                )
    return out


def _check_planned(message: PlannedLaunch, agreement: Agreement, received_at: datetime) -> list[Reason]:
    return [
        *check_scope(message.vehicle, agreement),
        *check_timing(message.window, agreement, received_at),
        *check_geometry(message.launch_area, message.impact_areas, agreement),
    ]


def _check_amendment(message: Amendment, agreement: Agreement, received_at: datetime) -> list[Reason]:
    out: list[Reason] = []
    if message.vehicle is not None:
        out += check_scope(message.vehicle, agreement)
    if message.window is not None:
        out += check_timing(message.window, agreement, received_at)
    out += check_geometry(message.launch_area, message.impact_areas, agreement)
    return out


def _check_completed(message: CompletedLaunch, agreement: Agreement, received_at: datetime) -> list[Reason]:
    return check_scope(message.vehicle, agreement)


_BY_TYPE: dict[type, Callable[..., list[Reason]]] = {
    PlannedLaunch: _check_planned,
    Amendment: _check_amendment,
    CompletedLaunch: _check_completed,
}


def check(message: PartyMessage, agreement: Agreement, received_at: datetime) -> list[Reason]:
    """Every rule violation of ``message`` under ``agreement``, as received at ``received_at``."""
    content = _BY_TYPE.get(type(message))
    return [
        *check_parties(message, agreement),
        *(content(message, agreement, received_at) if content else []),
    ]
