"""Geodesic distances, crossings and sides against known values, across the antimeridian and near a pole."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launchrelay.agreements.geometry import GEOD, Boundary, Shape, distance_km

LINE = [(75.0, 20.0), (75.0, 29.0), (73.8, 29.5), (75.0, 30.0), (75.0, 36.0)]
#: WGS-84, from its defining constants: 1 degree of longitude on the equator is a = 6378137 m times pi/180; one
#: degree of latitude at the equator is the meridian arc from 0 to 1 degree (110.574 km, as the audit measured).
DEG_LON_EQUATOR_KM = 6378.137 * np.pi / 180.0  # 111.3195 km
DEG_LAT_EQUATOR_KM = 110.574


def _line(*points: tuple[float, float]) -> Boundary:
    return Boundary.from_geojson({"type": "LineString", "coordinates": [list(p) for p in points]})


def _brute_force_km(lon: float, lat: float, line: list[tuple[float, float]] = LINE) -> float:
    """Distance to the boundary sampled every ~20 m along its geodesic segments."""
    best = float("inf")
    for (lon1, lat1), (lon2, lat2) in pairwise(line):
        _, _, seg = GEOD.inv(lon1, lat1, lon2, lat2)
        pts = np.array([(lon1, lat1), *GEOD.npts(lon1, lat1, lon2, lat2, int(seg / 20)), (lon2, lat2)])
        _, _, d = GEOD.inv(np.full(len(pts), lon), np.full(len(pts), lat), pts[:, 0], pts[:, 1])
        best = min(best, float(d.min()) / 1000.0)
    return best


def test_known_distances_on_the_ellipsoid() -> None:
    """A degree of longitude on the equator is 111.3195 km, a degree of latitude there 110.574 km."""
    assert distance_km((0.0, 0.0), (1.0, 0.0)) == pytest.approx(DEG_LON_EQUATOR_KM, abs=0.001)
    assert distance_km((0.0, 0.0), (0.0, 1.0)) == pytest.approx(DEG_LAT_EQUATOR_KM, abs=0.001)
    equator = _line((-10.0, 0.0), (10.0, 0.0))
    assert equator.distance_from_point_km(0.0, 1.0) == pytest.approx(DEG_LAT_EQUATOR_KM, abs=0.01)


@pytest.mark.parametrize(("lon", "lat"), [(74.0, 31.0), (73.5, 29.5), (76.2, 24.0), (74.9, 35.9), (73.0, 19.0)])
def test_point_distance_matches_brute_force(lon: float, lat: float) -> None:
    """A point's distance to the boundary is within 50 m of a dense brute-force geodesic search."""
    assert _line(*LINE).distance_from_point_km(lon, lat) == pytest.approx(_brute_force_km(lon, lat), abs=0.05)


def test_boundary_along_the_antimeridian() -> None:
    """A boundary on 180 degrees: a point a degree west of it is 111.32 km away, one half a degree east 55.66 km;
    a flight at longitude 0, on the far side of the Earth, does not cross it; one over 180 degrees does."""
    dateline = _line((180.0, -10.0), (180.0, 10.0))
    assert dateline.distance_from_point_km(179.0, 0.0) == pytest.approx(DEG_LON_EQUATOR_KM, abs=0.01)
    assert dateline.distance_from_point_km(-179.5, 0.0) == pytest.approx(DEG_LON_EQUATOR_KM / 2, abs=0.01)
    far = Shape.circle(0.0, -5.0, 1.0), Shape.circle(0.0, 5.0, 1.0)
    crosses, km = dateline.corridor(*far)
    assert not crosses and km > 165 * DEG_LAT_EQUATOR_KM  # its nearest point, (0, 5), is 165 degrees from (180, 10)
    over = Shape.circle(179.5, 0.0, 1.0), Shape.circle(-179.5, 0.0, 1.0)
    assert dateline.corridor(*over)[0] is True


def test_polygon_straddling_the_antimeridian_is_one_degree_wide() -> None:
    """A 1-by-1 degree polygon across 180 degrees stays one degree wide: 1.5 degrees from a meridian at 178 E."""
    square = Shape.polygon([(179.5, -0.5), (-179.5, -0.5), (-179.5, 0.5), (179.5, 0.5)])
    assert square.extent_km < 80  # a 359-degree-wide polygon would reach around the Earth
    meridian = _line((178.0, -5.0), (178.0, 5.0))
    assert meridian.distance_km(square) == pytest.approx(1.5 * DEG_LON_EQUATOR_KM, rel=0.001)


def test_near_the_pole() -> None:
    """A boundary on the prime meridian up to 89.9 N: a point on the opposite meridian at 89.9 N is across the
    pole, exactly as far as the geodesic says (about 22.3 km)."""
    polar = _line((0.0, 88.0), (0.0, 89.9))
    expected = distance_km((180.0, 89.9), (0.0, 89.9))
    assert 22.0 < expected < 22.5
    assert polar.distance_from_point_km(180.0, 89.9) == pytest.approx(expected, abs=0.05)


