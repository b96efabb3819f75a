"""Geodesic distances to a boundary agree with brute force on the WGS-84 ellipsoid."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from launchrelay.agreements.geometry import GEOD, Boundary, distance_km, geodesic_line

LINE = [(75.0, 20.0), (75.0, 29.0), (73.8, 29.5), (75.0, 30.0), (75.0, 36.0)]


def _brute_force_km(lon: float, lat: float) -> float:
    """Distance to the boundary sampled every ~20 m along its geodesic segments."""
    best = float("inf")
    for (lon1, lat1), (lon2, lat2) in pairwise(LINE):
        _, _, seg = GEOD.inv(lon1, lat1, lon2, lat2)
        pts = np.array([(lon1, lat1), *GEOD.npts(lon1, lat1, lon2, lat2, int(seg / 20)), (lon2, lat2)])
        _, _, d = GEOD.inv(np.full(len(pts), lon), np.full(len(pts), lat), pts[:, 0], pts[:, 1])
        best = min(best, float(d.min()) / 1000.0)
    return best


@pytest.mark.parametrize(("lon", "lat"), [(74.0, 31.0), (73.5, 29.5), (76.2, 24.0), (74.9, 35.9), (73.0, 19.0)])
def test_point_distance_matches_brute_force(lon: float, lat: float) -> None:
    """A point's distance to the boundary is within 50 m of a dense brute-force geodesic search."""
    boundary = Boundary.from_geojson({"type": "LineString", "coordinates": [list(p) for p in LINE]})
    assert boundary.distance_from_point_km(lon, lat) == pytest.approx(_brute_force_km(lon, lat), abs=0.05)


def test_line_distance_finds_nearest_approach() -> None:
    """A line's distance is that of its nearest point (a trajectory passing the spike at 0.3 degrees)."""
    boundary = Boundary.from_geojson({"type": "LineString", "coordinates": [list(p) for p in LINE]})
    path = geodesic_line([(73.5, 31.0), (73.5, 28.0)])
    expected = distance_km((73.5, 29.5), (73.8, 29.5))
    assert boundary.distance_from_km(path) == pytest.approx(expected, abs=0.5)
    assert not boundary.crossed_by(path)


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
