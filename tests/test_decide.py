"""decide(), the one function that settles a record's fate, in memory: one row per reason code.

No broker: a record is built by hand, decided against the test deployment's
config and a state view, and the reasons are read off the decision. The
end-to-end tests (tests/test_relay.py) keep a few smoke cases per outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness import Deploy
from launchrelay.contract.headers import REDRIVE_HEADER, Headers
from launchrelay.contract.notice import Notice
from launchrelay.reasons import RETIRED, ReasonCode
from launchrelay.relay.auditlog import leaf_of
from launchrelay.relay.decide import Decision, InboundRecord, RelayContext, decide, set_aside
from launchrelay.relay.outputs import plan
from launchrelay.relay.state import MemoryState, SeenMessage
from launchrelay.signing import Signer, redrive_headers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
ROOT = Path(__file__).resolve().parent.parent


def _t(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def notice(sender: str = "CN", recipients: list[str] | None = None, agreement: str = "CN-RU-2009", **over: Any) -> dict:
    """A valid planned launch as JSON data, received at NOW."""
    data: dict[str, Any] = {
        "message_type": "planned_launch",
        "message_id": f"{sender.lower()}-0001",
        "agreement": agreement,
        "sender": sender,
        "recipients": recipients or ["RU"],
        "launch_key": f"{sender}-L1",
        "created_at": _t(timedelta(0)),
        "vehicle": {"category": "icbm", "generic_class": "test", "range_km": 9000.0},
        "window": {"start": _t(timedelta(days=3)), "end": _t(timedelta(days=4))},
        "launch_area": {"kind": "circle", "centre": {"lat": 28.5, "lon": 73.0}, "radius": 5, "unit": "km"},
        "impact_areas": [{"kind": "circle", "centre": {"lat": 25.0, "lon": 72.5}, "radius": 10, "unit": "km"}],
        # NE: toward the other party for both CN and RU ([I] CN-RU scope); the Hague Code asks for a direction
        "direction": {"sector": "NE"},
    }
    data.update(over)
    return data


def follow_up(message_type: str, sender: str = "CN", refers_to: str = "cn-0001", **over: Any) -> dict:
    base = notice(sender)
    data = {k: base[k] for k in ("agreement", "sender", "recipients", "launch_key", "created_at")}
    data.update(message_type=message_type, message_id=f"{sender.lower()}-{message_type}", refers_to=refers_to)
    data.update(over)
    return data


def notice_text(data: dict) -> str:
    """The relay's memory of a forwarded notice's content (as it keeps it in its state)."""
    from launchrelay.contract.codec import decode

    return Notice.of(decode(json.dumps(data))).to_text()  # type: ignore[arg-type]


def seen(sender: str = "CN", message_id: str = "cn-0001", **over: Any) -> SeenMessage:
    fields: dict[str, Any] = dict(
        sender=sender, message_id=message_id, digest="0" * 64, message_type="planned_launch",
        agreement="CN-RU-2009", launch_key=f"{sender}-L1", recipients=("RU",), outcome="forwarded",
    )  # fmt: skip
    fields.update(over)
    return SeenMessage(**fields)


@dataclass
class Row:
    """One record to decide: its bytes (data or raw), who signs it, its key and headers, and what state exists."""

    data: dict | None = None
    raw: bytes | None = None
    owner: str = "CN"
    signer: str | None = "default"  # the owner's key; None: no signature; "rogue": an unregistered key
    key: bytes | str | None = "launch_key"
    timestamp_ms: int = NOW_MS
    state: list[SeenMessage] = field(default_factory=list)
    sign_other_bytes: bool = False
    extra_headers: Headers = field(default_factory=list)


@pytest.fixture
def deploy(offline_deploy: Deploy) -> Deploy:
    return offline_deploy


@pytest.fixture
def ctx(offline_ctx: RelayContext) -> RelayContext:
    return offline_ctx


def build(row: Row, deploy: Deploy) -> tuple[InboundRecord, MemoryState]:
    raw = row.raw if row.raw is not None else json.dumps(row.data).encode()
    headers: Headers = []
    if row.signer == "default":
        headers = deploy.signers[row.owner].headers(raw + (b" " if row.sign_other_bytes else b""))  # type: ignore[assignment]
    elif row.signer == "rogue":
        headers = Signer.generate(f"{row.owner.lower()}-rogue").headers(raw)  # type: ignore[assignment]
    elif row.signer is not None:
        headers = deploy.signers[row.signer].headers(raw)  # type: ignore[assignment]
    if row.key == "launch_key":
        key = row.data["launch_key"].encode() if row.data and "launch_key" in row.data else b"k"
    else:
        key = row.key  # type: ignore[assignment]
    state = MemoryState()
    for s in row.state:
        state.apply(s)
    record = InboundRecord(deploy.topics.outbound(row.owner), 0, 42, key, raw, [*headers, *row.extra_headers],
                           row.timestamp_ms)  # fmt: skip
    return record, state


def _text(data: dict, old: str, new: str) -> bytes:
    raw = json.dumps(data)
    assert old in raw, old
    return raw.replace(old, new, 1).encode()


BOUNDARY_FAR = {"kind": "circle", "centre": {"lat": 28.5, "lon": 73.0}, "radius": 5, "unit": "km"}

ROWS: dict[ReasonCode, Callable[[], Row]] = {
    ReasonCode.OVERSIZE: lambda: Row(notice(notes={"en": "x" * 70000})),  # measured before it is parsed
    ReasonCode.NOT_UTF8: lambda: Row(raw=b'{"message_id": "\xff"}'),
    ReasonCode.NOT_JSON: lambda: Row(raw=b"launch tomorrow, probably"),
    ReasonCode.JSON_TOO_DEEP: lambda: Row(raw=b"[" * 1000 + b"]" * 1000),
    ReasonCode.JSON_NON_FINITE: lambda: Row(raw=_text(notice(), '"range_km": 9000.0', '"range_km": Infinity')),
    ReasonCode.JSON_DUPLICATE_KEY: lambda: Row(
        raw=_text(notice(), '"range_km": 9000.0', '"range_km": 1500, "range_km": 9000.0')
    ),
    ReasonCode.JSON_BAD_STRING: lambda: Row(
        raw=_text(notice(), '"generic_class": "test"', '"generic_class": "\\ud800"')
    ),
    ReasonCode.NUMBER_OUT_OF_RANGE: lambda: Row(raw=_text(notice(), '"range_km": 9000.0', '"range_km": 1e400')),
    ReasonCode.SCHEMA_INVALID: lambda: Row(raw=_text(notice(), '"lat": 28.5', '"lat": "28.5"')),
    ReasonCode.NOT_A_PARTY_MESSAGE: lambda: Row(raw=(ROOT / "docs/examples/valid/receipt_rejected.json").read_bytes()),
    ReasonCode.KEY_MISMATCH: lambda: Row(notice(), key=b"CN-other"),
    ReasonCode.TIMESTAMP_INVALID: lambda: Row(notice(), timestamp_ms=-1),
    ReasonCode.SIGNATURE_MISSING: lambda: Row(notice(), signer=None),
    ReasonCode.SIGNATURE_INVALID: lambda: Row(notice(), sign_other_bytes=True),
    ReasonCode.KEY_UNKNOWN: lambda: Row(notice(), signer="rogue"),
    ReasonCode.SENDER_SPOOFED: lambda: Row(notice(), owner="RU", signer="RU"),
    ReasonCode.AGREEMENT_UNKNOWN: lambda: Row(notice(agreement="XX-1")),
    ReasonCode.SENDER_NOT_PARTY: lambda: Row(notice("US", ["RU"]), owner="US"),
    ReasonCode.RECIPIENT_NOT_PARTY: lambda: Row(notice(recipients=["US"])),
    ReasonCode.OUT_OF_SCOPE_CATEGORY: lambda: Row(
        notice("US", ["RU"], "US-RU-1988", vehicle={"category": "space_launch_vehicle", "generic_class": "x"}),
        owner="US",
    ),
    ReasonCode.OUT_OF_SCOPE_RANGE: lambda: Row(
        notice(vehicle={"category": "other_ballistic_missile", "generic_class": "x", "range_km": 1500.0})
    ),
    ReasonCode.RANGE_REQUIRED: lambda: Row(notice(vehicle={"category": "icbm", "generic_class": "x"})),
    ReasonCode.LEAD_TIME_TOO_SHORT: lambda: Row(
        notice(window={"start": _t(timedelta(hours=23)), "end": _t(timedelta(hours=30))})
    ),
    ReasonCode.LEAD_TIME_TOO_LONG: lambda: Row(
        notice(window={"start": _t(timedelta(days=31)), "end": _t(timedelta(days=32))})
    ),
    ReasonCode.WINDOW_TOO_LONG: lambda: Row(
        notice("IN", ["PK"], "IN-PK-2005", window={"start": _t(timedelta(days=4)), "end": _t(timedelta(days=10))}),
        owner="IN",
    ),
    ReasonCode.AREA_NOT_MEASURABLE: lambda: Row(
        notice("IN", ["PK"], "IN-PK-2005", launch_area={"kind": "water_body", "name": "Arabian Sea"}), owner="IN"
    ),
    ReasonCode.LAUNCH_SITE_TOO_CLOSE: lambda: Row(
        notice(
            "IN",
            ["PK"],
            "IN-PK-2005",
            launch_area={"kind": "circle", "centre": {"lat": 28.5, "lon": 74.8}, "radius": 1, "unit": "km"},
        ),
        owner="IN",
    ),
    ReasonCode.IMPACT_AREA_TOO_CLOSE: lambda: Row(
        notice(
            "IN",
            ["PK"],
            "IN-PK-2005",
            impact_areas=[{"kind": "circle", "centre": {"lat": 25.0, "lon": 74.5}, "radius": 1, "unit": "km"}],
        ),
        owner="IN",
    ),
    ReasonCode.TRAJECTORY_CROSSES_BOUNDARY: lambda: Row(
        notice(
            "IN",
            ["PK"],
            "IN-PK-2005",
            impact_areas=[{"kind": "circle", "centre": {"lat": 25.0, "lon": 77.5}, "radius": 1, "unit": "km"}],
        ),
        owner="IN",
    ),
    ReasonCode.TRAJECTORY_TOO_CLOSE: lambda: Row(
        notice(
            "IN",
            ["PK"],
            "IN-PK-2005",
            launch_area={"kind": "circle", "centre": {"lat": 36.2, "lon": 73.5}, "radius": 1, "unit": "km"},
            impact_areas=[{"kind": "circle", "centre": {"lat": 36.2, "lon": 76.5}, "radius": 1, "unit": "km"}],
        ),
        owner="IN",
    ),
    ReasonCode.REFERENCE_UNKNOWN: lambda: Row(follow_up("cancellation", refers_to="cn-never")),
    ReasonCode.REFERENCE_MISMATCH: lambda: Row(follow_up("cancellation"), state=[seen(launch_key="CN-L9")]),
    ReasonCode.ACK_NOT_FROM_RECIPIENT: lambda: Row(
        follow_up(
            "acknowledgement", sender="JP", refers_to="fr-0001", agreement="HCOC", recipients=["FR"], launch_key="FR-L1"
        ),
        owner="JP",
        state=[seen("FR", "fr-0001", agreement="HCOC", launch_key="FR-L1", recipients=("AT", "GB"))],
    ),
    ReasonCode.NOTIFICATION_CLOSED: lambda: Row(follow_up("cancellation"), state=[seen(closed=True)]),
    ReasonCode.DUPLICATE_CONFLICT: lambda: Row(notice(), state=[seen()]),
    ReasonCode.AGREEMENT_NOT_IN_FORCE: lambda: Row(
        notice(), timestamp_ms=int(datetime(2031, 1, 1, tzinfo=UTC).timestamp() * 1000)
    ),
    ReasonCode.CREATED_AT_SKEW: lambda: Row(notice(created_at=_t(timedelta(hours=1)))),
    ReasonCode.CREATED_AT_TOO_OLD: lambda: Row(notice(created_at=_t(-timedelta(days=31)))),
    ReasonCode.OUT_OF_SCOPE_DIRECTION: lambda: Row(notice(direction={"sector": "S"})),
    ReasonCode.WINDOW_IN_PAST: lambda: Row(
        notice(window={"start": _t(-timedelta(hours=1)), "end": _t(timedelta(days=1))})
    ),
    ReasonCode.AREA_KIND_NOT_ALLOWED: lambda: Row(
        notice(
            "US", ["RU"], "US-RU-1988", impact_areas=[{"kind": "ocean_quadrant", "ocean": "pacific", "quadrant": "NE"}]
        ),
        owner="US",
    ),
    ReasonCode.DIRECTION_REQUIRED: lambda: Row(notice("FR", ["AT", "GB"], "HCOC", direction=None), owner="FR"),
    ReasonCode.GROUP_INTERVAL_REQUIRED: lambda: Row(
        notice(
            vehicle={
                "category": "icbm",
                "generic_class": "x",
                "range_km": 9000.0,
                "launch_count": 2,
                "group": "simultaneous",
            }
        )
    ),
    ReasonCode.GROUP_INTERVAL_TOO_LONG: lambda: Row(
        notice(
            vehicle={
                "category": "icbm",
                "generic_class": "x",
                "range_km": 9000.0,
                "launch_count": 2,
                "group": "simultaneous",
                "launch_interval_minutes": 10,
            }
        )
    ),
    ReasonCode.WRONG_SIDE_OF_BOUNDARY: lambda: Row(
        notice(
            "IN",
            ["PK"],
            "IN-PK-2005",
            launch_area={"kind": "circle", "centre": {"lat": 25.0, "lon": 77.5}, "radius": 1, "unit": "km"},
            impact_areas=[{"kind": "circle", "centre": {"lat": 23.0, "lon": 77.5}, "radius": 1, "unit": "km"}],
        ),
        owner="IN",
    ),
    # US-USSR 1988 art. II ("the area of impact"), DOMAIN.md; the rule of CN-RU [I] (modelled as 1988) and IN-PK
    ReasonCode.IMPACT_AREA_REQUIRED: lambda: Row(
        follow_up("amendment", impact_areas=[]), state=[seen(notice=notice_text(notice()))]
    ),
    # CN-RU 2009: notifications are confidential by the agreement (DOMAIN.md, China–Russia: "confidential [S]")
    ReasonCode.NOT_CONFIDENTIAL: lambda: Row(notice(confidential=False)),
    # RU's systems read launchrelay/1 only (the default of [parties.XX] reads)
    ReasonCode.CONTRACT_VERSION_NOT_READ: lambda: Row(notice(contract="launchrelay/2")),
    ReasonCode.LAUNCHED_IN_FUTURE: lambda: Row(
        follow_up(
            "completed_launch",
            launched_at=_t(timedelta(hours=2)),  # received at NOW: a launch that has not happened
            vehicle=notice()["vehicle"],
            launch_area=notice()["launch_area"],
        ),
        state=[seen(notice=notice_text(notice()))],
    ),
}


def outside_window_report() -> Row:
    """CN's report of a launch on day 10 of a notice whose window closed on day 4, received on day 11."""
    return Row(
        follow_up("completed_launch", launched_at=_t(timedelta(days=10)), vehicle=notice()["vehicle"],
                  launch_area=notice()["launch_area"]),
        state=[seen(notice=notice_text(notice()))],
        timestamp_ms=NOW_MS + 11 * 86400 * 1000,
    )  # fmt: skip


