"""decide() is total: for any bytes, headers, key and timestamp it returns an outcome with reasons, never raises.

Four generators, 10,000 examples in all in the default run: arbitrary bytes and
headers; JSON-shaped documents; valid notices with fields changed and signed
again (so they reach the rules and the reference checks); and valid signed
bytes mangled as text (nesting, NaN, repeated keys, huge numbers). For each,
the decision and the records planned from it are checked; a forward must be a
document the published schema accepts. `make fuzz` runs a coverage-guided
search over the same function for as long as it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import Deploy, deploy_config
from launchrelay.agreements.config import load_config
from launchrelay.contract import strict
from launchrelay.contract.versions import version_of
from launchrelay.reasons import ReasonCode
from launchrelay.relay.decide import InboundRecord, RelayContext, decide
from launchrelay.relay.outputs import plan
from launchrelay.relay.state import MemoryState
from test_contract_properties import BY_VERSION, VALIDATOR
from test_decide import NOW, NOW_MS, follow_up, notice, seen

#: examples per generator; together the 10,000 the default run must make (JSON shapes are slowest to draw)
EXAMPLES = {"arbitrary": 4000, "json": 1500, "changed": 2500, "mangled": 2000}
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))
CODES = {c.value for c in ReasonCode}
ROOT = Path(__file__).resolve().parent.parent

_deploy: Deploy | None = None


def context() -> tuple[Deploy, RelayContext]:
    global _deploy
    if _deploy is None:
        import tempfile

        _deploy = deploy_config("unused:9092", Path(tempfile.mkdtemp(prefix="fuzz")), "lr")
    return _deploy, RelayContext.build(load_config(_deploy.config))


DEPLOY, CTX = context()


def state() -> MemoryState:
    """What the relay remembers: a forwarded CN notice (references), and a closed one."""
    s = MemoryState()
    s.apply(seen())
    s.apply(seen(message_id="cn-closed", closed=True))
    s.apply(seen("FR", "fr-0001", agreement="HCOC", launch_key="FR-L1", recipients=("AT", "GB")))
    return s


def check(record: InboundRecord) -> None:
    decision = decide(record, CTX, state())
    assert decision.kind in ("forwarded", "rejected", "duplicate")
    if decision.kind == "forwarded":
        assert decision.message is not None and decision.recipients and not decision.reasons
        assert record.key == decision.message.launch_key.encode()
        document = strict.parse(record.value or b"")
        assert not isinstance(document, strict.JsonProblem)
        validator = BY_VERSION.get(version_of(document) or "", VALIDATOR)  # its version's schema
        assert validator.is_valid(document), list(validator.iter_errors(document))[:2]  # one contract
    else:
        assert decision.reasons and set(decision.reason_codes) <= CODES
    out = plan(decision, CTX.topics, DEPLOY.relay_signer, "fuzz", NOW)
    assert any(o.topic == CTX.topics.status for o in out)
    if decision.kind != "forwarded":
        assert any(o.topic == CTX.topics.deadletter and o.value == (record.value or b"") for o in out)


topics = st.sampled_from([DEPLOY.topics.outbound(p) for p in ("CN", "RU", "IN", "FR", "JP")] + ["elsewhere"])
timestamps = st.one_of(st.just(NOW_MS), st.integers(-(2**63), 2**63 - 1))
header_values = st.one_of(st.none(), st.binary(max_size=100))
headers = st.lists(
    st.tuples(st.one_of(st.sampled_from(["lr-signature", "lr-key-id", "lr-redrive"]), st.text(max_size=20)),
              header_values),
    max_size=6,
)  # fmt: skip
keys = st.one_of(st.none(), st.binary(max_size=40), st.just(b"CN-L1"))


@settings(SETTINGS, max_examples=EXAMPLES["arbitrary"])
@given(value=st.one_of(st.none(), st.binary(max_size=2000)), key=keys, hdrs=headers, topic=topics, ts=timestamps)
def test_arbitrary_records(value: bytes | None, key: bytes | None, hdrs: Any, topic: str, ts: int) -> None:
    """Any bytes, any headers (null values included), any key, any timestamp, any topic."""
    check(InboundRecord(topic, 0, 1, key, value, hdrs, ts))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


@settings(SETTINGS, max_examples=EXAMPLES["json"])
@given(doc=json_values, extra=st.dictionaries(st.sampled_from(["sender", "message_type", "launch_key"]),
                                              json_values, max_size=3))  # fmt: skip
def test_json_shaped_documents(doc: Any, extra: dict[str, Any]) -> None:
    """JSON of any shape, sometimes with the envelope's keys, signed by the topic's owner."""
    if isinstance(doc, dict):
        doc = {**doc, **extra}
    raw = json.dumps(doc).encode()
    check(InboundRecord(DEPLOY.topics.outbound("CN"), 0, 1, b"CN-L1", raw, DEPLOY.signers["CN"].headers(raw), NOW_MS))


FIELD_VALUES = st.one_of(
    json_values,
    st.sampled_from([
        "CN", "RU", "US", "XX", "CN-RU-2009", "US-RU-1988", "IN-PK-2005", "HCOC", "cn-0001", "cn-closed",
        "2026-11-29T00:00:00Z", "2031-01-01T00:00:00Z", 1e308, 2000, 2000.0001, 0, -1,
        {"kind": "ocean_quadrant", "ocean": "pacific", "quadrant": "NE"}, {"kind": "water_body", "name": "Sea"},
        {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}, ["RU"], ["PK"], ["AT", "GB"],
    ]),
)  # fmt: skip
BASES = [
    notice(message_id="cn-new"),
    notice("IN", ["PK"], "IN-PK-2005"),
    notice("US", ["RU"], "US-RU-1988"),
    notice("FR", ["AT", "GB"], "HCOC", message_id="fr-new"),
    follow_up("amendment", direction={"sector": "N"}),
    follow_up("cancellation"),
    follow_up("acknowledgement", sender="RU", recipients=["CN"], launch_key="CN-L1"),
]


@settings(SETTINGS, max_examples=EXAMPLES["changed"])
@given(base=st.sampled_from(BASES), changes=st.dictionaries(
    st.sampled_from(["sender", "recipients", "agreement", "launch_key", "message_id", "refers_to", "window",
                     "vehicle", "launch_area", "impact_areas", "created_at", "message_type", "direction", "orbit"]),
    FIELD_VALUES, max_size=3,
), rekey=st.booleans())  # fmt: skip
def test_changed_and_resigned_notices(base: dict[str, Any], changes: dict[str, Any], rekey: bool) -> None:
    """Valid messages with fields changed, signed again by their sender: they reach the rules and the state."""
    doc = {**base, **changes}
    claimed = doc.get("sender")
    sender = claimed if isinstance(claimed, str) and claimed in DEPLOY.signers else base["sender"]
    raw = json.dumps(doc).encode()
    launch_key = doc.get("launch_key")
    key = launch_key.encode() if rekey and isinstance(launch_key, str) else base["launch_key"].encode()
    record = InboundRecord(DEPLOY.topics.outbound(base["sender"]), 0, 1, key, raw,
                           DEPLOY.signers[sender].headers(raw), NOW_MS)  # fmt: skip
    check(record)


MANGLES = [
    ("9000.0", "NaN"), ("9000.0", "Infinity"), ("9000.0", "1e400"), ("9000.0", "1" + "0" * 400),
    ('"range_km"', '"range_km": 1, "range_km"'), ('"lat"', '"lat": 0, "lat"'), ("{", "[" * 300 + "{"),
    ('"test"', '"\\ud800"'), ('"test"', '"\\u0000"'), (", ", ",, "), ("}", "}}"), ('"CN"', '"CN\\n"'),
    ('"RU"', '" RU"'), ("28.5", '"28.5"'), ("Z", "+08:00"), ("Z", ""), ("T", " "),
]  # fmt: skip


@settings(SETTINGS, max_examples=EXAMPLES["mangled"])
@given(base=st.sampled_from(BASES), mangles=st.lists(st.sampled_from(MANGLES), min_size=1, max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 2000)))  # fmt: skip
def test_mangled_signed_text(base: dict[str, Any], mangles: list[tuple[str, str]], cut: int | None) -> None:
    """Valid text with pieces replaced (or cut short), then signed: strict JSON's refusals, and the schema's."""
    text = json.dumps(base)
    for old, new in mangles:
        text = text.replace(old, new, 1)
    raw = text.encode()[:cut] if cut is not None else text.encode()
    record = InboundRecord(DEPLOY.topics.outbound(base["sender"]), 0, 1, base["launch_key"].encode(), raw,
                           DEPLOY.signers[base["sender"]].headers(raw), NOW_MS)  # fmt: skip
    check(record)


def test_examples_add_up_and_the_bases_forward() -> None:
    """10,000 examples in the default run, and the generators are not all noise: every base is forwarded."""
    assert sum(EXAMPLES.values()) >= 10_000
    for base in BASES:
        raw = json.dumps(base).encode()
        record = InboundRecord(DEPLOY.topics.outbound(base["sender"]), 0, 1, base["launch_key"].encode(), raw,
                               DEPLOY.signers[base["sender"]].headers(raw), NOW_MS)  # fmt: skip
        assert decide(record, CTX, state()).kind == "forwarded", base["message_type"]


pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
