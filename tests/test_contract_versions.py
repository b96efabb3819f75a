"""The contract is a promise: what any published schema of a version accepted stays accepted.

docs/schema/launchrelay-1/ keeps every schema published under ``launchrelay/1``, as released (from the
repository's history), and tests/compat/launchrelay-1/ the examples shipped beside them. For each kept schema,
its examples and documents generated from it (hypothesis-jsonschema; formats checked, as a reader of the
schema would) must be read by today's models, and be valid under today's schema of the version
(docs/schema/launchrelay-1.schema.json). A change to the models or the schemas that refuses any of them fails
here: it needs a new contract version.

``launchrelay/2`` is today's shape only; a ``launchrelay/2`` document in an earlier spelling is refused.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from launchrelay.contract.codec import read, version_schema
from launchrelay.contract.messages import BEYOND_SCHEMA
from launchrelay.contract.versions import UNSTATED_LANGUAGE, V1, V2, VERSIONS, upgrade_v1
from test_contract_properties import BEYOND_ERRORS, Validator

ROOT = Path(__file__).resolve().parent.parent
KEPT = sorted((ROOT / "docs/schema/launchrelay-1").glob("*.schema.json"))
CORPUS = sorted((ROOT / "tests/compat/launchrelay-1").glob("*/*.json"))
TYPES = ["PlannedLaunch", "Amendment", "Cancellation", "CompletedLaunch", "Acknowledgement", "Receipt"]
CHECK = jsonschema.Draft202012Validator.FORMAT_CHECKER
CURRENT = {v: Validator(json.loads((ROOT / f"docs/schema/launchrelay-{v[-1]}.schema.json").read_text()),
                        format_checker=CHECK) for v in VERSIONS}  # fmt: skip
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=60)


#: What the models have refused since the first release (516fa98, 2026-11-28) although the first two schemas did
#: not say so: rules relating two values (BEYOND_SCHEMA, which no schema can state; one of azimuth and sector),
#: repeated recipients, and a party that is no ISO 3166-1 country (the schema said these from 2026-11-29:
#: uniqueItems, the code list). Never accepted, so never promised. And one exception that was accepted and is not
#: kept (the README says so): a time whose instant falls outside the years 0001-9999 in UTC
#: (0001-01-01T00:00:00+00:01), which has no UTC time to read it as.
ALWAYS_REFUSED = (*BEYOND_ERRORS.values(), "recipients must not repeat", "give exactly one of azimuth_deg or sector",
                  "is not an ISO 3166-1 alpha-2 country code",
                  "falls outside the years 0001 to 9999 in UTC")  # fmt: skip


def accepted(doc: Any) -> tuple[bool, bool, list[str]]:
    """(read, or refused only by what was always refused; read outright; the reasons)"""
    parsed = read(json.dumps(doc, ensure_ascii=False).encode())
    if parsed.message is not None:
        return True, True, []
    always = all(any(w in r.message for w in ALWAYS_REFUSED) for r in parsed.reasons)
    return always and bool(parsed.reasons), False, [f"{r.field}: {r.message}" for r in parsed.reasons]


def test_every_published_schema_of_launchrelay_1_is_kept() -> None:
    """Five schemas were published under launchrelay/1 before versions were promised; each is kept as released,
    and the first shapes' examples with them."""
    assert len(KEPT) == 5
    for path in KEPT:
        schema = json.loads(path.read_text())
        assert schema["$defs"]["PlannedLaunch"]["properties"]["contract"]["const"] == V1, path.name
    assert {p.parent.name for p in CORPUS} == {KEPT[0].name.removesuffix(".schema.json"),
                                               KEPT[-1].name.removesuffix(".schema.json")}  # fmt: skip
    assert set(BEYOND_ERRORS) == set(BEYOND_SCHEMA)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_examples_shipped_with_each_schema_are_still_read(path: Path) -> None:
    """The examples of the first release (free text as strings) and of the last are read today, and valid under
    today's launchrelay/1 schema."""
    doc = json.loads(path.read_text())
    ok, outright, why = accepted(doc)
    assert ok and outright, why
    assert CURRENT[V1].is_valid(doc), list(CURRENT[V1].iter_errors(doc))[:2]