def test_a_report_outside_the_window_reaches_the_counterpart_flagged(deploy: Deploy, ctx: RelayContext) -> None:
    """CN-RU 2009 requires reports of completed launches: one outside the notified window is forwarded with
    LAUNCH_OUTSIDE_WINDOW as a warning on the sender's receipt (the default); an agreement set to
    report_outside_window = "reject" refuses it."""
    flagged = decided(outside_window_report(), deploy, ctx)
    assert flagged.kind == "forwarded" and [w.code for w in flagged.warnings] == ["LAUNCH_OUTSIDE_WINDOW"]
    d = ctx.deployment
    strict = d.agreements["CN-RU-2009"].model_copy(update={"report_outside_window": "reject"})
    refusing = RelayContext.build(d.model_copy(update={"agreements": {**d.agreements, "CN-RU-2009": strict}}))
    refused = decided(outside_window_report(), deploy, refusing)
    assert refused.kind == "rejected" and "LAUNCH_OUTSIDE_WINDOW" in refused.reason_codes


def decided(row: Row, deploy: Deploy, ctx: RelayContext) -> Decision:
    record, state = build(row, deploy)
    return decide(record, ctx, state)


@pytest.mark.parametrize("code", list(ROWS), ids=lambda c: c.value)
def test_each_reason_code(code: ReasonCode, deploy: Deploy, ctx: RelayContext) -> None:
    """Each crafted record is rejected with its reason code, and the plan lists that code in the dead letter."""
    decision = decided(ROWS[code](), deploy, ctx)
    assert decision.kind == "rejected", decision
    assert code.value in decision.reason_codes
    out = plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW)
    (dead,) = [o for o in out if o.topic == ctx.topics.deadletter]
    assert code.value.encode() in dict(dead.headers)["lr-reasons"]  # type: ignore[operator]


