"""The agreements judged in full, live: notices as amended, post-launch reports owed, notices that expire.

Real relay and tracker processes on the real broker. Some lead times and report deadlines are shortened by
config (as any preset value may be) so that what takes days under the texts takes seconds here; the rules
themselves are the presets'.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness import Deploy, RelayProcess, cli, make_deploy, message, read_topic
from launchrelay.clients.publisher import Publisher
from launchrelay.contract.codec import decode
from launchrelay.contract.messages import PartyMessage

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="module")]

SHORT = """
[agreements.US-RU-1988]
min_lead = "PT10S"

[agreements.CN-RU-2009]
min_lead = "PT10S"
report_due = "PT3S"
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deploy(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deploy]:
    d = await make_deploy(kafka_bootstrap, tmp_path_factory.mktemp("agreements"), extra_config=SHORT)
    relay = RelayProcess(d, "relay-agreements").start()
    try:
        await relay.wait("relay.partitions_assigned")
        yield d
    finally:
        relay.ensure_stopped()


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def follow(kind: str, notice: PartyMessage, **fields: Any) -> PartyMessage:
    data = {k: getattr(notice, k) for k in ("agreement", "sender", "recipients", "launch_key")}
    data |= {"message_type": kind, "message_id": f"{notice.message_id}-{kind}", "refers_to": notice.message_id,
             "created_at": _iso(datetime.now(UTC) - timedelta(seconds=1)), **fields}  # fmt: skip
    return decode(json.dumps(data, default=str))  # type: ignore[return-value]


def publisher(d: Deploy, party: str) -> Publisher:
    return Publisher(d.bootstrap, party, d.signers[party], topic_prefix=d.prefix)


async def test_in_pk_amendment_across_the_boundary_is_rejected(deploy: Deploy) -> None:
    """IN-PK 2005 art. 5-6: an amendment moving the impact area 200 km across the boundary is judged with the
    notice as it stands (its launch area included) and refused; PK never sees it."""
    circle = {"kind": "circle", "centre": {"lat": 25.0, "lon": 73.0}, "radius": 10, "unit": "km"}
    notice = message("IN", ["PK"], "IN-PK-2005", lead=timedelta(days=4), impact_areas=[circle])
    across = {**circle, "centre": {"lat": 25.0, "lon": 77.0}}
    moved = follow("amendment", notice, impact_areas=[across])
    async with publisher(deploy, "IN") as pub:
        assert (await pub.publish_and_wait(notice, 45)).outcome == "forwarded"
        receipt = await pub.publish_and_wait(moved, 45)
    assert receipt.outcome == "rejected"
    assert {r.code for r in receipt.reasons} == {"WRONG_SIDE_OF_BOUNDARY", "TRAJECTORY_CROSSES_BOUNDARY"}

    def has_notice(rs: list[Any]) -> bool:
        return any(json.loads(r.value).get("message_id") == notice.message_id for r in rs)

    pk = await read_topic(deploy.bootstrap, deploy.topics.inbound("PK"), has_notice)
    assert moved.message_id not in [json.loads(r.value).get("message_id") for r in pk]


async def test_us_ru_1988_postponement_inside_validity_is_forwarded(deploy: Deploy) -> None:
    """US-USSR 1988: a postponement within the notice's four days of validity needs no new notice, so no new lead
    time (10 s here); the same postponement under CN-RU 2009 needs it ([I] the text says nothing of changes)."""
    outcomes = {}
    for sender, other, agreement in (("US", "RU", "US-RU-1988"), ("CN", "RU", "CN-RU-2009")):
        start = datetime.now(UTC) + timedelta(seconds=11.5)
        notice = message(
            sender, [other], agreement, window={"start": _iso(start), "end": _iso(start + timedelta(hours=1))}
        )
        async with publisher(deploy, sender) as pub:
            assert (await pub.publish_and_wait(notice, 45)).outcome == "forwarded"
            # wait until the window is under the 10 s lead away, then postpone it by a second (inside the four days)
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() - 8.0))
            later = {"start": _iso(start + timedelta(seconds=1)), "end": _iso(start + timedelta(hours=2))}
            outcomes[agreement] = await pub.publish_and_wait(follow("amendment", notice, window=later), 45)
    assert outcomes["US-RU-1988"].outcome == "forwarded"
    assert [r.code for r in outcomes["CN-RU-2009"].reasons] == ["LEAD_TIME_TOO_SHORT"]


