"""Distances, crossings and sides between areas and a boundary line, on the WGS-84 ellipsoid, without seams.

No planar operation ever runs on longitudes and latitudes: each question is
answered in an azimuthal equidistant projection centred on the feature it is
about (distances from the centre are exact there, and nothing wraps at the
antimeridian or breaks at a pole), and a distance near a threshold is measured
again exactly between the nearest pair with the geodesic inverse problem
(PROJ's geodesics, via pyproj). Lines are densified along geodesics first, so
straight segments stay within metres of the true curve.

Speed comes from the boundary being prepared once: its densified points are
kept as unit vectors, so a query first measures great-circle angles from the
feature's centre to every point (one matrix product), keeps only the points
that could be the nearest (within the nearest one's distance plus 2 %), and
projects just those: a few dozen points, not the whole line. The projection is
computed from the geodesic inverse problem, so no per-centre setup is paid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pyproj import Geod
from shapely import MultiLineString, MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

GEOD = Geod(ellps="WGS84")
DENSIFY_KM = 1.0
#: Mean Earth radius, for the coarse great-circle filter only (exact distances use the ellipsoid).
_R_KM = 6371.0088
#: The coarse filter keeps boundary points that could be nearest: within the nearest one's distance on the sphere
#: plus this slack. A geodesic on the ellipsoid and the great circle on the mean sphere differ by under 0.6 %, so
#: 2 % covers the two measures either way, and 2 km covers a point inside a 1 km segment.
_SLACK_KM, _SLACK_RATIO = 2.0, 0.02
#: Points on a circle's outline, when a circle takes part in a corridor or a polygon test.
_CIRCLE_POINTS = 72
#: Farther than this from a feature, the boundary is only measured on the sphere: no agreement's threshold is
#: near, and a projection centred on the feature degrades toward its antipode.
_FAR_KM = 5000.0

LonLat = tuple[float, float]
Side = Literal["left", "right"]


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


def distance_km(a: LonLat, b: LonLat) -> float:
    """Geodesic distance between two points."""
    _, _, dist_m = GEOD.inv(a[0], a[1], b[0], b[1])
    return float(dist_m) / 1000.0


def _unit(lonlat: np.ndarray) -> np.ndarray:
    """Unit vectors (on the sphere) of lon/lat rows, for great-circle angles."""
    lon, lat = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def centre_of(points: np.ndarray) -> LonLat:
    """The centre of points on the sphere (the mean of their unit vectors): sound across the antimeridian."""
    v = _unit(points).mean(axis=0)
    norm = float(np.linalg.norm(v))
    if norm < 1e-9:  # points spread around the globe: any centre will do
        return (float(points[0, 0]), float(points[0, 1]))
    x, y, z = v / norm
    return (math.degrees(math.atan2(y, x)), math.degrees(math.asin(max(-1.0, min(1.0, z)))))


class Plane:
    """An azimuthal equidistant projection centred on ``centre``: metres, exact from the centre.

    Computed as the definition reads, with the geodesic inverse problem from the centre (azimuth
    and distance give x and y), which is what PROJ's ``aeqd`` does on the ellipsoid; building a
    PROJ transformer per centre would cost milliseconds, and every notice has its own centres.
    """

    def __init__(self, centre: LonLat) -> None:
        self.centre = centre

    def xy(self, lonlat: np.ndarray) -> np.ndarray:
        n = len(lonlat)
        az, _, dist = GEOD.inv(np.full(n, self.centre[0]), np.full(n, self.centre[1]), lonlat[:, 0], lonlat[:, 1])
        theta = np.radians(np.asarray(az))
        dist = np.asarray(dist)
        return np.column_stack([dist * np.sin(theta), dist * np.cos(theta)])

    def lonlat(self, x: float, y: float) -> LonLat:
        lon, lat, _ = GEOD.fwd(self.centre[0], self.centre[1], math.degrees(math.atan2(x, y)), math.hypot(x, y))
        return (float(lon), float(lat))


@dataclass(frozen=True)
class Shape:
    """A measurable area: a circle (exact) or a polygon (its outline densified along geodesics)."""

    centre: LonLat
    #: the farthest point of the area from its centre, km (a circle's radius)
    extent_km: float
    #: the outline, lon/lat rows (a circle's is sampled, for corridors)
    outline: np.ndarray
    is_circle: bool

    @classmethod
    def circle(cls, lon: float, lat: float, radius_km: float) -> Shape:
        az = np.linspace(0.0, 360.0, _CIRCLE_POINTS, endpoint=False)
        lons, lats, _ = GEOD.fwd(np.full(az.shape, lon), np.full(az.shape, lat), az, np.full(az.shape, radius_km * 1e3))
        return cls((lon, lat), radius_km, np.column_stack([lons, lats]), True)

    @classmethod
    def polygon(cls, points: Sequence[LonLat]) -> Shape:
        ring = list(points)
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        outline = np.array(densify(ring))
        centre = centre_of(outline[:-1])
        _, _, d = GEOD.inv(np.full(len(outline), centre[0]), np.full(len(outline), centre[1]), outline[:, 0],
                           outline[:, 1])  # fmt: skip
        return cls(centre, float(np.max(d)) / 1000.0, outline, False)


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


class Boundary:
    """A boundary line (an international boundary, a line of control), prepared once for many questions."""

    def __init__(self, lines: Sequence[Sequence[LonLat]]) -> None:
        if not lines or any(len(line) < 2 for line in lines):
            raise ValueError("a boundary needs at least one line of two or more points")
        self.lines = tuple(tuple(line) for line in lines)
        self._dense = [np.array(densify(list(line))) for line in self.lines]
        self._units = [_unit(d) for d in self._dense]

    @classmethod
    def from_geojson(cls, obj: dict[str, Any]) -> Boundary:
        return cls(_lines_from_geojson(obj))

    # -- the coarse filter -------------------------------------------------------------------
    def _sphere_km(self, centre: LonLat) -> list[np.ndarray]:
        """Great-circle distance from ``centre`` to every densified point, per line (one matrix product each)."""
        c = _unit(np.array([centre]))[0]
        return [np.arccos(np.clip(units @ c, -1.0, 1.0)) * _R_KM for units in self._units]

    @staticmethod
    def _nearest(kms: list[np.ndarray]) -> float:
        return min(float(km.min()) for km in kms)

    def _near(self, kms: list[np.ndarray], within_km: float) -> list[np.ndarray]:
        """The runs of the densified boundary within ``within_km`` (great circle, as ``kms`` measured), lon/lat."""
        runs = []
        for dense, km in zip(self._dense, kms, strict=True):
            keep = km <= within_km
            if not keep.any():
                continue
            # each kept point brings its neighbours, so every segment reaching into the zone is whole
            widened = keep.copy()
            widened[1:] |= keep[:-1]
            widened[:-1] |= keep[1:]
            idx = np.flatnonzero(widened)
            for group in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
                if len(group) >= 2:
                    runs.append(dense[group[0] : group[-1] + 1])
        return runs

    @staticmethod
    def _widen(km: float) -> float:
        return km * (1 + _SLACK_RATIO) + _SLACK_KM

    # -- distances ---------------------------------------------------------------------------
    def distance_from_point_km(self, lon: float, lat: float) -> float:
        """Geodesic distance from a point to the boundary: exact, measured in a plane centred on the point
        (beyond 5,000 km, where no threshold is, on the sphere)."""
        kms = self._sphere_km((lon, lat))
        coarse = self._nearest(kms)
        if coarse > _FAR_KM:
            return coarse
        runs = self._near(kms, self._widen(coarse))
        if not runs:  # pragma: no cover - the nearest point is always within the coarse distance
            return coarse
        plane = Plane((lon, lat))
        return float(Point(0.0, 0.0).distance(MultiLineString([plane.xy(r) for r in runs]))) / 1000.0

    def distance_km(self, shape: Shape, limit_km: float = math.inf) -> float:
        """Geodesic distance from an area to the boundary (0 when they meet). Exact when it is within
        ``limit_km`` of the boundary; farther than that, a value known to be more than ``limit_km``."""
        kms = self._sphere_km(shape.centre)
        coarse = self._nearest(kms) - shape.extent_km
        if coarse > self._widen(limit_km):
            return coarse  # clearly beyond the threshold: its exact value changes no decision
        if shape.is_circle:
            return max(0.0, self.distance_from_point_km(*shape.centre) - shape.extent_km)
        return self._polygon_km(shape.outline, shape.centre, shape.extent_km, kms, convex=False)

    def _polygon_km(
        self, outline: np.ndarray, centre: LonLat, extent_km: float, kms: list[np.ndarray], *, convex: bool
    ) -> float:
        """Two passes: the nearest pair in a plane centred on the area, then the exact distance from each end."""
        from_centre = self._nearest(kms)
        if from_centre - extent_km > _FAR_KM:
            return from_centre - extent_km
        # The area is at most from_centre + extent from the boundary (through its farthest point), and its
        # nearest boundary point is at most that plus extent from the centre.
        near = self._near(kms, self._widen(from_centre + 2 * extent_km))
        if not near:  # pragma: no cover - the coarse distance always finds something
            return from_centre - extent_km
        plane = Plane(centre)
        line = MultiLineString([plane.xy(r) for r in near])
        area = self._area(outline, plane, convex)
        if area.intersects(line):
            return 0.0
        on_area, on_line = nearest_points(area, line)
        a, b = plane.lonlat(on_area.x, on_area.y), plane.lonlat(on_line.x, on_line.y)
        # From the boundary's nearest point, exactly: the area in a plane centred there.
        from_b = float(Point(0.0, 0.0).distance(self._area(outline, Plane(b), convex))) / 1000.0
        return min(distance_km(a, b), from_b, self.distance_from_point_km(*a))

    @staticmethod
    def _area(outline: np.ndarray, plane: Plane, convex: bool) -> BaseGeometry:
        pts = plane.xy(outline)
        return MultiPoint(pts).convex_hull if convex else Polygon(pts)

    # -- corridors and sides -----------------------------------------------------------------
    def corridor(self, a: Shape, b: Shape, limit_km: float = math.inf) -> tuple[bool, float]:
        """The corridor of every straight flight from area ``a`` to area ``b`` (their convex hull): whether it
        crosses the boundary, and its distance from it (0 when it crosses; farther than ``limit_km``, a value
        known to be beyond it)."""
        outline = np.vstack([a.outline, b.outline])
        centre = centre_of(np.array([a.centre, b.centre]))
        extent = max(distance_km(centre, a.centre) + a.extent_km, distance_km(centre, b.centre) + b.extent_km)
        kms = self._sphere_km(centre)
        coarse = self._nearest(kms) - extent
        if coarse > self._widen(limit_km):
            return False, coarse
        km = self._polygon_km(outline, centre, extent, kms, convex=True)
        return km == 0.0, km

    def nearest_pair(self, shape: Shape) -> tuple[LonLat, LonLat]:
        """The point of the area and the point of the boundary nearest each other (the ends of the distance
        :meth:`distance_km` measures, for a map), found in a plane centred on the area."""
        kms = self._sphere_km(shape.centre)
        near = self._near(kms, self._widen(self._nearest(kms) + 2 * shape.extent_km)) or list(self._dense)
        plane = Plane(shape.centre)
        line = MultiLineString([plane.xy(r) for r in near])
        # a geodesic circle is a circle in this plane (distances from its centre are exact)
        area = (
            Point(0.0, 0.0).buffer(shape.extent_km * 1000.0, 64)
            if shape.is_circle
            else Polygon(plane.xy(shape.outline))
        )
        on_area, on_line = nearest_points(area, line)
        return plane.lonlat(on_area.x, on_area.y), plane.lonlat(on_line.x, on_line.y)

    def side_of(self, lon: float, lat: float) -> Side | None:
        """Which side of the boundary, as its line is drawn, the point lies on (None: on it)."""
        kms = self._sphere_km((lon, lat))
        runs = self._near(kms, self._widen(self._nearest(kms)))
        plane = Plane((lon, lat))
        best: tuple[float, float] | None = None  # (distance, cross product) of the nearest segment
        for run in runs:
            xy = plane.xy(run)
            p1, d = xy[:-1], np.diff(xy, axis=0)
            length2 = np.einsum("ij,ij->i", d, d)
            length2[length2 == 0.0] = 1.0
            # the point (the plane's origin) projected on each segment, clamped to its ends
            t = np.clip(-np.einsum("ij,ij->i", p1, d) / length2, 0.0, 1.0)
            dist = np.hypot(p1[:, 0] + t * d[:, 0], p1[:, 1] + t * d[:, 1])
            i = int(np.argmin(dist))
            cross = float(d[i, 1] * p1[i, 0] - d[i, 0] * p1[i, 1])
            if best is None or dist[i] < best[0]:
                best = (float(dist[i]), cross)
        if best is None or best[1] == 0.0:
            return None
        return "left" if best[1] > 0 else "right"