def test_circle_distance_is_from_its_edge() -> None:
    """A circle of radius 10 km centred 1 degree north of the equator is 110.574 - 10 km from it."""
    equator = _line((-10.0, 0.0), (10.0, 0.0))
    assert equator.distance_km(Shape.circle(0.0, 1.0, 10.0)) == pytest.approx(DEG_LAT_EQUATOR_KM - 10.0, abs=0.01)


def test_corridor_counts_the_areas_extent() -> None:
    """Two areas west of the spike at 73.8 E: the straight flight between their centres passes 0.3 degrees from
    it, and their 5 km radii bring the corridor 5 km nearer."""
    boundary = _line(*LINE)
    crosses, km = boundary.corridor(Shape.circle(73.5, 31.0, 5.0), Shape.circle(73.5, 28.0, 5.0))
    centre_line = distance_km((73.5, 29.5), (73.8, 29.5))
    assert not crosses and km == pytest.approx(centre_line - 5.0, abs=0.5)


def test_side_of_a_line_as_drawn() -> None:
    """For a line drawn south to north, west is its left and east its right."""
    boundary = _line(*LINE)
    assert boundary.side_of(73.0, 25.0) == "left" and boundary.side_of(77.0, 25.0) == "right"
    assert boundary.side_of(74.5, 29.5) == "right"  # inside the westward spike, east of the line's bend


def test_far_areas_are_not_measured_exactly_but_never_pass_for_near() -> None:
    """Far beyond a threshold the distance is only bounded, and always stays beyond it."""
    boundary = _line(*LINE)
    far = Shape.circle(60.0, 25.0, 5.0)  # some 1,500 km west
    assert boundary.distance_km(far, limit_km=70.0) > 70.0
    assert boundary.distance_km(far) == pytest.approx(_brute_force_km(60.0, 25.0) - 5.0, abs=0.05)


def test_feature_collection_and_multilinestring_are_read() -> None:
    """A boundary may come as a FeatureCollection of MultiLineStrings."""
    geo = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "MultiLineString", "coordinates": [LINE[:2]]},
            }
        ],
    }
    assert Boundary.from_geojson(geo).distance_from_point_km(74.0, 25.0) > 90


def test_polygon_geojson_is_refused() -> None:
    """Only lines make a boundary; a polygon is a configuration error."""
    with pytest.raises(ValueError, match="LineString"):
        Boundary.from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})


# -- the coarse filter never changes an answer, on a boundary of realistic size -----------------------------

_LINES: dict[str, Boundary] = {}


def _realistic() -> tuple[Boundary, Boundary]:
    """The benchmark's ~2,000 km line of ~700 points, prepared twice: as the relay uses it, and with the coarse
    filter switched off (every point projected), which is the reference the filter must agree with."""
    if not _LINES:
        from bench.workloads import boundary

        _LINES["filtered"] = Boundary.from_geojson(boundary())
        unfiltered = Boundary.from_geojson(boundary())
        unfiltered._widen = lambda km: math.inf  # type: ignore[method-assign]
        _LINES["whole"] = unfiltered
    return _LINES["filtered"], _LINES["whole"]


NEAR_THE_LINE = {"lon": st.floats(66.0, 80.0), "lat": st.floats(22.0, 37.0)}


@settings(max_examples=100, deadline=None, derandomize=True)
@given(**NEAR_THE_LINE)
def test_filtered_point_distance_equals_the_whole_lines(lon: float, lat: float) -> None:
    """Only the points near the nearest one are projected; the answer is the one from every point (to 1 m)."""
    line, whole = _realistic()
    assert line.distance_from_point_km(lon, lat) == pytest.approx(whole.distance_from_point_km(lon, lat), abs=1e-3)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(**NEAR_THE_LINE, size_km=st.floats(5.0, 150.0))
def test_filtered_polygon_and_corridor_distances_equal_the_whole_lines(lon: float, lat: float, size_km: float) -> None:
    line, whole = _realistic()
    d = size_km / 111.0
    square = Shape.polygon([(lon, lat), (lon + d, lat), (lon + d, lat + d), (lon, lat + d)])
    site = Shape.circle(lon - 1.0, lat + 0.5, 10.0)
    assert line.distance_km(square) == pytest.approx(whole.distance_km(square), abs=1e-3)
    crosses, km = line.corridor(site, square)
    assert (crosses, km) == (whole.corridor(site, square)[0], pytest.approx(whole.corridor(site, square)[1], abs=1e-3))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(**NEAR_THE_LINE)
def test_filtered_side_equals_the_whole_lines(lon: float, lat: float) -> None:
    """The side found from the nearby segments is the side found from every segment of the line."""
    line, whole = _realistic()
    assert line.side_of(lon, lat) == whole.side_of(lon, lat)


def test_the_whole_line_is_really_unfiltered() -> None:
    """The reference above projects every point: its filter keeps the whole line, the relay's a small part."""
    line, whole = _realistic()
    kms = line._sphere_km((72.4, 26.9))
    nearest = line._nearest(kms)
    total = sum(len(d) for d in line._dense)
    assert sum(len(r) for r in whole._near(kms, whole._widen(nearest))) == total
    assert sum(len(r) for r in line._near(kms, line._widen(nearest))) < total / 20
