"""Dead letters, listed and redriven by an operator, with a real relay and tracker.

The relay's config has CN-RU's lead time set wrong (7 days instead of 24
hours), so a good notice is rejected. The operator lists the dead letters,
fixes the config, restarts the relay and redrives the notice: it is
forwarded once, the tracker's ledger moves it from rejected to pending, and a
second redrive is a duplicate that forwards nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import Deploy, RelayProcess, cli, hdr, ledger_state, make_deploy, message, read_topic
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import encode

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

WRONG = '[agreements.CN-RU-2009]\nmin_lead = "P7D"\n'


def ops(deploy: Deploy, *args: str) -> str:
    """An operator's command against this deployment; it must succeed."""
    done = cli(deploy.env("ops"), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def copies_for_ru(deploy: Deploy, message_id: str, at_least: int = 1) -> int:
    """How many forwards of ``message_id`` RU has; each must carry the sender's headers, not the redrive mark."""

    def mine(rs: list[Any]) -> list[Any]:
        return [r for r in rs if json.loads(r.value).get("message_id") == message_id]

    got = mine(await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"), lambda rs: len(mine(rs)) >= at_least))
    assert all(hdr(r, "lr-redrive") is None and hdr(r, "lr-signature") for r in got)
    return len(got)


@pytest.fixture
def deploy(kafka_bootstrap: str, tmp_path: Path) -> Deploy:
    return asyncio.run(make_deploy(kafka_bootstrap, tmp_path, extra_config=WRONG))


@pytest.fixture
def relay_and_tracker(deploy: Deploy) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    relay = RelayProcess(deploy, "relay-rd").start()
    tracker = RelayProcess(deploy, "tracker-rd", command="tracker").start()
    try:
        relay.wait_for("relay.started")
        tracker.wait_for("tracker.started")
        yield relay, tracker
    finally:
        relay.ensure_stopped()
        tracker.ensure_stopped()


async def test_redrive_after_fixing_the_config(
    deploy: Deploy, relay_and_tracker: tuple[RelayProcess, RelayProcess]
) -> None:
    relay, _ = relay_and_tracker
    notice = message("CN", ["RU"])
    raw = encode(notice)
    cn = Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix)
    async with cn:
        first = await cn.publish_and_wait(notice, 45)
        assert first.outcome == "rejected" and [r.code for r in first.reasons] == ["LEAD_TIME_TOO_SHORT"]
        # The same bytes again, not a redrive: a duplicate, not a second decision.
        await cn.publish_raw(raw, notice.launch_key.encode(), deploy.signers["CN"].headers(raw))
        assert (await cn.wait_receipt(notice.message_id, 45)).outcome == "duplicate"

    listed = json.loads(ops(deploy, "deadletters", "--json", "--reason", "LEAD_TIME_TOO_SHORT"))
    (row,) = [r for r in listed if r["message_id"] == notice.message_id]
    assert row["sender"] == "CN" and row["source"].startswith(deploy.topics.outbound("CN") + ":")
    table = ops(deploy, "deadletters", "--sender", "CN")
    assert row["ref"] in table and "LEAD_TIME_TOO_SHORT" in table and "DUPLICATE" in table

    # The operator fixes the config and restarts the relay.
    deploy.config.write_text(deploy.config.read_text().replace(WRONG, ""))
    assert relay.terminate() == 0
    relay.start().wait_for("relay.started")

    async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as watch:
        out = ops(deploy, "redrive", row["ref"])
        assert out.startswith(f"{deploy.topics.deadletter}:{row['ref']} -> {deploy.topics.outbound('CN')}:")
        second = await watch.wait_receipt(notice.message_id, 45)
    assert second.outcome == "forwarded" and second.forwarded_to == ["RU"]
    assert await copies_for_ru(deploy, notice.message_id) == 1
    commits = [e for e in relay.events_since_last_spawn() if e.get("event") == "relay.committed"]
    assert [ref for e in commits for ref in e.get("redrive_of", [])] == [f"{deploy.topics.deadletter}:{row['ref']}"]
    assert [who for e in commits for who in e.get("redriven_by", [])] == ["watch-test (operator-test)"]
    assert notice.message_id in [m for e in commits for m in e["message_ids"]]

    # The tracker now awaits RU's acknowledgement for it.
    async with asyncio.timeout(45):
        while ledger_state(deploy, notice.message_id) != "pending":
            await asyncio.sleep(0.3)

    # Redriving it again forwards nothing: the relay answers duplicate.
    async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as watch:
        ops(deploy, "redrive", row["ref"])
        assert (await watch.wait_receipt(notice.message_id, 45)).outcome == "duplicate"
    again = json.loads(ops(deploy, "deadletters", "--json", "--reason", "DUPLICATE"))
    assert [r["redrive_of"] for r in again if r["message_id"] == notice.message_id].count(
        f"{deploy.topics.deadletter}:{row['ref']}"
    ) == 1
    assert await copies_for_ru(deploy, notice.message_id) == 1
    assert ledger_state(deploy, notice.message_id) == "pending"


def test_unknown_dead_letter_is_named(deploy: Deploy) -> None:
    done = cli(deploy.env("ops"), "redrive", "0:999")
    assert done.returncode == 2 and "no dead letter 0:999" in done.stderr
