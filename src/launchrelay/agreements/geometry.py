"""Geodesic distances between areas and a boundary line, on the WGS-84 ellipsoid.

Lines are densified along geodesics (PROJ's geodesic routines, via pyproj) so
that straight segments between neighbouring vertices stay within metres of the
true curve. A distance from a point is computed in an azimuthal equidistant
projection centred on that point, where distances from the centre are exact;
for a line or a polygon the nearest pair is found first, then measured again
from its own centre. Crossings are tested on the densified lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely import LineString, MultiLineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

GEOD = Geod(ellps="WGS84")
DENSIFY_KM = 1.0

LonLat = tuple[float, float]


def densify(coords: Sequence[LonLat], spacing_km: float = DENSIFY_KM) -> list[LonLat]:
    """Insert points along each geodesic segment so that none is longer than ``spacing_km``."""
    out: list[LonLat] = [coords[0]]
    for (lon1, lat1), (lon2, lat2) in pairwise(coords):
        _, _, dist_m = GEOD.inv(lon1, lat1, lon2, lat2)
        extra = int(dist_m / (spacing_km * 1000.0))
        if extra > 0:
            out.extend(GEOD.npts(lon1, lat1, lon2, lat2, extra))
        out.append((lon2, lat2))
    return out


@lru_cache(maxsize=512)
def _aeqd(lon: float, lat: float) -> Transformer:
    crs = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs"
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _project(geom: BaseGeometry, centre: LonLat) -> BaseGeometry:
    fwd = _aeqd(*centre)

    def to_plane(coords: np.ndarray) -> np.ndarray:
        x, y = fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, to_plane)


def _lines_from_geojson(obj: dict[str, Any]) -> list[list[LonLat]]:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [line for f in obj.get("features", []) for line in _lines_from_geojson(f)]
    if kind == "Feature":
        return _lines_from_geojson(obj.get("geometry") or {})
    if kind == "LineString":
        return [[(float(x), float(y)) for x, y, *_ in obj["coordinates"]]]
    if kind == "MultiLineString":
        return [[(float(x), float(y)) for x, y, *_ in line] for line in obj["coordinates"]]
    raise ValueError(f"boundary GeoJSON must hold LineString or MultiLineString geometry, not {kind!r}")


@dataclass(frozen=True)
class Boundary:
    """A boundary line (for example an international boundary) given in GeoJSON."""

    lines: tuple[tuple[LonLat, ...], ...]
    _dense: MultiLineString = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.lines or any(len(line) < 2 for line in self.lines):
            raise ValueError("a boundary needs at least one line of two or more points")
        dense = MultiLineString([densify(list(line)) for line in self.lines])
        object.__setattr__(self, "_dense", dense)

    @classmethod
    def from_geojson(cls, obj: dict[str, Any]) -> Boundary:
        return cls(tuple(tuple(line) for line in _lines_from_geojson(obj)))

    def distance_from_point_km(self, lon: float, lat: float) -> float:
        """Geodesic distance from a point to the nearest point of the boundary."""
        projected = _project(self._dense, (lon, lat))
        return float(Point(0.0, 0.0).distance(projected)) / 1000.0

    def distance_from_km(self, geom: BaseGeometry) -> float:
        """Distance from a line or polygon (lon/lat, already densified) to the boundary; 0 if they meet."""
        if geom.intersects(self._dense):
            return 0.0
        centre = geom.centroid
        near_geom, _ = nearest_points(geom, self._dense)
        # First pass: nearest pair in plain lon/lat; refine from the candidate and the
        # centroid, each measured exactly in a projection centred on it.
        candidates = [near_geom, centre]
        best = min(self.distance_from_point_km(p.x, p.y) for p in candidates)
        projected_geom = _project(geom, (centre.x, centre.y))
        projected_boundary = _project(self._dense, (centre.x, centre.y))
        near_proj, _ = nearest_points(projected_geom, projected_boundary)
        back = _aeqd(centre.x, centre.y)
        lon, lat = back.transform(near_proj.x, near_proj.y, direction="INVERSE")
        return min(best, self.distance_from_point_km(lon, lat))

    def crossed_by(self, geom: BaseGeometry) -> bool:
        """True when a line (lon/lat, densified) crosses or touches the boundary."""
        return bool(geom.intersects(self._dense))


def geodesic_line(points: Iterable[LonLat]) -> LineString:
    """A densified geodesic polyline through the given points."""
    return LineString(densify(list(points)))


def geodesic_polygon(points: Sequence[LonLat]) -> Polygon:
    """A polygon whose edges follow geodesics, densified."""
    ring = list(points)
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return Polygon(densify(ring))


def distance_km(a: LonLat, b: LonLat) -> float:
    """Geodesic distance between two points."""
    _, _, dist_m = GEOD.inv(a[0], a[1], b[0], b[1])
    return float(dist_m) / 1000.0
