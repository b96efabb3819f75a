"""Pure tracker logic: deliveries, acknowledgements, deadlines and retransmissions, with explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.messages import Reason, RecordRef
from launchrelay.tracker.deadlines import Retransmit, Timeout, action_id, due
from launchrelay.tracker.lifecycle import (
    Changes,
    Delivery,
    DeliveryKind,
    DeliveryState,
    Notification,
    acknowledge,
    apply,
    deliveries_for,
    overall_state,
    stop,
    timed_out,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _forwarded(recipients: list[str], deadline_s: float = 3600.0, every_s: float | None = 900.0) -> StatusEvent:
    """Forwarded under a policy of re-sends every 15 minutes, at most 3 (none when ``every_s`` is None)."""
    return StatusEvent(
        event_id="e1",
        kind=EventKind.FORWARDED,
        at=T0,
        message_id="cn-1",
        message_type="planned_launch",
        agreement="CN-RU-2009",
        sender="CN",
        recipients=recipients,
        launch_key="L1",
        ack_deadline_s=deadline_s,
        retransmit_every_s=every_s,
        retransmit_max=3 if every_s else None,
    )


def test_one_pending_delivery_per_recipient_with_the_agreement_deadline() -> None:
    """A forwarded notice to four recipients expects four acknowledgements, each due at forward + deadline."""
    ds = deliveries_for(_forwarded(["AT", "GB", "JP", "US"]))
    assert [d.recipient for d in ds] == ["AT", "GB", "JP", "US"]
    assert all(d.state is DeliveryState.PENDING and d.deadline_at == T0 + timedelta(hours=1) for d in ds)


def test_retransmissions_every_15_minutes_then_timeout() -> None:
    """Policy: re-send every 15 min at most 3 times; the timeout comes at the deadline (60 min)."""
    (d,) = deliveries_for(_forwarded(["RU"]))
    assert due([d], T0 + timedelta(minutes=14)) == []
    assert due([d], T0 + timedelta(minutes=15)) == [Retransmit(d, 1)]
    d3 = d.__class__(**{**d.__dict__, "retransmits": 3})
    assert d3.next_retransmit_at is None
    assert due([d3], T0 + timedelta(minutes=59)) == []
    assert due([d3], T0 + timedelta(minutes=60)) == [Timeout(d3)]


def test_acknowledgement_in_time_and_late() -> None:
    """An acknowledgement before the deadline counts as on time; after a timeout it is recorded late, not lost."""
    (d,) = deliveries_for(_forwarded(["RU"], every_s=None))
    on_time = acknowledge(d, "ack-1", T0 + timedelta(minutes=5))
    assert on_time.state is DeliveryState.ACKNOWLEDGED and on_time.latency == timedelta(minutes=5)
    late = acknowledge(timed_out(d, T0 + timedelta(hours=1)), "ack-2", T0 + timedelta(hours=2))
    assert late.state is DeliveryState.ACKNOWLEDGED_LATE and late.latency == timedelta(hours=2)
    assert acknowledge(on_time, "ack-3", T0 + timedelta(hours=3)) == on_time  # a second ack changes nothing


def test_cancelled_notification_stops_its_deadline() -> None:
    """A cancellation stops pending deadlines: nothing falls due afterwards."""
    (d,) = deliveries_for(_forwarded(["RU"]))
    assert due([stop(d)], T0 + timedelta(days=1)) == []


def test_acknowledgements_expect_no_acknowledgement() -> None:
    """Only messages forwarded with a deadline create deliveries (acknowledgements carry none)."""
    event = _forwarded(["CN"]).model_copy(update={"ack_deadline_s": None, "message_type": "acknowledgement"})
    assert deliveries_for(event) == []


# --- how events change the ledger (lifecycle.apply, over an in-memory view) -----------------------


class MemoryView:
    """Rows in dicts; ``write`` applies Changes as the SQL layer does (rows replaced whole)."""

    def __init__(self) -> None:
        self.rows: dict[str, Notification] = {}
        self.dels: dict[tuple[str, str], Delivery] = {}
        self.notes: list[tuple[str, str]] = []

    def notification(self, key: str) -> Notification | None:
        return self.rows.get(key)

    def deliveries(self, key: str) -> list[Delivery]:
        return sorted((d for (k, _), d in self.dels.items() if k == key), key=lambda d: d.recipient)

    def write(self, changes: Changes) -> Changes:
        for n in changes.notifications:
            self.rows[n.key] = n
        for d in changes.deliveries:
            self.dels[(d.key, d.recipient)] = d
        self.notes += [(e.key, e.kind) for e in changes.notes]
        return changes

    def run(self, *events: StatusEvent) -> None:
        for e in events:
            self.write(apply(e, self))


def _event(kind: EventKind, message_id: str, message_type: str, at_min: float = 0, **over: object) -> StatusEvent:
    fields: dict[str, object] = dict(
        event_id=f"e-{message_id}-{kind.value}", kind=kind, at=T0 + timedelta(minutes=at_min), message_id=message_id,
        message_type=message_type, agreement="CN-RU-2009", sender="CN", recipients=["RU"], launch_key="L1",
        source=RecordRef(topic="lr.CN.out", partition=0, offset=int(at_min)),
    )  # fmt: skip
    fields.update(over)
    return StatusEvent(**fields)  # type: ignore[arg-type]


def test_forward_records_the_notification_and_its_deliveries_once() -> None:
    """A forwarded notice makes one row and one pending delivery per recipient; the same event again adds none."""
    view = MemoryView()
    view.run(_forwarded(["RU"]))
    again = apply(_forwarded(["RU"]), view)
    assert list(view.rows) == ["CN/cn-1"] and [d.state for d in view.deliveries("CN/cn-1")] == [DeliveryState.PENDING]
    assert again.notifications == [] and again.deliveries == []


def test_acknowledgement_matches_the_recipients_delivery_and_records_latency() -> None:
    """RU's acknowledgement of CN's notice acknowledges RU's delivery with its latency; one from GB matches none."""
    view = MemoryView()
    view.run(_forwarded(["RU"]))
    ack = _event(EventKind.FORWARDED, "ru-ack", "acknowledgement", 5, sender="RU", recipients=["CN"],
                 refers_to="cn-1", received_at=T0 + timedelta(minutes=5))  # fmt: skip
    view.run(ack)
    (d,) = view.deliveries("CN/cn-1")
    assert d.state is DeliveryState.ACKNOWLEDGED and d.latency == timedelta(minutes=5)
    stranger = ack.model_copy(update={"sender": "GB", "message_id": "gb-ack"})
    changes = apply(stranger, view)
    assert changes.deliveries == [] and ("CN/cn-1", "acknowledgement_unmatched") in [(n.key, n.kind)
                                                                                    for n in changes.notes]  # fmt: skip