def test_every_code_has_a_row() -> None:
    """The table covers the catalogue: codes the relay cannot reach from bytes alone are tested below."""
    by_service = {ReasonCode.RECORD_UNREADABLE, ReasonCode.INTERNAL_ERROR, ReasonCode.DUPLICATE,
                  ReasonCode.REDRIVE_UNAUTHENTICATED}  # fmt: skip
    by_service.add(ReasonCode.LAUNCH_OUTSIDE_WINDOW)  # a warning by default: test_a_report_outside_the_window_…
    two_centres = {ReasonCode.LINK_UNVERIFIED, ReasonCode.RECIPIENT_UNREACHABLE}  # test_two_centres_decide.py
    assert set(ROWS) | by_service | two_centres | set(RETIRED) == set(ReasonCode)


def test_a_recipient_is_sent_only_the_contract_versions_it_reads(deploy: Deploy, ctx: RelayContext) -> None:
    """launchrelay/2 reaches RU once RU's config says its systems read it; until then the sender's receipt says
    which versions RU reads (the signed bytes cannot be rewritten into another version)."""
    from launchrelay.contract.codec import decode

    refused = decided(Row(notice(contract="launchrelay/2")), deploy, ctx)
    (why,) = [r for r in refused.reasons if r.code == "CONTRACT_VERSION_NOT_READ"]
    assert (why.field, why.message) == ("contract", "RU reads launchrelay/1 only; this message is launchrelay/2")
    out = plan(refused, ctx.topics, deploy.relay_signer, "r1", NOW)
    receipt = decode(next(o.value for o in out if o.topic == ctx.topics.inbound("CN")))
    assert "RU reads launchrelay/1 only" in receipt.reasons[0].message  # type: ignore[union-attr]
    d = ctx.deployment
    ru = d.parties["RU"].model_copy(update={"reads": ["launchrelay/1", "launchrelay/2"]})
    reads_both = RelayContext.build(d.model_copy(update={"parties": {**d.parties, "RU": ru}}))
    assert decided(Row(notice(contract="launchrelay/2")), deploy, reads_both).kind == "forwarded"
    assert decided(Row(notice()), deploy, ctx).kind == "forwarded", "launchrelay/1, as every party reads"


