"""What is wrong with a document, said in its own terms: the field as the document names it, the rule in words.

The models' validation errors speak of their own machinery: a union's tag in the path
(``planned_launch.impact_areas.0.circle.unit``), ``Value error, …`` before a rule's words, a regular
expression where a reader wants "two upper-case letters". :func:`explain` turns one error into the path a sender
sees in the JSON it wrote and a sentence about it; the error's type and context choose the words, never its
English text, so a new pydantic wording cannot leak through.
"""

from __future__ import annotations

from pydantic_core import ErrorDetails

from launchrelay.contract.messages import LANGUAGE_TAG, UTC_TIME_PATTERN, MessageType

#: patterns of the contract, in words
_PATTERNS = {
    r"^[A-Z]{2}$": "a party's ISO 3166-1 alpha-2 code, two upper-case letters (e.g. CN)",
    r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$": "an identifier: a letter or digit, then letters, digits, '.', '_', ':' or '-'",
    r"^[A-Z0-9][A-Z0-9\-]*$": "an agreement id: upper-case letters, digits and '-' (e.g. CN-RU-2009)",
    r"^[A-Z][A-Z0-9_]*$": "a reason code: upper-case letters, digits and '_'",
    LANGUAGE_TAG: "a BCP 47 language tag (e.g. en, ru, zh-Hans)",
    UTC_TIME_PATTERN: "an RFC 3339 time in UTC (e.g. 2026-12-05T00:00:00Z)",
}
#: what the document's JSON is, by the type pydantic expected
_TYPES = {
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "string_type": "text (a JSON string)",
    "float_type": "a number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "datetime_type": "an RFC 3339 time in UTC",
}
_COMPARE = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}
#: path parts that are the models' and not the document's: the tags of tagged unions
_TAGS = frozenset((*(t.value for t in MessageType), "polygon", "circle", "ocean_quadrant", "water_body"))


def path(loc: tuple[int | str, ...]) -> str:
    """The field as the document names it: dotted, array items by index, without the unions' tags."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and (p in _TAGS or "[" in p))]
    return ".".join(parts)


def _sentence(err: ErrorDetails, name: str, subject: str) -> str:
    kind, ctx = err["type"], err.get("ctx") or {}
    what = f"{name} " if name else ""
    if kind == "missing":
        return f"{what or 'a field '}is required and missing"
    if kind == "extra_forbidden":
        return f"{what or 'this field '}is not a field of {subject} (misspelt, or of another version?)"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "string_pattern_mismatch":
        words = _PATTERNS.get(str(ctx.get("pattern")), "the form the contract gives")
        return f"{what}must be {words}"
    if kind == "literal_error":
        return f"{what}must be {ctx.get('expected', 'one of the values the contract lists')}"
    if kind == "enum":
        return f"{what}must be {ctx.get('expected', 'one of the values the contract lists')}"
    if kind in _COMPARE:
        words, key = _COMPARE[kind]
        limit = ctx.get(key)
        return f"{what}must be {words} {limit:g}" if isinstance(limit, float) else f"{what}must be {words} {limit}"
    if kind in ("too_short", "string_too_short"):
        unit = "character" if kind.startswith("string") else "item"
        least = ctx.get("min_length")
        return f"{what}must have at least {least} {unit}{'' if least == 1 else 's'}"
    if kind in ("too_long", "string_too_long"):
        unit = "character" if kind.startswith("string") else "item"
        most = ctx.get("max_length")
        return f"{what}must have at most {most} {unit}{'' if most == 1 else 's'}"
    if kind in _TYPES:
        return f"{what or f'{subject} '}must be {_TYPES[kind]}"
    tag = str(ctx.get("discriminator", "the tag")).strip("'")
    if kind == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"{what}{tag} {ctx.get('tag')!r} is none of: {tags}".lstrip()
    if kind == "union_tag_not_found":
        return (
            f"{what}gives no {tag} (which kind it is)"
            if name
            else f"{tag} is missing (which kind of {subject.removeprefix('the ')})"
        )
    return f"{what}{err['msg'][0].lower()}{err['msg'][1:]}" if err["msg"] else f"{what}is not valid"


def explain(err: ErrorDetails, subject: str = "the message") -> tuple[str | None, str]:
    """The field at fault (None: the document as a whole, ``subject``) and what is wrong with it, in the document's
    terms."""
    field = path(err["loc"])
    return field or None, _sentence(err, field, subject)