def test_cancellation_closes_the_notice_and_stops_its_pending_deliveries() -> None:
    view = MemoryView()
    view.run(_forwarded(["RU"]), _event(EventKind.FORWARDED, "cn-cancel", "cancellation", 1, refers_to="cn-1"))
    assert view.rows["CN/cn-1"].closed_by == "cancellation"
    assert [d.state for d in view.deliveries("CN/cn-1")] == [DeliveryState.STOPPED]
    assert ("CN/cn-1", "cancelled") in view.notes


def test_amendments_are_counted_on_the_notice() -> None:
    view = MemoryView()
    view.run(_forwarded(["RU"]), *[_event(EventKind.FORWARDED, f"cn-am{i}", "amendment", i, refers_to="cn-1")
                                   for i in (1, 2)])  # fmt: skip
    assert view.rows["CN/cn-1"].amended == 2 and view.notes.count(("CN/cn-1", "amended")) == 2


def test_redriven_forward_replaces_its_rejection() -> None:
    """A notice rejected, then redriven and forwarded, is one row: forwarded, with the new source and no reasons."""
    view = MemoryView()
    bad = Reason(code="KEY_UNKNOWN", message="not registered", field=None)
    view.run(_event(EventKind.REJECTED, "cn-1", "planned_launch", 0, reasons=[bad]))
    assert view.rows["CN/cn-1"].outcome == "rejected"
    view.run(_forwarded(["RU"]).model_copy(update={"source": RecordRef(topic="lr.CN.out", partition=0, offset=9)}))
    row = view.rows["CN/cn-1"]
    assert row.outcome == "forwarded" and row.reasons == () and row.source == "lr.CN.out:0:9" and len(view.rows) == 1


def test_redriven_rejection_stays_one_row_and_names_the_operator() -> None:
    """Redriven by an operator and refused again: one row with today's reasons; the timeline says who redrove it."""
    view = MemoryView()
    view.run(_event(EventKind.REJECTED, "cn-1", "planned_launch", 0,
                    reasons=[Reason(code="KEY_UNKNOWN", message="not registered", field=None)]))  # fmt: skip
    again = _event(EventKind.REJECTED, "cn-1", "planned_launch", 9,
                   reasons=[Reason(code="LEAD_TIME_TOO_SHORT", message="late", field=None)],
                   redrive_of="lr.deadletter:0:4", redriven_by="alice (op-1)")  # fmt: skip
    changes = apply(again, view)
    (note,) = changes.notes
    assert note.kind == "rejected" and note.detail["redriven_by"] == "alice (op-1)"
    view.run(again)
    assert list(view.rows) == ["CN/cn-1"]
    assert view.rows["CN/cn-1"].reasons[0][0] == "LEAD_TIME_TOO_SHORT"


def test_a_repeat_rejection_without_an_operators_mark_keeps_its_own_row() -> None:
    view = MemoryView()
    reasons = [Reason(code="LEAD_TIME_TOO_SHORT", message="late", field=None)]
    view.run(_event(EventKind.REJECTED, "cn-1", "planned_launch", 0, reasons=reasons),
             _event(EventKind.REJECTED, "cn-1", "planned_launch", 9, reasons=reasons))  # fmt: skip
    assert sorted(view.rows) == ["CN/cn-1", "record:lr.CN.out:0:9"]


