"""Upgrade without loss: from the previous release to this one, on the same topics and ledger.

The previous release is built from its commit (tag ``v0.1.0``; the commit is named too, so a clone without
tags still finds it) into a virtualenv of its own, cached. It makes the topics and runs two relays and the
tracker while CN publishes and RU acknowledges half of what it receives. Then, traffic going on:

1. **a rolling upgrade**: one relay is replaced by this release's while the other (the previous release's)
   keeps working, both in one consumer group, reading each other's state and transactions;
2. **stop and start**: the other relay and the tracker are replaced by this release's, on the same ledger.

Every notice reaches RU exactly once; the acknowledged are acknowledged in the ledger; those never acknowledged
time out at the deadline the previous release's tracker recorded (after the upgrade, by this release's
tracker); every notice's story keeps its forward.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from harness import (
    Deploy,
    RelayProcess,
    assert_forwarded_once,
    deploy_config,
    ledger_view,
    message,
    read_forwards,
)
from launchrelay.clients import Inbox, InboxItem, Publisher
from launchrelay.contract.messages import PartyMessage
from launchrelay.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = ("v0.1.0", "ffd50ca4733f5b19f39e37fe388dad3c552a2f7c")
DEADLINE_S = 60


def previous_release() -> Path:
    """The previous release's interpreter: its source from git, its locked dependencies, in its own venv."""
    tag, commit = PREVIOUS
    home = Settings().cache_dir / "releases" / f"{tag}-{commit[:12]}"
    python = home / "venv" / "bin" / "python"
    if (home / "installed").exists():
        return python
    src = home / "src"
    src.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(home / "venv")], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(src / "requirements.lock")], check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", str(src)], check=True, timeout=300)
    (home / "installed").write_text(commit)
    return python


@pytest.fixture(scope="module")
def previous_python() -> str:
    return str(previous_release())


async def publish(pub: Publisher, notices: list[PartyMessage]) -> None:
    for m in notices:
        await pub.publish(m, timeout_s=20)
        await asyncio.sleep(0.05)


async def test_upgrade_rolling_then_stop_and_start_loses_nothing(
    kafka_bootstrap: str, tmp_path: Path, previous_python: str
) -> None:
    extra = f'[agreements.CN-RU-2009]\nack_deadline = "PT{DEADLINE_S}S"\n'
    deploy: Deploy = deploy_config(kafka_bootstrap, tmp_path / "deploy", extra_config=extra)
    made = subprocess.run([previous_python, "-m", "launchrelay", "topics", "create"], env=deploy.env("topics"),
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    old = [RelayProcess(deploy, f"relay-old-{n}", python=previous_python).start() for n in "ab"]
    tracker = RelayProcess(deploy, "tracker-old", command="tracker", python=previous_python).start()
    new: list[RelayProcess] = []
    try:
        for p in old:
            await p.wait("relay.partitions_assigned", 90)
        await tracker.wait("tracker.started", 90)
        batches = [[message("CN", ["RU"], lead=timedelta(days=4)) for _ in range(40)] for _ in range(3)]
        notices = [m for b in batches for m in b]
        answered = {m.message_id for i, m in enumerate(notices) if i % 2 == 0}
        ru_key, cn_key = deploy.signers["RU"], deploy.signers["CN"]
        stop = asyncio.Event()
        acked: set[str] = set()
        async with Inbox(deploy.bootstrap, "RU", ru_key, topic_prefix=deploy.prefix,
                         sender_keys={"CN": {cn_key.key_id: cn_key.private_key.public_key()}},
                         relay_keys={"relay-test": deploy.relay_signer.private_key.public_key()}) as ru:  # fmt: skip

            async def answer(item: InboxItem) -> None:
                if item.message.message_id in answered and not item.retransmission:
                    await ru.acknowledge(item.message)  # type: ignore[arg-type]
                    acked.add(item.message.message_id)

            reading = asyncio.create_task(ru.run(answer, stop))
            async with Publisher(deploy.bootstrap, "CN", cn_key, topic_prefix=deploy.prefix,
                                 watch_receipts=False) as cn:  # fmt: skip
                await publish(cn, batches[0])
                # 1. rolling: relay b becomes this release's while the previous release's relay a goes on
                old[1].terminate()
                new.append(RelayProcess(deploy, "relay-new-b").start())
                await new[-1].wait("relay.partitions_assigned", 90)
                await publish(cn, batches[1])
                # 2. stop and start: relay a and the tracker become this release's, on the same ledger
                old[0].terminate()
                tracker.terminate()
                new.append(RelayProcess(deploy, "relay-new-a").start())
                tracker = RelayProcess(deploy, "tracker-new", command="tracker")
                tracker.start()
                await new[-1].wait("relay.partitions_assigned", 90)
                await tracker.wait("tracker.started", 90)
                await publish(cn, batches[2])
            for _ in range(600):
                if answered <= acked:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            await reading
        assert answered <= acked

        ids = {m.message_id for m in notices}
        forwards = await read_forwards(deploy.bootstrap, deploy.topics.inbound("RU"), ids)
        assert_forwarded_once(forwards, ids)  # across the upgrade

        def states() -> dict[str, str | None]:
            return {i: (ledger_view(deploy, i) or {}).get("state") for i in ids}

        deadline = asyncio.get_running_loop().time() + DEADLINE_S + 60
        want = {i: ("acknowledged" if i in answered else "overdue") for i in ids}
        while states() != want and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(1)
        got = states()
        assert got == want, {i: (got[i], want[i]) for i in ids if got[i] != want[i]}
        # the previous release's tracker recorded the first batch's deadlines; this release's kept them
        timed_out = {
            e.get("message_id") for e in tracker.events() if e.get("event") == "tracker.acknowledgement_overdue"
        }
        assert {m.message_id for m in batches[0]} - answered <= timed_out
        for i in ids:
            view = ledger_view(deploy, i)
            assert view is not None and "forwarded" in [e["event"] for e in view["timeline"]], view
    finally:
        for p in (*old, *new, tracker):
            p.ensure_stopped()
