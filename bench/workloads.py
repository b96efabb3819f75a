"""Workloads shared by the benchmarks: a boundary of realistic size and an IN-PK notice near it.

The boundary follows the shape of a long land border (about 2,000 km from a coast
to high mountains, through a handful of anchor points, with a deterministic wiggle
every few kilometres), so its densified form has as many points as a real one
would: what the geometry must search through, not a two-point test line.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from launchrelay.contract import encode
from launchrelay.contract.messages import PlannedLaunch
from launchrelay.signing import Signer

#: (lon, lat) anchor points, south (coast) to north (mountains)
_ANCHORS = [
    (68.2, 23.7), (69.6, 24.3), (70.9, 25.7), (70.3, 26.8), (71.1, 27.9), (72.3, 28.5), (73.4, 29.5),
    (74.0, 30.2), (74.6, 31.0), (74.6, 31.7), (75.2, 32.4), (74.7, 32.9), (74.1, 33.4), (73.9, 34.2),
    (74.6, 34.7), (75.8, 34.8), (76.9, 35.2), (77.8, 35.5),
]  # fmt: skip


def boundary(points_per_segment: int = 40) -> dict[str, Any]:
    """A GeoJSON LineString of about 700 points: the anchors joined by gently wiggling segments."""
    coords: list[list[float]] = []
    for (lon1, lat1), (lon2, lat2) in pairwise(_ANCHORS):
        for k in range(points_per_segment):
            t = k / points_per_segment
            wiggle = 0.02 * math.sin(k * 1.7)
            coords.append([round(lon1 + (lon2 - lon1) * t + wiggle, 5), round(lat1 + (lat2 - lat1) * t - wiggle, 5)])
    coords.append(list(_ANCHORS[-1]))
    return {"type": "LineString", "coordinates": coords}


#: which side of the line, as drawn south to north, each party lies on
PARTY_SIDES = {"IN": "right", "PK": "left"}


def in_pk_notice(signer: Signer, i: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """An IN -> PK flight-test notice from a site about 150 km from the line, into an area farther inland.

    Each notice is placed a little differently (as real ones are), so nothing computed for one area's
    centre can be reused for the next and flatter the figures."""
    now = datetime.now(UTC)
    jitter = (i % 20011) * 0.00001  # about a metre apart: each notice its own centres
    data: dict[str, Any] = {
        "message_type": "planned_launch",
        "message_id": f"in-bench-{uuid.uuid4().hex}",
        "agreement": "IN-PK-2005",
        "sender": "IN",
        "recipients": ["PK"],
        "launch_key": f"IN-B-{i % 512}",
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vehicle": {"category": "other_ballistic_missile", "generic_class": "SRBM", "range_km": 350.0},
        "window": {
            "start": (now + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (now + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "launch_area": {
            "kind": "circle",
            "centre": {"lat": 26.9 + jitter, "lon": 72.4 + jitter},
            "radius": 10,
            "unit": "km",
        },
        "impact_areas": [
            {
                "kind": "polygon",
                "points": [
                    {"lat": 25.0 - jitter, "lon": 73.4 + jitter},
                    {"lat": 25.3 - jitter, "lon": 73.4 + jitter},
                    {"lat": 25.3 - jitter, "lon": 73.7 + jitter},
                    {"lat": 25.0 - jitter, "lon": 73.7 + jitter},
                ],
            }
        ],
        "direction": {"azimuth_deg": 150.0},
    }
    raw = encode(PlannedLaunch.model_validate_json(json.dumps(data)))
    return data["launch_key"].encode(), raw, signer.headers(raw)