async def test_missing_report_alerts_once_across_a_tracker_kill(deploy: Deploy) -> None:
    """CN-RU 2009: reports of completed launches are required. A notice whose report never comes is alerted to CN
    exactly once although the tracker is SIGKILLed around the due time; one reported not launched is not."""
    tracker = RelayProcess(deploy, "tracker-reports", command="tracker").start()
    try:
        await tracker.wait("tracker.started")
        start = datetime.now(UTC) + timedelta(seconds=11)
        window = {"start": _iso(start), "end": _iso(start + timedelta(seconds=2))}
        silent = message("CN", ["RU"], window=window)
        reported = message("CN", ["RU"], window=window)
        async with publisher(deploy, "CN") as cn:
            for m in (silent, reported):
                assert (await cn.publish_and_wait(m, 45)).outcome == "forwarded"
            not_launched = follow("completed_launch", reported, outcome="not_launched", reason={"en": "called off"})
            assert (await cn.publish_and_wait(not_launched, 45)).outcome == "forwarded"
        due = start + timedelta(seconds=2 + 3)
        await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 0.5))  # the kill lands at the due time
        tracker.kill()
        await asyncio.sleep(2)
        tracker.start()
        await tracker.wait("tracker.started")

        def overdue(rs: list[Any]) -> list[dict[str, Any]]:
            bodies = [json.loads(r.value) for r in rs]
            return [b for b in bodies if b.get("outcome") == "report_overdue"]

        cn_in = await read_topic(deploy.bootstrap, deploy.topics.inbound("CN"), lambda rs: len(overdue(rs)) >= 1)
        await asyncio.sleep(3)  # a second alert, if the restarted tracker fired again, would be here by now
        cn_in = await read_topic(deploy.bootstrap, deploy.topics.inbound("CN"), lambda rs: True)
        alerts = overdue(cn_in)
        assert [a["refers_to"] for a in alerts] == [silent.message_id]
        status = json.loads(cli(deploy.env("status"), "status", "--json").stdout)
        states = {row["id"]: row["state"] for row in status}
        assert states[silent.message_id] == "report_overdue" and states[reported.message_id] == "not_launched"
    finally:
        tracker.ensure_stopped()


async def test_expired_notice_is_listed_as_expired(deploy: Deploy, tmp_path: Path) -> None:
    """A notice past its window (and validity) is listed as expired by `launchrelay status`."""
    tracker = RelayProcess(deploy, "tracker-expiry", command="tracker",
                           extra_env={"LAUNCHRELAY_LEDGER": str(tmp_path / "ledger.sqlite")}).start()  # fmt: skip
    try:
        await tracker.wait("tracker.started")
        now = datetime.now(UTC)
        notice = message("FR", ["AT", "GB"], "HCOC", window={"start": _iso(now + timedelta(seconds=2)),
                                                             "end": _iso(now + timedelta(seconds=4))})  # fmt: skip
        async with publisher(deploy, "FR") as fr:
            assert (await fr.publish_and_wait(notice, 45)).outcome == "forwarded"
        env = deploy.env("status") | {"LAUNCHRELAY_LEDGER": str(tmp_path / "ledger.sqlite")}

        async def state() -> str | None:
            rows = json.loads((await asyncio.to_thread(cli, env, "status", "--json")).stdout or "[]")
            return next((r["state"] for r in rows if r["id"] == notice.message_id), None)

        async with asyncio.timeout(60):
            while (got := await state()) != "expired":
                assert got in (None, "pending"), got
                await asyncio.sleep(0.5)
    finally:
        tracker.ensure_stopped()
