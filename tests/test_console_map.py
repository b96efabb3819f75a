"""A notification's map as the server works it out (console/mapdata.py): areas drawn as the rules measure them,
areas given by name listed, a direction drawn from the launch, and for an agreement with a boundary (IN-PK 2005)
the line and each area's distance from it, the same distance the rules compared with the agreement's minimum."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import deploy_config
from launchrelay.agreements.config import Agreement, load_config
from launchrelay.agreements.geometry import distance_km
from launchrelay.agreements.rules import check_geometry
from launchrelay.console.mapdata import DIRECTION_KM, map_of
from launchrelay.contract.notice import Notice

VEHICLE = {"category": "other_ballistic_missile", "generic_class": "T-1", "range_km": 600, "launch_count": 1,
           "group": "single"}  # fmt: skip
WINDOW = {"start": "2026-12-10T00:00:00Z", "end": "2026-12-10T06:00:00Z"}


def circle(lon: float, lat: float, km: float) -> dict[str, Any]:
    return {"kind": "circle", "centre": {"lat": lat, "lon": lon}, "radius": km, "unit": "km"}


def notice(launch: dict[str, Any], *impacts: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"vehicle": VEHICLE, "window": WINDOW, "launch_area": launch, "impact_areas": list(impacts), **more}


@pytest.fixture(scope="module")
def in_pk(tmp_path_factory: pytest.TempPathFactory) -> Agreement:
    """IN-PK 2005 with the test boundary: a line along 75 E from 20 N to 36 N; IN's sites to its west."""
    deploy = deploy_config("127.0.0.1:1", tmp_path_factory.mktemp("deploy"))
    return load_config(deploy.config).agreements["IN-PK-2005"]


def roles(drawn: dict[str, Any]) -> list[str]:
    return [f["properties"]["role"] for f in drawn["features"]]


def test_areas_are_drawn_as_the_rules_measure_them_and_named_ones_listed() -> None:
    drawn = map_of(notice(circle(100.29, 40.96, 20), {"kind": "water_body", "name": "Bo Hai"},
                          {"kind": "ocean_quadrant", "ocean": "pacific", "quadrant": "NE"},
                          direction={"azimuth_deg": 60.0}), None)  # fmt: skip
    assert drawn is not None and drawn["centre"] == [100.29, 40.96]
    assert roles(drawn) == ["launch", "direction"] and drawn["measures"] == []
    assert drawn["unmapped"] == ["impact area 0: Bo Hai", "impact area 1: the NE quadrant of the Pacific Ocean"]
    (ring,) = drawn["features"][0]["geometry"]["coordinates"]
    assert ring[0] == ring[-1] and len(ring) == 73  # the geodesic circle the rules measure, closed
    assert all(abs(distance_km((100.29, 40.96), tuple(p)) - 20) < 0.01 for p in ring)
    line = drawn["features"][1]["geometry"]["coordinates"]
    assert line[0] == [100.29, 40.96] and abs(distance_km(tuple(line[0]), tuple(line[-1])) - DIRECTION_KM) < 0.1
    assert map_of(None, None) is None and map_of({"not": "a notice"}, None) is None


def test_an_area_across_the_antimeridian_keeps_its_longitudes() -> None:
    """A circle on 180 E/W: its outline has points both sides (the script joins them by the short way round)."""
    drawn = map_of(notice(circle(179.2, 52.0, 30), circle(-179.6, 53.5, 60), direction={"sector": "NE"}), None)
    assert drawn is not None
    impact = next(f for f in drawn["features"] if f["properties"]["role"] == "impact")
    lons = [p[0] for p in impact["geometry"]["coordinates"][0]]
    assert all(-180 <= x <= 180 for x in lons) and min(lons) < -178 and max(lons) > 179
    sector = next(f for f in drawn["features"] if f["properties"]["role"] == "direction")
    assert sector["geometry"]["type"] == "Polygon" and sector["properties"]["label"] == "direction NE"


def test_the_distances_on_the_map_are_the_ones_the_rules_judged(in_pk: Agreement) -> None:
    """A launch area 30 km from the line (IN-PK needs 40): the rules refuse it LAUNCH_SITE_TOO_CLOSE with a
    distance; the map shows the same distance, marked short, drawn between a point of the area and one of the
    line; an impact area 200 km away is shown as it is."""
    at = 75.0 - (35.0 / (111.32 * 0.8988))  # about 35 km west of 75 E at 26 N; radius 5: about 30 km
    raw = notice(circle(at, 26.0, 5), circle(72.0, 25.0, 10), direction={"sector": "W"})
    drawn = map_of(raw, in_pk)
    assert drawn is not None and "boundary" in roles(drawn) and roles(drawn).count("distance") == 2
    (reason,) = [r for r in check_geometry(Notice.from_json(raw), in_pk, "IN") if r.code == "LAUNCH_SITE_TOO_CLOSE"]
    judged = reason.message.split(" km from")[0].rsplit(" ", 1)[1]
    launch, impact, corridor = drawn["measures"]
    assert launch == {"text": f"launch area: {judged} km from the boundary (at least 40 km)", "short": True}
    assert not impact["short"] and impact["text"].startswith("impact area 0: ")
    assert corridor["short"] and corridor["text"].startswith("trajectory to impact area 0: ")
    distance = next(f for f in drawn["features"] if f["properties"]["role"] == "distance")
    a, b = (tuple(p) for p in distance["geometry"]["coordinates"])
    assert distance["properties"] == {"role": "distance", "label": f"{judged} km", "short": True}
    assert abs(b[0] - 75.0) < 1e-6 and abs(distance_km(a, b) - float(judged)) < 0.2  # on the line, that far


def test_a_notice_with_no_drawable_area_has_no_map_but_says_why(tmp_path: Path) -> None:
    drawn = map_of(notice({"kind": "water_body", "name": "Barents Sea"}), None)
    assert drawn == {"centre": None, "features": [], "unmapped": ["launch area: Barents Sea"], "measures": []}


def test_the_vendored_map_assets_are_the_published_ones() -> None:
    """The files under console/static/vendor/ are byte for byte those VENDOR.md names (npm's published packages),
    each with its licence beside it; scripts/vendor-map.sh fetches them again."""
    import hashlib
    import re

    vendor = Path(__file__).resolve().parent.parent / "src/launchrelay/console/static/vendor"
    rows = re.findall(r"^\| ([\w.-]+\.(?:js|json)) \| ([\w@.-]+) .*\| ([0-9a-f]{64}) \|$",
                      (vendor / "VENDOR.md").read_text(), re.M)  # fmt: skip
    assert {name for name, _, _ in rows} == {"d3-array.min.js", "d3-geo.min.js", "topojson-client.min.js",
                                             "land-50m.json"}  # fmt: skip
    for name, package, digest in rows:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
        assert (vendor / f"LICENSE.{package.split('@')[0]}").exists(), package
