"""What a notification's map shows, worked out on the server from the notice as it stands and its agreement.

The page's script (static/map.js) only draws: it gets GeoJSON in longitude/latitude and projects it with d3-geo in
an azimuthal equidistant projection centred on the launch area, where distances and directions from the launch
are true and nothing breaks at the antimeridian or a pole. Everything measured here is measured as the rules
measure it (agreements.geometry, on the WGS-84 ellipsoid): a circle's outline is its geodesic circle, and for an
agreement with a boundary (IN-PK 2005) each area's distance from the line is the one the rules compared with the
agreement's minimum, drawn between the two nearest points.

Areas given by name (an ocean quadrant, a body of water) have no outline in the message; they are listed, not
drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError

from launchrelay.agreements.config import Agreement
from launchrelay.agreements.geometry import GEOD, LonLat, Shape, distance_km
from launchrelay.agreements.rules import prepared_boundary, shape_of
from launchrelay.contract.areas import Area, CircleArea, OceanQuadrantArea, PolygonArea
from launchrelay.contract.messages import CompassSector
from launchrelay.contract.notice import Notice

#: a direction is drawn at least this far from the launch (or past the farthest impact area)
DIRECTION_KM = 300.0
#: a compass sector spans this much either side of its bearing (eight sectors of 45 degrees)
SECTOR_HALF_DEG = 22.5
#: points along a drawn geodesic (a direction, a trajectory, a sector's arc)
_STEPS = 48
_BEARING = {s: i * 45.0 for i, s in enumerate(CompassSector)}


def _feature(role: str, label: str, geometry: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"role": role, "label": label, **extra}, "geometry": geometry}


def _pt(lonlat: LonLat | np.ndarray) -> list[float]:
    return [round(float(lonlat[0]), 5), round(float(lonlat[1]), 5)]


def _outline(area: CircleArea | PolygonArea, shape: Shape) -> list[list[float]]:
    """A closed ring: a polygon's own points (the script joins them by great circles, as close to the rules'
    geodesics as a map shows), a circle's geodesic outline."""
    ring = [_pt(p) for p in shape.outline] if shape.is_circle else [[p.lon, p.lat] for p in area.points]  # type: ignore[union-attr]
    return ring if ring[0] == ring[-1] else [*ring, ring[0]]


def _geodesic(start: LonLat, azimuth: float, km: float) -> list[list[float]]:
    steps = np.linspace(0.0, km * 1000.0, _STEPS)
    lons, lats, _ = GEOD.fwd(np.full(_STEPS, start[0]), np.full(_STEPS, start[1]), np.full(_STEPS, azimuth), steps)
    return [_pt(p) for p in zip(lons, lats, strict=True)]


def _between(a: LonLat, b: LonLat) -> list[list[float]]:
    azimuth, _, metres = GEOD.inv(a[0], a[1], b[0], b[1])
    return _geodesic(a, float(azimuth), metres / 1000.0)


def _named(area: Area) -> str:
    if isinstance(area, OceanQuadrantArea):
        return f"the {area.quadrant.value} quadrant of the {area.ocean.value.title()} Ocean"
    return str(getattr(area, "name", area.kind))


def map_of(notice: dict[str, Any] | None, agreement: Agreement | None) -> dict[str, Any] | None:
    """The map of ``notice`` (as the ledger keeps it): ``centre`` (lon, lat of the launch area, or the first area
    drawn), ``features`` (GeoJSON, each with ``role`` and ``label``), ``unmapped`` (areas given by name) and
    ``measures`` (each distance from the boundary with the agreement's minimum). None: nothing to draw."""
    if not notice:
        return None
    try:
        n = Notice.from_json(notice)
    except ValidationError:
        return None
    features: list[dict[str, Any]] = []
    unmapped: list[str] = []

    def area(item: Area, role: str, label: str) -> Shape | None:
        if not isinstance(item, CircleArea | PolygonArea):
            unmapped.append(f"{label}: {_named(item)}")
            return None
        shape = shape_of(item)
        features.append(_feature(role, label, {"type": "Polygon", "coordinates": [_outline(item, shape)]}))
        return shape

    launch = area(n.launch_area, "launch", "launch area")
    impacts = [(i, area(a, "impact", f"impact area {i}")) for i, a in enumerate(n.impact_areas)]
    drawn = [(i, s) for i, s in impacts if s is not None]
    if launch is not None:
        for i, impact in drawn:
            line = _between(launch.centre, impact.centre)
            features.append(_feature("trajectory", f"to impact area {i}", {"type": "LineString", "coordinates": line}))
        if n.direction is not None:
            reach = max([DIRECTION_KM, *(distance_km(launch.centre, s.centre) + s.extent_km for _, s in drawn)])
            if n.direction.azimuth_deg is not None:
                line = _geodesic(launch.centre, n.direction.azimuth_deg, reach)
                label = f"direction {n.direction.azimuth_deg:g}°"
                features.append(_feature("direction", label, {"type": "LineString", "coordinates": line}))
            elif n.direction.sector is not None:
                bearing = _BEARING[n.direction.sector]
                arc = [_geodesic(launch.centre, bearing + d, reach)[-1]
                       for d in np.linspace(-SECTOR_HALF_DEG, SECTOR_HALF_DEG, 12)]  # fmt: skip
                ring = [_pt(launch.centre), *arc, _pt(launch.centre)]
                label = f"direction {n.direction.sector.value}"
                features.append(_feature("direction", label, {"type": "Polygon", "coordinates": [ring]}))
    measures = _boundary_features(agreement, launch, drawn, features)
    centre = launch.centre if launch is not None else (drawn[0][1].centre if drawn else None)
    if centre is None:
        return {"centre": None, "features": [], "unmapped": unmapped, "measures": []}
    return {"centre": _pt(centre), "features": features, "unmapped": unmapped, "measures": measures}


def _boundary_features(
    agreement: Agreement | None, launch: Shape | None, impacts: list[tuple[int, Shape]], features: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The agreement's boundary line and each area's distance from it, as the rules measure them."""
    rules = agreement.geometry if agreement is not None else None
    if rules is None or rules.boundary is None:
        return []
    boundary = prepared_boundary(rules)
    lines = [[_pt(p) for p in line] for line in boundary.lines]
    features.append(_feature("boundary", "boundary", {"type": "MultiLineString", "coordinates": lines}))
    measured = [(launch, "launch area", rules.launch_site_min_km)] if launch is not None else []
    measured += [(s, f"impact area {i}", rules.impact_area_min_km) for i, s in impacts]
    measures, kms = [], {}
    for shape, label, minimum in measured:
        km = kms[label] = boundary.distance_km(shape)
        on_area, on_line = boundary.nearest_pair(shape)
        short = km < minimum
        text = f"{label}: {km:.1f} km from the boundary (at least {minimum:g} km)"
        features.append(_feature("distance", f"{km:.1f} km", {"type": "LineString",
                                 "coordinates": [_pt(on_area), _pt(on_line)]}, short=short))  # fmt: skip
        measures.append({"text": text, "short": short})
    if launch is not None:
        for i, impact in impacts:
            crosses, corridor_km = boundary.corridor(launch, impact)
            # as the rules take it: the corridor holds both areas, whose own distances are exact
            km = min(corridor_km, kms["launch area"], kms[f"impact area {i}"])
            text = (f"trajectory to impact area {i}: crosses the boundary" if crosses else
                    f"trajectory to impact area {i}: {km:.1f} km from the boundary (at least "
                    f"{rules.trajectory_min_km:g} km)")  # fmt: skip
            measures.append({"text": text, "short": crosses or km < rules.trajectory_min_km})
    return measures