def test_valid_notice_is_forwarded(deploy: Deploy, ctx: RelayContext) -> None:
    """The base notice of the table passes every check (so each row fails for its own reason)."""
    decision = decided(Row(notice()), deploy, ctx)
    assert decision.kind == "forwarded" and decision.recipients == ["RU"] and not decision.reasons


def test_exact_repeat_is_a_duplicate(deploy: Deploy, ctx: RelayContext) -> None:
    """The same bytes again from the same sender are DUPLICATE, not forwarded, with the reason on the decision."""
    record, state = build(Row(notice()), deploy)
    first = decide(record, ctx, state)
    for write in first.state_writes:
        state.apply(write)
    again = decide(record, ctx, state)
    assert again.kind == "duplicate" and again.reason_codes == ["DUPLICATE"]


def _again(record: InboundRecord, offset: int, headers: Headers) -> InboundRecord:
    return InboundRecord(record.topic, 0, offset, record.key, record.value, [*record.headers, *headers],
                         record.timestamp_ms)  # fmt: skip


def _rejected_once(deploy: Deploy, ctx: RelayContext) -> tuple[InboundRecord, MemoryState]:
    late = Row(notice(window={"start": _t(timedelta(hours=23)), "end": _t(timedelta(days=1))}))
    record, state = build(late, deploy)
    rejected = decide(record, ctx, state)
    assert rejected.kind == "rejected"
    for write in rejected.state_writes:
        state.apply(write)
    return record, state


