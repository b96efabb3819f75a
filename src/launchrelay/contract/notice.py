"""A notified launch as it stands: the planned launch with every forwarded amendment applied.

The agreements judge the notice, not one message: an amendment that moves an
impact area is judged by where the areas are after it. The relay keeps this
content per open notification (in its state, so it survives restarts) and the
tracker shows it with what each amendment changed.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from launchrelay.contract.areas import Area, StrictModel
from launchrelay.contract.messages import Amendment, Direction, LaunchWindow, Orbit, PlannedLaunch, Vehicle

#: The fields of a notice an amendment may change, in the order they are reported.
AMENDABLE = ("window", "vehicle", "launch_area", "impact_areas", "direction", "orbit")


class Notice(StrictModel):
    """What a notification says about its launch, after the amendments so far."""

    vehicle: Vehicle
    window: LaunchWindow
    launch_area: Area
    impact_areas: list[Area] = Field(default_factory=list, max_length=64)
    direction: Direction | None = None
    orbit: Orbit | None = None

    @classmethod
    def of(cls, planned: PlannedLaunch) -> Notice:
        # Not validated again: a planned launch's fields are a notice's, under the same constraints;
        # tests/test_notice.py holds the two models to that.
        return cls.model_construct(**{f: getattr(planned, f) for f in AMENDABLE})

    def amended(self, amendment: Amendment) -> tuple[Notice, list[str]]:
        """The notice with ``amendment`` applied, and the fields it changed (each field a valid one, so the result is
        a notice; what the agreement asks of it is the rules' to judge)."""
        changes = {f: getattr(amendment, f) for f in AMENDABLE if getattr(amendment, f) is not None}
        changed = [f for f in AMENDABLE if f in changes and changes[f] != getattr(self, f)]
        merged = {f: changes.get(f, getattr(self, f)) for f in AMENDABLE}
        return Notice.model_validate(merged, strict=False), changed

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notice:
        return cls.model_validate(data, strict=False)

    def to_text(self) -> str:
        """Compact JSON, as the relay keeps it in its state (pydantic's serializer: a tenth of json.dumps' cost)."""
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_text(cls, text: str) -> Notice:
        return cls.from_json(json.loads(text))