def test_conflicting_rejection_keeps_the_forwarded_row() -> None:
    """A rejection that reuses a forwarded id is kept under its record's key; the forwarded row is untouched."""
    view = MemoryView()
    conflict = Reason(code="DUPLICATE_CONFLICT", message="x", field=None)
    view.run(_forwarded(["RU"]), _event(EventKind.REJECTED, "cn-1", "planned_launch", 3, reasons=[conflict]))
    assert view.rows["CN/cn-1"].outcome == "forwarded" and view.rows["record:lr.CN.out:0:3"].outcome == "rejected"


def test_retransmission_and_timeout_events_move_the_delivery() -> None:
    view = MemoryView()
    view.run(_forwarded(["RU"]), _event(EventKind.RETRANSMITTED, "cn-1", "planned_launch", 15, attempt=1),
             _event(EventKind.ACKNOWLEDGEMENT_OVERDUE, "cn-1", "planned_launch", 60))  # fmt: skip
    (d,) = view.deliveries("CN/cn-1")
    assert d.retransmits == 1 and d.state is DeliveryState.TIMED_OUT and d.timed_out_at == T0 + timedelta(hours=1)
    assert [k for _, k in view.notes] == ["forwarded", "retransmitted", "timed_out"]


def test_policy_travels_with_the_forward() -> None:
    """The re-send policy is the one in the forwarded event, whatever the config says later."""
    (d,) = deliveries_for(_forwarded(["RU"], every_s=120.0))
    assert d.every == timedelta(minutes=2) and d.max_retransmits == 3
    (none,) = deliveries_for(_forwarded(["RU"], every_s=None))
    assert none.every is None and none.max_retransmits == 0 and none.next_retransmit_at is None


# --- reports owed after the launch (CN-RU 2009), and expiry ------------------------------------------

REPORT_DUE = T0 + timedelta(days=6)


def _with_report() -> StatusEvent:
    return _forwarded(["RU"]).model_copy(update={"report_due_at": REPORT_DUE, "expires_at": T0 + timedelta(days=5)})


def test_planned_launch_under_a_reporting_agreement_owes_a_report() -> None:
    """CN-RU 2009: reports of completed launches are required: the sender owes one by the due time; no re-sends."""
    acks, report = sorted(deliveries_for(_with_report()), key=lambda d: d.kind.value)
    assert acks.kind is DeliveryKind.ACK and acks.recipient == "RU"
    assert report.kind is DeliveryKind.REPORT and report.recipient == "CN" and report.deadline_at == REPORT_DUE
    assert report.next_retransmit_at is None and due([report], REPORT_DUE) == [Timeout(report)]
    assert action_id(Timeout(report)) != action_id(Timeout(acks))


def test_report_closes_what_is_owed_and_its_absence_is_overdue_once() -> None:
    """A completed (or not-launched) report stops the report deadline; without one, the overdue event marks it."""
    reported = MemoryView()
    reported.run(_with_report(), _event(EventKind.FORWARDED, "cn-rep", "completed_launch", 9, refers_to="cn-1",
                                        outcome="not_launched"))  # fmt: skip
    assert {d.kind: d.state for d in reported.deliveries("CN/cn-1")}[DeliveryKind.REPORT] is DeliveryState.STOPPED
    assert overall_state(reported.rows["CN/cn-1"], reported.deliveries("CN/cn-1")) == "not_launched"
    silent = MemoryView()
    ack = _event(EventKind.FORWARDED, "ru-ack", "acknowledgement", 5, sender="RU", recipients=["CN"],
                 refers_to="cn-1", received_at=T0 + timedelta(minutes=5))  # fmt: skip
    silent.run(_with_report(), ack)
    n, ds = silent.rows["CN/cn-1"], silent.deliveries("CN/cn-1")
    assert overall_state(n, ds, T0 + timedelta(days=1)) == "acknowledged"
    assert overall_state(n, ds, T0 + timedelta(days=5)) == "expired"  # past the window: nothing but the report
    silent.run(_event(EventKind.REPORT_OVERDUE, "cn-1", "planned_launch", 9000, recipients=["CN"]))
    assert overall_state(silent.rows["CN/cn-1"], silent.deliveries("CN/cn-1"), REPORT_DUE) == "report_overdue"


def test_amendment_moves_the_notice_and_its_report() -> None:
    """An amendment updates the notice as it stands (its window, expiry) and moves the report due after it."""
    view = MemoryView()
    view.run(_with_report(), _event(EventKind.FORWARDED, "cn-am", "amendment", 1, refers_to="cn-1", changed=["window"],
                                    notice={"window": "moved"}, expires_at=T0 + timedelta(days=7),
                                    report_due_at=T0 + timedelta(days=8)))  # fmt: skip
    row = view.rows["CN/cn-1"]
    assert row.amended == 1 and row.notice == {"window": "moved"} and row.expires_at == T0 + timedelta(days=7)
    (report,) = [d for d in view.deliveries("CN/cn-1") if d.kind is DeliveryKind.REPORT]
    assert report.deadline_at == T0 + timedelta(days=8)