def test_operators_redrive_reopens_only_a_rejection(deploy: Deploy, ctx: RelayContext) -> None:
    """A redrive signed by a registered operator key decides rejected bytes again, naming who; a plain repeat
    stays a duplicate."""
    record, state = _rejected_once(deploy, ctx)
    mark = redrive_headers(deploy.operator_signer, "lr.deadletter:0:7", "watch-alice", record.value or b"")
    redriven = decide(_again(record, 43, mark), ctx, state)
    assert redriven.kind == "rejected" and redriven.reason_codes != ["DUPLICATE"]  # judged again (still too late)
    assert redriven.redrive_of == "lr.deadletter:0:7" and redriven.redrive_ignored is None
    (event,) = [json.loads(o.value) for o in plan(redriven, ctx.topics, deploy.relay_signer, "r1", NOW)
                if o.topic == ctx.topics.status]  # fmt: skip
    assert (event["redrive_of"], event["redriven_by"]) == ("lr.deadletter:0:7", "watch-alice (operator-test)")
    # the decision log says so too (issue 29: a redrive is a decision of its own, and whose)
    leaf = json.loads(leaf_of(redriven, "lr.CN.out:0", 5))
    assert leaf["redrive"] == {"dead_letter": "lr.deadletter:0:7", "by": "watch-alice (operator-test)"}
    assert "redrive" not in json.loads(leaf_of(decide(_again(record, 44, []), ctx, state), "lr.CN.out:0", 6))
    assert decide(_again(record, 44, []), ctx, state).kind == "duplicate"


