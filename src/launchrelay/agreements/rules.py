"""The agreements' rules as pure functions: message + agreement + time (+ the notice as it stands) -> findings.

No I/O and no clock: the caller passes ``received_at`` (the relay uses the
broker's append time of the record, so a replay after a crash decides the same)
and, for an amendment or a report, the notice it refers to as it stands. Each
rule returns a list of :class:`~launchrelay.contract.messages.Reason`;
:func:`check` runs all that apply and returns them all, as refusals, plus the
warnings an agreement asks for without refusing (a launch reported outside its
window, where the preset says so). The article each rule enforces is in its
docstring and in docs/reasons.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from launchrelay.agreements.config import Agreement, GeometryRules, Topology
from launchrelay.agreements.geometry import Boundary, Shape
from launchrelay.contract.areas import Area, CircleArea, PolygonArea
from launchrelay.contract.messages import (
    Amendment,
    CompassSector,
    CompletedLaunch,
    Direction,
    GroupKind,
    LaunchOutcome,
    LaunchWindow,
    PartyMessage,
    PlannedLaunch,
    Reason,
    Vehicle,
)
from launchrelay.contract.notice import Notice
from launchrelay.reasons import ReasonCode as R

SEA_AREAS = ("ocean_quadrant", "water_body")


def _reason(code: R, message: str, field: str | None = None) -> Reason:
    return Reason(code=code.value, message=message, field=field)


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600.0
    if abs(hours) < 1:
        return f"{delta.total_seconds() / 60.0:.0f} min"
    return f"{hours:.1f} h" if abs(hours) < 72 else f"{hours / 24.0:.1f} days"


@dataclass
class Findings:
    """What the rules found: refusals (any one rejects the message) and warnings (forwarded, flagged)."""

    reasons: list[Reason] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)
    #: the notice as it stands after a planned launch or an amendment that makes one, and the fields an
    #: amendment changed: judged here, so the relay keeps what was judged without building it again
    notice: Notice | None = None
    changed: list[str] = field(default_factory=list)


# --- the agreement and the envelope -----------------------------------------------------------------


def check_in_force(agreement: Agreement, received_at: datetime) -> list[Reason]:
    """A message received before the agreement entered into force, or after it ended (CN-RU 2009: 16 Dec 2010 to
    16 Dec 2030 under the 2020 Protocol)."""
    if agreement.in_force(received_at):
        return []
    span = f"{agreement.in_force_from or 'the start'} to {agreement.in_force_until or 'no end'}"
    return [_reason(R.AGREEMENT_NOT_IN_FORCE, f"{agreement.id} is in force from {span}", "agreement")]


def check_created_at(
    message: PartyMessage, received_at: datetime, skew: timedelta, remember_for: timedelta | None = None
) -> list[Reason]:
    """``created_at`` later than the broker's receipt by more than the tolerance: the sender's clock is wrong.
    Earlier by more than ``remember_for``: the relay may have forgotten the id, so it cannot rule out a replay."""
    ahead = message.created_at - received_at
    if remember_for is not None and -ahead > remember_for:
        text = (f"created_at is {_span(-ahead)} before the broker received it; the relay remembers message ids "
                f"for {_span(remember_for)}, so an older message cannot be told from a replay")  # fmt: skip
        return [_reason(R.CREATED_AT_TOO_OLD, text, "created_at")]
    if ahead <= skew:
        return []
    text = f"created_at is {_span(ahead)} after the broker received it; at most {_span(skew)} is tolerated"
    return [_reason(R.CREATED_AT_SKEW, text, "created_at")]


def check_confidential(message: PartyMessage, agreement: Agreement) -> list[Reason]:
    """Under an agreement whose notifications are confidential, no message may say it is not."""
    if agreement.confidential and not message.confidential:
        text = f"{agreement.id}'s notifications are confidential by the agreement: confidential cannot be false"
        return [_reason(R.NOT_CONFIDENTIAL, text, "confidential")]
    return []


def check_parties(message: PartyMessage, agreement: Agreement) -> list[Reason]:
    """Sender and recipients must be parties; a bilateral message goes to the other party."""
    out: list[Reason] = []
    if message.sender not in agreement.parties:
        out.append(_reason(R.SENDER_NOT_PARTY, f"{message.sender} is not a party to {agreement.id}", "sender"))
    strangers = [r for r in message.recipients if r not in agreement.parties]
    if strangers:
        out.append(
            _reason(R.RECIPIENT_NOT_PARTY, f"{', '.join(strangers)} not a party to {agreement.id}", "recipients")
        )
    elif agreement.topology is Topology.BILATERAL:
        others = [p for p in agreement.parties if p != message.sender]
        if sorted(message.recipients) != others and message.sender in agreement.parties:
            out.append(
                _reason(
                    R.RECIPIENT_NOT_PARTY,
                    f"a {agreement.id} message from {message.sender} goes to {', '.join(others)}",
                    "recipients",
                )
            )
    return out


# --- scope ----------------------------------------------------------------------------------------


_SECTORS = tuple(CompassSector)


def sector(direction: Direction) -> CompassSector:
    """The compass sector of a direction (an azimuth falls in the 45-degree sector centred on its point)."""
    if direction.sector is not None:
        return direction.sector
    assert direction.azimuth_deg is not None
    return _SECTORS[round(direction.azimuth_deg / 45.0) % 8]


def check_scope(
    vehicle: Vehicle, agreement: Agreement, sender: str, direction: Direction | None, prefix: str = ""
) -> list[Reason]:
    """The vehicle must be of a covered category; where a range threshold applies, above it (CN-RU 2009 art. 1:
    over 2000 km); where directions apply ([I] CN-RU: toward the other party), heading in one of them."""
    if vehicle.category not in agreement.categories:
        covered = ", ".join(c.value for c in agreement.categories)
        return [
            _reason(
                R.OUT_OF_SCOPE_CATEGORY,
                f"{agreement.id} covers {covered}; {vehicle.category.value} is outside its scope",
                f"{prefix}vehicle.category",
            )
        ]
    if not vehicle.category.is_ballistic:
        return []
    out: list[Reason] = []
    threshold = agreement.min_ballistic_range_km
    if threshold is not None and vehicle.range_km is None:
        out.append(
            _reason(
                R.RANGE_REQUIRED,
                f"{agreement.id} covers ballistic missiles with a range over {threshold:g} km; give range_km",
                f"{prefix}vehicle.range_km",
            )
        )
    elif threshold is not None and vehicle.range_km is not None and vehicle.range_km <= threshold:
        out.append(
            _reason(
                R.OUT_OF_SCOPE_RANGE,
                f"range {vehicle.range_km:g} km is not over {agreement.id}'s threshold of {threshold:g} km",
                f"{prefix}vehicle.range_km",
            )
        )
    allowed = agreement.ballistic_directions.get(sender)
    if allowed and direction is not None and sector(direction) not in allowed:
        heading = sector(direction).value
        toward = ", ".join(s.value for s in allowed)
        out.append(
            _reason(
                R.OUT_OF_SCOPE_DIRECTION,
                f"{agreement.id} covers {sender}'s ballistic missiles heading {toward}; this one heads {heading}",
                f"{prefix}direction",
            )
        )
    return out


# --- time -----------------------------------------------------------------------------------------


def check_timing(
    window: LaunchWindow, agreement: Agreement, received_at: datetime, *, lead: bool = True
) -> list[Reason]:
    """A window already open (or over) is in the past; otherwise the lead time from receipt to the window's
    start (CN-RU 2009: 24 h to 30 days; US-USSR 1988 art. I: 24 h; IN-PK 2005 art. 2: 72 h) and the window's
    length (IN-PK 2005 art. 2: 5 days; US-USSR 1988: the notice's 4 days of validity)."""
    out: list[Reason] = []
    ahead = window.start - received_at
    if ahead <= timedelta(0):
        state = "is over" if window.end <= received_at else "opened"
        when = "" if window.end <= received_at else f" {_span(-ahead)} before receipt"
        out.append(_reason(R.WINDOW_IN_PAST, f"the launch window {state}{when}; notices come before it", "window"))
    elif lead:
        if agreement.min_lead is not None and ahead < agreement.min_lead:
            out.append(
                _reason(
                    R.LEAD_TIME_TOO_SHORT,
                    f"window opens {_span(ahead)} after receipt; {agreement.id} needs at least "
                    f"{_span(agreement.min_lead)}",
                    "window.start",
                )
            )
        if agreement.max_lead is not None:
            # the earliest notice: to the window's start, or (CN-RU 2009: "no earlier than 30 days before the
            # launch date", and any moment of the window may be the launch date) to its end
            edge = window.end if agreement.max_lead_to == "end" else window.start
            far = edge - received_at
            if far > agreement.max_lead:
                said = "closes" if agreement.max_lead_to == "end" else "opens"
                out.append(
                    _reason(
                        R.LEAD_TIME_TOO_LONG,
                        f"window {said} {_span(far)} after receipt; {agreement.id} allows at most "
                        f"{_span(agreement.max_lead)} before any launch date it names",
                        f"window.{agreement.max_lead_to}",
                    )
                )
    if agreement.max_window is not None and window.length > agreement.max_window:
        out.append(
            _reason(
                R.WINDOW_TOO_LONG,
                f"window lasts {_span(window.length)}; {agreement.id} allows at most {_span(agreement.max_window)}",
                "window.end",
            )
        )
    return out


def within_validity(original: LaunchWindow, changed: LaunchWindow, agreement: Agreement) -> bool:
    """US-USSR 1988 (per NRRC practice, [I] secondary): a notice is valid four days from its stated launch date;
    a window moved within them needs no new notice."""
    if agreement.validity is None:
        return False
    return original.start <= changed.start and changed.end <= original.start + agreement.validity


# --- content --------------------------------------------------------------------------------------


def check_content(notice: Notice, agreement: Agreement, prefix: str = "") -> list[Reason]:
    """What a notice must say under its agreement: US-USSR 1988 art. II (the area of impact, by coordinates; an
    ocean quadrant or a named sea as the launch area of a submarine-launched missile only), IN-PK 2005 art. 5 (the
    planned impact area), Hague Code para 4(a)(iii) (the planned direction, and no impact area), CN-RU 2009 art. 1
    (group launches within their limit)."""
    out: list[Reason] = []
    kinds = agreement.impact_area_kinds
    for i, area in enumerate(notice.impact_areas):
        if kinds and area.kind not in kinds:
            out.append(
                _reason(
                    R.AREA_KIND_NOT_ALLOWED,
                    f"{agreement.id}: an impact area is given as {' or '.join(kinds)}, not {area.kind}",
                    f"{prefix}impact_areas.{i}",
                )
            )
    sea_ok = agreement.sea_launch_categories
    if sea_ok is not None and notice.launch_area.kind in SEA_AREAS and notice.vehicle.category not in sea_ok:
        allowed = ", ".join(c.value for c in sea_ok)
        out.append(
            _reason(
                R.AREA_KIND_NOT_ALLOWED,
                f"{agreement.id}: a launch area given as {notice.launch_area.kind} is for {allowed} only; give the "
                f"coordinates of a {notice.vehicle.category.value}'s launch area",
                f"{prefix}launch_area",
            )
        )
    if agreement.requires_impact_area and notice.vehicle.category.is_ballistic and not notice.impact_areas:
        text = f"{agreement.id}: a ballistic-missile notice names at least one planned impact area"
        out.append(_reason(R.IMPACT_AREA_REQUIRED, text, f"{prefix}impact_areas"))
    if agreement.requires_direction and notice.direction is None:
        out.append(_reason(R.DIRECTION_REQUIRED, f"{agreement.id} notices give the planned direction", "direction"))
    limit = agreement.group_limits.get(notice.vehicle.group)
    if notice.vehicle.group is not GroupKind.SINGLE and limit is not None:
        interval = notice.vehicle.launch_interval_minutes
        where = f"{prefix}vehicle.launch_interval_minutes"
        kind = notice.vehicle.group.value.replace("_", "-")
        if interval is None:
            text = f"{agreement.id}: a {kind} group gives launch_interval_minutes (less than {_span(limit)})"
            out.append(_reason(R.GROUP_INTERVAL_REQUIRED, text, where))
        elif timedelta(minutes=interval) >= limit:
            text = f"{agreement.id}: {kind} launches are less than {_span(limit)} apart; {interval:g} min is not"
            out.append(_reason(R.GROUP_INTERVAL_TOO_LONG, text, where))
    return out


# --- geometry -------------------------------------------------------------------------------------

_BOUNDARIES: dict[int, tuple[GeometryRules, Boundary]] = {}


def prepared_boundary(rules: GeometryRules) -> Boundary:
    """The prepared boundary of these rules (prepared once per config, however many notices are judged)."""
    cached = _BOUNDARIES.get(id(rules))
    if cached is None or cached[0] is not rules:
        assert rules.boundary is not None
        cached = (rules, Boundary.from_geojson(rules.boundary))
        _BOUNDARIES[id(rules)] = cached
    return cached[1]


def shape_of(area: CircleArea | PolygonArea) -> Shape:
    """An area as the geometry measures it."""
    if isinstance(area, CircleArea):
        return Shape.circle(area.centre.lon, area.centre.lat, area.radius_km)
    return Shape.polygon([(p.lon, p.lat) for p in area.points])


def check_geometry(notice: Notice, agreement: Agreement, sender: str, prefix: str = "") -> list[Reason]:
    """IN-PK 2005 art. 5-6: the launch site at least 40 km and impact areas at least 70 km from the boundary,
    both on the sender's own side of it, and the trajectory neither crossing it nor passing within 40 km.

    The trajectory is the corridor of every straight flight from the launch area to an impact area (their
    convex hull), so the areas' extent counts, not only their centres.
    """
    rules = agreement.geometry
    if rules is None or rules.boundary is None:
        return []
    boundary = prepared_boundary(rules)
    side = rules.party_sides.get(sender)
    out: list[Reason] = []

    def measurable(area: Area, where: str) -> Shape | None:
        if isinstance(area, CircleArea | PolygonArea):
            return shape_of(area)
        text = f"{agreement.id} measures distances: give the area as a polygon or circle"
        out.append(_reason(R.AREA_NOT_MEASURABLE, text, where))
        return None

    def own_side(shape: Shape, what: str, where: str) -> None:
        found = boundary.side_of(*shape.centre)
        if side is not None and found is not None and found != side:
            text = f"{what} is on the other side of the boundary from {sender}'s territory"
            out.append(_reason(R.WRONG_SIDE_OF_BOUNDARY, text, where))

    launch = measurable(notice.launch_area, f"{prefix}launch_area")
    launch_km = math.inf
    if launch is not None:
        dist = launch_km = boundary.distance_km(launch, rules.launch_site_min_km)
        if dist < rules.launch_site_min_km:
            text = (
                f"launch area is {dist:.1f} km from the boundary; {agreement.id} needs {rules.launch_site_min_km:g} km"
            )
            out.append(_reason(R.LAUNCH_SITE_TOO_CLOSE, text, f"{prefix}launch_area"))
        own_side(launch, "the launch area", f"{prefix}launch_area")
    for i, area in enumerate(notice.impact_areas):
        where = f"{prefix}impact_areas.{i}"
        impact = measurable(area, where)
        if impact is None:
            continue
        dist = boundary.distance_km(impact, rules.impact_area_min_km)
        if dist < rules.impact_area_min_km:
            text = (f"impact area {i} is {dist:.1f} km from the boundary; "
                    f"{agreement.id} needs {rules.impact_area_min_km:g} km")  # fmt: skip
            out.append(_reason(R.IMPACT_AREA_TOO_CLOSE, text, where))
        own_side(impact, f"impact area {i}", where)
        if launch is None:
            continue
        crosses, corridor_km = boundary.corridor(launch, impact, rules.trajectory_min_km)
        # the corridor holds both areas, whose own distances are exact (its outline only approximates a circle)
        corridor_km = min(corridor_km, launch_km, dist)
        if crosses:
            out.append(
                _reason(R.TRAJECTORY_CROSSES_BOUNDARY, f"the trajectory to impact area {i} crosses the boundary", where)
            )
        elif corridor_km < rules.trajectory_min_km:
            text = (f"the trajectory to impact area {i} passes {corridor_km:.1f} km from the boundary; "
                    f"{agreement.id} needs {rules.trajectory_min_km:g} km")  # fmt: skip
            out.append(_reason(R.TRAJECTORY_TOO_CLOSE, text, where))
    return out


# --- per message type -------------------------------------------------------------------------------


def _judge_notice(notice: Notice, agreement: Agreement, sender: str, prefix: str = "") -> list[Reason]:
    return [
        *check_scope(notice.vehicle, agreement, sender, notice.direction, prefix),
        *check_content(notice, agreement, prefix),
        *check_geometry(notice, agreement, sender, prefix),
    ]


def _check_planned(message: PlannedLaunch, agreement: Agreement, received_at: datetime) -> Findings:
    notice = Notice.of(message)
    return Findings(
        [*check_timing(message.window, agreement, received_at), *_judge_notice(notice, agreement, message.sender)],
        notice=notice,
    )


def _check_amendment(
    message: Amendment, agreement: Agreement, received_at: datetime, notice: Notice | None
) -> Findings:
    """The notice as amended must still satisfy the agreement; a changed window needs the lead time again
    (CN-RU, IN-PK: [I] the texts say nothing of changes, and the lead time is about when the launch may happen:
    DOMAIN.md, "Amendments change a notice"), except inside the notice's validity where the agreement says so
    (US-USSR 1988: a postponement within the four days needs no new notice); ``amendment_lead = "any_change"``
    holds every amendment, whatever it changes, to the lead time."""
    if notice is None:  # the reference check refuses it; judge what the amendment itself says
        out: list[Reason] = []
        if message.vehicle is not None:
            out += check_scope(message.vehicle, agreement, message.sender, message.direction)
        if message.window is not None:
            out += check_timing(message.window, agreement, received_at)
        return Findings(out)
    amended, changed = notice.amended(message)
    out = []
    if agreement.amendment_lead == "any_change":
        out += check_timing(amended.window, agreement, received_at)
    elif "window" in changed:
        no_new_lead = agreement.amendment_lead == "outside_validity" and within_validity(
            notice.window, amended.window, agreement
        )
        out += check_timing(amended.window, agreement, received_at, lead=not no_new_lead)
    return Findings([*out, *_judge_notice(amended, agreement, message.sender)], notice=amended, changed=changed)


def _check_completed(
    message: CompletedLaunch,
    agreement: Agreement,
    received_at: datetime,
    notice: Notice | None,
    skew: timedelta = timedelta(minutes=5),
) -> Findings:
    """A report of a launch that took place: not of one still to come, its vehicle in scope, and (where it refers
    to a notice) launched within the notified window or the notice's validity; outside it, flagged (the default:
    the report of what happened reaches the counterpart) or refused, as the agreement says."""
    if message.outcome is not LaunchOutcome.LAUNCHED or message.vehicle is None:
        return Findings()
    found = Findings(check_scope(message.vehicle, agreement, message.sender, message.direction))
    if message.launched_at is not None and message.launched_at > received_at + skew:
        text = (f"launched_at {message.launched_at.isoformat()} is after the report was received "
                f"({received_at.isoformat()}): a report of a launch that has not happened")  # fmt: skip
        found.reasons.append(_reason(R.LAUNCHED_IN_FUTURE, text, "launched_at"))
    if notice is not None and message.launched_at is not None:
        opens, closes = notice.window.start, agreement.expires(notice.window.start, notice.window.end)
        if not opens <= message.launched_at <= closes:
            text = (f"launched at {message.launched_at.isoformat()}, outside the notified window "
                    f"({opens.isoformat()} to {closes.isoformat()})")  # fmt: skip
            reason = _reason(R.LAUNCH_OUTSIDE_WINDOW, text, "launched_at")
            (found.reasons if agreement.report_outside_window == "reject" else found.warnings).append(reason)
    return found


def check(
    message: PartyMessage,
    agreement: Agreement,
    received_at: datetime,
    notice: Notice | None = None,
    skew: timedelta = timedelta(minutes=5),
    remember_for: timedelta | None = None,
) -> Findings:
    """Every rule finding of ``message`` under ``agreement``, as received at ``received_at``; ``notice``: the
    notification an amendment or report refers to, as it stands."""
    found = Findings([
        *check_in_force(agreement, received_at),
        *check_created_at(message, received_at, skew, remember_for),
        *check_parties(message, agreement),
        *check_confidential(message, agreement),
    ])  # fmt: skip
    if isinstance(message, PlannedLaunch):
        more = _check_planned(message, agreement, received_at)
    elif isinstance(message, Amendment):
        more = _check_amendment(message, agreement, received_at, notice)
    elif isinstance(message, CompletedLaunch):
        more = _check_completed(message, agreement, received_at, notice, skew)
    else:
        more = Findings()
    found.reasons += more.reasons
    found.warnings += more.warnings
    found.notice, found.changed = more.notice, more.changed
    return found
