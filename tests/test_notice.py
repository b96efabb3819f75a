"""A notice is taken from a planned launch without validating it again: the two models must agree.

:meth:`Notice.of` builds the notice from the planned launch's already validated fields
(``model_construct``). That is exact only while a planned launch's fields carry the notice's
constraints and the notice adds no rule the planned launch lacks; these tests hold the models to it.
"""

from __future__ import annotations

import json
from pathlib import Path

from launchrelay.contract.codec import read
from launchrelay.contract.messages import PlannedLaunch
from launchrelay.contract.notice import AMENDABLE, Notice
from test_decide import notice

ROOT = Path(__file__).resolve().parent.parent


def test_a_notice_has_exactly_the_amendable_fields_of_a_planned_launch_with_their_constraints() -> None:
    assert set(Notice.model_fields) == set(AMENDABLE)
    for name in AMENDABLE:
        ours, theirs = Notice.model_fields[name], PlannedLaunch.model_fields[name]
        assert (ours.annotation, ours.metadata, ours.is_required()) == (
            theirs.annotation,
            theirs.metadata,
            theirs.is_required(),
        ), name


def test_the_notice_adds_no_rule_the_planned_launch_lacks() -> None:
    """Neither model relates its fields: what a notice must hold together (an impact area for a missile) is the
    agreement's to say (rules.check_content), so a notice and a planned launch accept the same fields."""
    assert set(Notice.__pydantic_decorators__.model_validators) == set()
    assert set(PlannedLaunch.__pydantic_decorators__.model_validators) == {"_recipients_sane"}  # the envelope's


def _validated(planned: PlannedLaunch) -> Notice:
    return Notice.model_validate({f: getattr(planned, f) for f in AMENDABLE}, strict=False)


def test_the_examples_give_the_validated_notice() -> None:
    for path in sorted((ROOT / "docs/examples/valid").glob("*.json")):
        message = read(path.read_bytes()).message
        if isinstance(message, PlannedLaunch):
            assert Notice.of(message) == _validated(message)
            assert Notice.of(message).to_text() == _validated(message).to_text()


def test_planned_launches_of_every_shape_give_the_validated_notice() -> None:
    """Ballistic and space launches, areas of each kind, directions by azimuth and by sector, orbits."""
    shapes = [
        notice(),
        notice("FR", ["AT", "GB"], "HCOC"),
        notice(direction={"sector": "NE"}),
        notice(
            direction=None,
            impact_areas=[{"kind": "circle", "centre": {"lat": 1.5, "lon": 2.5}, "radius": 3.0, "unit": "NM"}],
        ),
    ]
    for data in shapes:
        message = read(json.dumps({k: v for k, v in data.items() if v is not None}).encode()).message
        assert isinstance(message, PlannedLaunch), data
        assert Notice.of(message) == _validated(message)
        assert Notice.of(message).to_text() == _validated(message).to_text()