def _forged_marks(deploy: Deploy, value: bytes) -> dict[str, Headers]:
    party = Signer("operator-test", deploy.signers["CN"].private_key)  # the party's own key under the operator's id
    signed = redrive_headers(deploy.operator_signer, "lr.deadletter:0:7", "watch-alice", value)
    return {
        "bare mark": [(REDRIVE_HEADER, b"lr.deadletter:0:7")],
        "unknown key": redrive_headers(Signer.generate("nobody"), "lr.deadletter:0:7", "watch-alice", value),
        "wrong key": redrive_headers(party, "lr.deadletter:0:7", "watch-alice", value),
        "other bytes": redrive_headers(deploy.operator_signer, "lr.deadletter:0:7", "watch-alice", value + b" "),
        "other name": [(k, b"mallory" if k == "lr-redrive-by" else v) for k, v in signed],
    }


@pytest.mark.parametrize("forgery", ["bare mark", "unknown key", "wrong key", "other bytes", "other name"])
def test_a_forged_redrive_mark_is_ignored_and_said(forgery: str, deploy: Deploy, ctx: RelayContext) -> None:
    """A mark no registered operator key signed over these bytes reopens nothing: the repeat is a duplicate,
    and the receipt and dead letter say REDRIVE_UNAUTHENTICATED."""
    record, state = _rejected_once(deploy, ctx)
    decision = decide(_again(record, 43, _forged_marks(deploy, record.value or b"")[forgery]), ctx, state)
    assert decision.kind == "duplicate" and decision.redrive_of is None
    out = plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW)
    (receipt,) = [json.loads(o.value) for o in out if o.topic == ctx.topics.inbound("CN")]
    assert [r["code"] for r in receipt["reasons"]] == ["DUPLICATE", "REDRIVE_UNAUTHENTICATED"]
    (dead,) = [o for o in out if o.topic == ctx.topics.deadletter]
    assert dict(dead.headers)["lr-reasons"] == b"DUPLICATE,REDRIVE_UNAUTHENTICATED"
    (event,) = [json.loads(o.value) for o in out if o.topic == ctx.topics.status]
    assert "redrive_of" not in event and "redriven_by" not in event


def test_a_forged_mark_on_a_new_notice_is_forwarded_without_it(deploy: Deploy, ctx: RelayContext) -> None:
    """On a message never seen, a forged mark changes nothing but the sender's receipt, which warns of it;
    no mark header reaches the recipient."""
    record, state = build(Row(notice()), deploy)
    decision = decide(_again(record, 43, [(REDRIVE_HEADER, b"x"), ("lr-redrive-by", b"me")]), ctx, state)
    assert decision.kind == "forwarded"
    out = plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW)
    (copy,) = [o for o in out if o.topic == ctx.topics.inbound("RU")]
    assert not any(k.startswith("lr-redrive") for k, _ in copy.headers)
    assert "lr-warnings" not in dict(copy.headers)
    (receipt,) = [json.loads(o.value) for o in out if o.topic == ctx.topics.inbound("CN")]
    assert [w["code"] for w in receipt["warnings"]] == ["REDRIVE_UNAUTHENTICATED"] and receipt["reasons"] == []


