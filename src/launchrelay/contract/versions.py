"""Contract versions, and how a document of an earlier shape of ``launchrelay/1`` is read.

``launchrelay/1`` is a promise: a document that any schema published under that name accepted is accepted
for as long as the version is (docs/schema/launchrelay-1/ keeps each one as released). Earlier shapes said
some things differently; :func:`upgrade_v1` rewrites those spellings into today's, on a copy, so one set of
models judges every version. The original bytes are never touched: they are what the sender signed and what
a recipient receives.

``launchrelay/2`` is today's shape and nothing else (free text keyed by language, ``message_type`` and each
area's ``kind`` present, times in UTC). A document says which it is in
``contract``; a document without one is ``launchrelay/1``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

V1: Final = "launchrelay/1"
V2: Final = "launchrelay/2"
#: every contract version this release reads, oldest first
VERSIONS: Final = (V1, V2)
#: what a party that declares nothing reads: the version every system built so far was written against
DEFAULT_READS: Final = (V1,)
#: BCP 47 "undetermined": the language of free text sent as a plain string (launchrelay/1 before 2026-11-29)
UNSTATED_LANGUAGE: Final = "und"

#: free-text members that were plain strings in the first shapes of launchrelay/1
_FREE_TEXT = ("notes", "reason")
#: area members, and the one member that tells each kind of area apart (the first shapes had no ``kind``)
_AREA_MEMBERS = ("launch_area", "impact_areas")
_KIND_BY_MEMBER = {"points": "polygon", "centre": "circle", "ocean": "ocean_quadrant", "name": "water_body"}
#: RFC 3339 date-time, any offset, either case of T and Z (JSON Schema's ``format: date-time``)
_RFC3339 = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def version_of(doc: Any) -> str | None:
    """The contract version a JSON document names (``launchrelay/1`` when it names none); None when it names
    something else or is not an object."""
    if not isinstance(doc, dict):
        return None
    value = doc.get("contract", V1)
    return value if value in VERSIONS else None


def upgrade_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A ``launchrelay/1`` document of any published shape, spelled as today's models read it (a copy).

    - free text given as a plain string becomes ``{"und": text}`` (its language unstated);
    - an area without ``kind`` gets the kind its members name (``points``, ``centre``, ``ocean``, ``name``);
    - a time with another offset, a lower-case ``t``/``z`` or more than six decimals becomes the same instant
      in UTC, written with ``Z`` (to the microsecond, the finest the models hold);

    A missing ``message_type`` is not guessed here: the caller tries each type, as the schema's ``oneOf`` did.
    """
    out = dict(doc)
    for name in _FREE_TEXT:
        if isinstance(out.get(name), str):
            out[name] = {UNSTATED_LANGUAGE: out[name]}
    if isinstance(out.get("launch_area"), dict):
        out["launch_area"] = _with_kind(out["launch_area"])
    if isinstance(out.get("impact_areas"), list):
        out["impact_areas"] = [_with_kind(a) if isinstance(a, dict) else a for a in out["impact_areas"]]
    for name in ("created_at", "launched_at"):
        if name in out:
            out[name] = _utc(out[name])
    if isinstance(out.get("window"), dict):
        out["window"] = {k: _utc(v) if k in ("start", "end") else v for k, v in out["window"].items()}
    return out


def _with_kind(area: dict[str, Any]) -> dict[str, Any]:
    if "kind" in area:
        return area
    kinds = {kind for member, kind in _KIND_BY_MEMBER.items() if member in area}
    return {"kind": kinds.pop(), **area} if len(kinds) == 1 else area


def _utc(value: Any) -> Any:
    """RFC 3339 text at any offset -> the same instant as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``; else unchanged."""
    if not isinstance(value, str):
        return value
    m = _RFC3339.match(value)
    if m is None:
        return value
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, offset = m.group(7) or "", m.group(8)
    try:
        micro = int((fraction[1:] + "000000")[:6])
        at = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=UTC)
        if offset not in ("Z", "z"):
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                return value
            at -= (1 if offset[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes)
    except (ValueError, OverflowError):
        return value  # not a date (a 30th of February), or beyond year 9999 in UTC: the models say so
    text = f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
    return f"{text}.{at.microsecond:06d}Z" if at.microsecond else f"{text}Z"
