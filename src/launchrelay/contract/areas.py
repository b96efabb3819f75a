"""Geographic areas as the agreements describe them (WGS-84 decimal degrees).

An area is one of: a polygon of boundary points, a centre plus radius (km or
nautical miles), an ocean quadrant, or a named body of water (US-USSR 1988
art. 1: an SLBM launch area may be an ocean quadrant or a named sea or bay).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

NM_IN_KM = 1.852
#: Most boundary points one polygon may have: the agreements' areas are drawn with a handful; this bounds
#: the cost of the geometry checks for any record.
MAX_POLYGON_POINTS = 1000


class StrictModel(BaseModel):
    """Base of every contract model: no unknown fields, no coercion (a string is never a number), immutable.

    Strings are taken as written (no trimming) and numbers are finite: what the rules judge is exactly
    what a reader in any language sees.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def require_discriminator(name: str) -> Any:
    """Schema hook: the union's tag (``kind``, ``message_type``) is required in JSON, as the parser requires it.

    The models give the tag a default so Python code need not repeat it; JSON input must carry it.
    """

    def hook(schema: dict[str, Any]) -> None:
        required = schema.setdefault("required", [])
        if name not in required:
            required.insert(0, name)

    return hook


class Point(StrictModel):
    """A position in WGS-84 decimal degrees."""

    lat: Annotated[float, Field(ge=-90.0, le=90.0, description="Latitude, degrees north")]
    lon: Annotated[float, Field(ge=-180.0, le=180.0, description="Longitude, degrees east")]


class DistanceUnit(StrEnum):
    KM = "km"
    NM = "NM"


class PolygonArea(StrictModel):
    """An area bounded by at least three distinct points (closing point optional)."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("kind"))

    kind: Literal["polygon"] = "polygon"
    points: list[Point] = Field(min_length=3, max_length=MAX_POLYGON_POINTS)

    @model_validator(mode="after")
    def _distinct(self) -> PolygonArea:
        if len({(p.lat, p.lon) for p in self.points}) < 3:
            raise ValueError("a polygon needs at least 3 distinct points")
        return self


class CircleArea(StrictModel):
    """An area given by its centre and a radius in kilometres or nautical miles."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("kind"))

    kind: Literal["circle"] = "circle"
    centre: Point
    radius: PositiveFloat
    unit: DistanceUnit

    @property
    def radius_km(self) -> float:
        return self.radius * NM_IN_KM if self.unit is DistanceUnit.NM else self.radius


class Ocean(StrEnum):
    ATLANTIC = "atlantic"
    PACIFIC = "pacific"
    INDIAN = "indian"
    ARCTIC = "arctic"
    SOUTHERN = "southern"


class Quadrant(StrEnum):
    NE = "NE"
    NW = "NW"
    SE = "SE"
    SW = "SW"


class OceanQuadrantArea(StrictModel):
    """A 90-degree sector covering about a quarter of an ocean (CN-RU 2009 art. 1)."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("kind"))

    kind: Literal["ocean_quadrant"] = "ocean_quadrant"
    ocean: Ocean
    quadrant: Quadrant


class WaterBodyArea(StrictModel):
    """A named sea, bay or gulf."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("kind"))

    kind: Literal["water_body"] = "water_body"
    name: str = Field(min_length=2, max_length=120)


Area = Annotated[
    PolygonArea | CircleArea | OceanQuadrantArea | WaterBodyArea,
    Field(discriminator="kind"),
]

__all__ = [
    "MAX_POLYGON_POINTS",
    "NM_IN_KM",
    "Area",
    "CircleArea",
    "DistanceUnit",
    "Ocean",
    "OceanQuadrantArea",
    "Point",
    "PolygonArea",
    "Quadrant",
    "StrictModel",
    "WaterBodyArea",
    "require_discriminator",
]