@pytest.mark.parametrize("key", [None, b"", b"CN-L1 "], ids=["null", "empty", "trailing space"])
def test_key_must_be_the_launch_key_exactly(key: bytes | None, deploy: Deploy, ctx: RelayContext) -> None:
    """A null, empty or nearly-equal record key is KEY_MISMATCH: the partition, and so the order, depends on it."""
    decision = decided(Row(notice(), key=key), deploy, ctx)
    assert decision.reason_codes == ["KEY_MISMATCH"]


@pytest.mark.parametrize("code", [ReasonCode.INTERNAL_ERROR, ReasonCode.RECORD_UNREADABLE])
def test_set_aside_names_the_error(code: ReasonCode, deploy: Deploy, ctx: RelayContext) -> None:
    """A record set aside is a rejection with its code and the error in lr-error, planned like any other."""
    record, _ = build(Row(notice()), deploy)
    decision = set_aside(record, ctx, code, RecursionError("too deep"), 3)
    assert decision.kind == "rejected" and decision.reason_codes == [code.value] and decision.owner == "CN"
    out = plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW)
    (dead,) = [o for o in out if o.topic == ctx.topics.deadletter]
    assert dead.value == record.value and dict(dead.headers)["lr-error"] == b"RecursionError: too deep"
    (receipt,) = [o for o in out if o.topic == ctx.topics.inbound("CN")]
    assert json.loads(receipt.value)["reasons"][0]["code"] == code.value


def test_null_header_values_are_kept_on_the_forward(deploy: Deploy, ctx: RelayContext) -> None:
    """A header with a null value is no signature, and is carried as null on a forward (not turned into bytes)."""
    row = Row(notice(), extra_headers=[("x-trace", None)])
    decision = decided(row, deploy, ctx)
    assert decision.kind == "forwarded"
    (copy,) = [o for o in plan(decision, ctx.topics, deploy.relay_signer, "r1", NOW) if o.topic.endswith("RU.in")]
    assert ("x-trace", None) in copy.headers


def _at(record: InboundRecord, offset: int, when_s: float) -> InboundRecord:
    """The same bytes and headers again at ``offset``, as the broker stamps them at ``when_s`` (Unix seconds)."""
    return InboundRecord(record.topic, record.partition, offset, record.key, record.value, record.headers,
                         int(when_s * 1000))  # fmt: skip


@pytest.mark.parametrize("what", ["notice", "acknowledgement", "rejected"])
def test_a_forgotten_id_replayed_is_refused_by_its_age_never_forwarded_twice(
    what: str, deploy: Deploy, ctx: RelayContext
) -> None:
    """Remembered until its forget_at, a replay is a duplicate; forgotten after it, the replay is refused as
    CREATED_AT_TOO_OLD (the relay remembers ids for remember_for past the time they can matter)."""
    rows = {
        "notice": Row(notice()),
        "acknowledgement": Row(  # RU acknowledges CN's forwarded notice
            follow_up("acknowledgement", sender="RU", recipients=["CN"], launch_key="CN-L1"),
            owner="RU",
            state=[seen(launch_key="CN-L1")],
        ),
        "rejected": Row(notice(window={"start": _t(timedelta(hours=23)), "end": _t(timedelta(days=1))})),
    }
    record, state = build(rows[what], deploy)
    first = decide(record, ctx, state)
    assert first.kind == ("rejected" if what == "rejected" else "forwarded"), first.reasons
    (remembered,) = [w for w in first.state_writes if w.message_id == first.message.message_id]  # type: ignore[union-attr]
    state.apply(remembered)
    remember_for = ctx.deployment.relay.remember_for.total_seconds()
    assert remembered.forget_at >= NOW.timestamp() + remember_for  # never earlier than the age rule's reach
    if what == "notice":  # a notice matters until its window closes: remembered that long, plus remember_for
        assert remembered.forget_at > (NOW + timedelta(days=4)).timestamp() + remember_for
    just_before = decide(_at(record, 50, remembered.forget_at - 1), ctx, state)
    assert just_before.kind == "duplicate"
    state.forget(remembered.key)
    replay = decide(_at(record, 51, remembered.forget_at + 1), ctx, state)
    assert replay.kind == "rejected" and "CREATED_AT_TOO_OLD" in replay.reason_codes
