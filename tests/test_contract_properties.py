"""One contract: the models accept exactly what the published JSON Schema accepts, bar the named exceptions.

Documents are generated from docs/schema/message.schema.json itself
(hypothesis-jsonschema) and from mutations of the valid examples; each is
judged by the relay's reader (strict JSON, then the models) and by a JSON
Schema validator with the format checks on. They must agree, except for what
the schema's own description says it cannot express (rules relating two
values: :data:`BEYOND_SCHEMA`) and numbers no double can hold.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from launchrelay.contract.codec import json_schema, read
from launchrelay.contract.messages import BEYOND_SCHEMA
from launchrelay.contract.versions import V1, VERSIONS, version_of

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs/schema/message.schema.json").read_text())
EXAMPLES = [json.loads(p.read_text()) for p in sorted((ROOT / "docs/examples/valid").glob("*.json"))]
TYPES = ["PlannedLaunch", "Amendment", "Cancellation", "CompletedLaunch", "Acknowledgement", "Receipt"]

#: The models' own words for each rule in BEYOND_SCHEMA (the schema's description lists the rules).
BEYOND_ERRORS = {
    "a window whose end is not after its start": "window end must be after window start",
    "a polygon with fewer than 3 distinct points": "at least 3 distinct points",
    "a sender among its own recipients": "cannot be one of its own recipients",
    "a group launch with launch_count below 2, or several launches not flagged as a group": "launch",
    "an orbit whose apogee_km is below its perigee_km": "apogee_km must not be below perigee_km",
    "an amendment that changes nothing": "must change at least one of",
    "a launched report without launched_at, vehicle or launch_area, or a not_launched one with launched_at or "
    "without refers_to": "report",
}
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[jsonschema.ValidationError]:
    """ECMA-262 semantics, as the schema's readers (and JSON Schema) mean it: ``$`` is the end of the text.

    Python's ``re`` lets ``$`` match before a final newline, so ``"CN\\n"`` would pass ``^[A-Z]{2}$``.
    """
    if validator.is_type(instance, "string") and not re.search(re.sub(r"(?<!\\)\$$", r"\\Z", pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})
VALIDATOR = Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
#: each contract version's own schema: a launchrelay/1 document may use that version's earlier spellings
BY_VERSION = {
    v: Validator(json.loads((ROOT / f"docs/schema/launchrelay-{v[-1]}.schema.json").read_text()),
                 format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for v in VERSIONS
}  # fmt: skip


def model_verdict(doc: Any) -> tuple[bool, list[str], list[str]]:
    """What the relay's reader says: accepted, and the reasons' codes and messages if not."""
    parsed = read(json.dumps(doc, allow_nan=False).encode())
    return parsed.message is not None, [r.code for r in parsed.reasons], [r.message for r in parsed.reasons]


def only_beyond_schema(codes: list[str], messages: list[str]) -> bool:
    """The models refused only for rules the schema cannot state (or a number no double holds)."""
    if codes == ["NUMBER_OUT_OF_RANGE"]:
        return True
    return all(
        code == "SCHEMA_INVALID" and any(words in m for words in BEYOND_ERRORS.values())
        for code, m in zip(codes, messages, strict=True)
    )


def test_schema_states_what_it_cannot_check() -> None:
    """The committed schema is current, checks formats with a real RFC 3339 checker, and lists its exceptions."""
    assert json_schema() == SCHEMA
    assert "date-time" in jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers
    assert not VALIDATOR.is_valid({"message_type": "acknowledgement", "created_at": "2026-02-30T00:00:00Z"})
    assert set(BEYOND_ERRORS) == set(BEYOND_SCHEMA)
    for rule in BEYOND_SCHEMA:
        assert rule in SCHEMA["description"]


def test_valid_examples_pass_both() -> None:
    for doc in EXAMPLES:
        assert VALIDATOR.is_valid(doc)
        assert model_verdict(doc)[0], doc


@settings(SETTINGS, max_examples=200)
@given(st.one_of([from_schema({"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{name}"}) for name in TYPES]))
def test_documents_generated_from_the_schema_are_accepted(doc: dict[str, Any]) -> None:
    """Whatever the schema allows, the models accept, unless a rule the schema cannot state refuses it."""
    assume(VALIDATOR.is_valid(doc))  # the generator reads `$` the Python way; keep what the schema means
    accepted, codes, messages = model_verdict(doc)
    assert accepted or only_beyond_schema(codes, messages), (codes, messages, doc)


# --- mutations of valid documents -------------------------------------------------------------
REPLACEMENTS: list[Any] = [
    None, True, False, 0, -1, 1, 2.0, 2.5, 1e300, 10**20, -0.0, "", "x", "40.96", "12000", "CN", " CN", "CN\n", "cn",
    "2026-12-05T00:00:00Z", "2026-12-05T00:00:00+08:00", "2026-12-05 00:00:00Z", "2026-12-05T00:00:00z",
    "2026-02-30T00:00:00Z", "2026-12-05T00:00:00.1234567Z", "icbm", "polygon", "km", "NM", "NE", "a" * 2001,
    [], {}, [1], {"kind": "circle"}, ["RU"], ["RU", "RU"], {"lat": 1, "lon": 1},
]  # fmt: skip


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(doc)))
        if not where:
            continue
        parent, last = _parent(doc, where), where[-1]
        op = draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
        if op == "replace":
            parent[last] = copy.deepcopy(draw(st.sampled_from(REPLACEMENTS)))
        elif op == "delete":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "notes", "direction", "orbit", "refers_to", "kind"]))] = (
                copy.deepcopy(draw(st.sampled_from(REPLACEMENTS)))
            )
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return doc


@settings(SETTINGS, max_examples=2000)
@given(mutated())
def test_mutations_are_judged_alike(doc: Any) -> None:
    """A mutated document the models accept is valid under its version's schema; one that schema accepts, the
    models accept too (bar the named rules). One exception: a launchrelay/1 document without message_type is read
    as the one type whose rules it meets, where the schema's oneOf may also count a type only a rule it cannot
    state (BEYOND_SCHEMA) refuses."""
    validator = BY_VERSION.get(version_of(doc) or "", VALIDATOR)
    schema_ok = validator.is_valid(doc)
    accepted, codes, messages = model_verdict(doc)
    untyped_v1 = isinstance(doc, dict) and "message_type" not in doc and version_of(doc) == V1
    if accepted and not untyped_v1:
        assert schema_ok, list(validator.iter_errors(doc))[:3]
    elif schema_ok and not accepted:
        assert only_beyond_schema(codes, messages), (codes, messages, doc)