def _generated(path: Path) -> st.SearchStrategy[Any]:
    schema = json.loads(path.read_text())
    return st.one_of([from_schema({"$defs": schema["$defs"], "$ref": f"#/$defs/{t}"}) for t in TYPES])


@pytest.mark.parametrize("path", KEPT, ids=lambda p: p.name.removesuffix(".schema.json"))
def test_documents_valid_under_each_kept_schema_are_still_accepted(path: Path) -> None:
    """Generated from each kept schema: whatever it allowed, today's models read (bar the rules no schema could
    state) and today's launchrelay/1 schema allows."""
    kept = Validator(json.loads(path.read_text()), format_checker=CHECK)

    @SETTINGS
    @given(_generated(path))
    def check(doc: Any) -> None:
        assume(kept.is_valid(doc))  # the generator reads `$` the Python way; keep what the schema means
        ok, outright, why = accepted(doc)
        assert ok, (why, doc)
        if outright:
            assert CURRENT[V1].is_valid(doc), (list(CURRENT[V1].iter_errors(doc))[:2], doc)

    check()


def test_the_first_shapes_are_read_as_today_s() -> None:
    """A plain-string reason is text of unstated language; a missing message_type or area kind is the one that
    fits; a time at another offset is the same instant in UTC; the bytes sent are what is kept."""
    first = json.loads((ROOT / "tests/compat/launchrelay-1" / CORPUS[0].parent.name / "cancellation.json")
                       .read_text())  # fmt: skip
    doc = {k: v for k, v in first.items() if k != "message_type"} | {"created_at": "2026-11-30T12:00:00+03:00"}
    parsed = read(json.dumps(doc).encode())
    assert parsed.message is not None and parsed.message.message_type == "cancellation"
    assert parsed.message.reason == {UNSTATED_LANGUAGE: first["reason"]}  # type: ignore[union-attr]
    assert parsed.message.created_at.isoformat() == "2026-11-30T09:00:00+00:00"
    assert parsed.data == doc
    area = upgrade_v1({"launch_area": {"centre": {"lat": 1, "lon": 2}, "radius": 5, "unit": "km"},
                       "impact_areas": [{"points": []}, {"ocean": "pacific", "quadrant": "NE"}]})  # fmt: skip
    assert area["launch_area"]["kind"] == "circle"
    assert [a["kind"] for a in area["impact_areas"]] == ["polygon", "ocean_quadrant"]


def test_launchrelay_2_is_today_s_shape_only() -> None:
    """Named launchrelay/2, a document is held to today's shape: no string free text, no missing message_type,
    no other offset. The same documents named launchrelay/1 are read."""
    cancellation = json.loads((ROOT / "docs/examples/valid/cancellation.json").read_text()) | {"contract": V2}
    planned = json.loads((ROOT / "docs/examples/valid/planned_launch_icbm_cn_ru.json").read_text()) | {"contract": V2}
    assert accepted(cancellation)[1] and CURRENT[V2].is_valid(cancellation)
    cases = [(cancellation, {"reason": "plain"}), (cancellation, {"created_at": "2026-11-30T12:00:00+03:00"}),
             (planned, {"message_type": None})]  # fmt: skip
    for base, change in cases:
        doc = {k: v for k, v in (base | change).items() if v is not None}
        assert not read(json.dumps(doc).encode()).message, change
        assert not CURRENT[V2].is_valid(doc), change
        as_v1 = doc | {"contract": V1}
        assert read(json.dumps(as_v1).encode()).message is not None, change
        assert CURRENT[V1].is_valid(as_v1), change
    assert read(json.dumps(base | {"contract": "launchrelay/3"}).encode()).message is None


def test_today_s_schemas_are_generated_from_the_models() -> None:
    for v in VERSIONS:
        assert json.loads((ROOT / f"docs/schema/launchrelay-{v[-1]}.schema.json").read_text()) == version_schema(v)


def test_a_document_fitting_several_types_without_message_type_is_refused_with_a_reason() -> None:
    ack = json.loads((ROOT / "docs/examples/valid/acknowledgement.json").read_text())
    doc = copy.deepcopy(ack)
    del doc["message_type"]  # refers_to alone: an acknowledgement, or a cancellation without a reason
    parsed = read(json.dumps(doc).encode())
    assert parsed.message is None
    assert parsed.reasons[0].field == "message_type" and "several types" in parsed.reasons[0].message
