"""The relay forgets ids past their time, safely: out of memory, tombstoned on the state topic, and a replay
of a forgotten message refused by its age (CREATED_AT_TOO_OLD), never forwarded twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from harness import Deploy, hdr, make_deploy, message, read_topic
from launchrelay.agreements.config import load_config
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import encode
from launchrelay.relay.metrics import RelayMetrics
from launchrelay.relay.service import RelayOptions, RelayService
from test_stall import running

pytestmark = pytest.mark.kafka

REMEMBER_FOR_S = 2


@contextlib.asynccontextmanager
async def relay(d: Deploy, relay_id: str) -> AsyncIterator[RelayService]:
    """An in-process relay that sweeps for ids to forget every half second, run as test_stall runs services."""
    options = RelayOptions(bootstrap=d.bootstrap, relay_id=relay_id, signer=d.relay_signer, forget_every_s=0.5,
                           watch_every_s=0.5)  # fmt: skip
    service = RelayService(load_config(d.config), options, RelayMetrics())
    async with running(service, service.metrics.registry):
        yield service


async def test_an_acknowledgement_forgotten_and_replayed_is_refused_and_not_forwarded_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """RU's acknowledgement is remembered for remember_for past its receipt, then forgotten (a tombstone, so a
    restarted relay does not read it back); its replay is CREATED_AT_TOO_OLD and CN holds one copy. CN's notice,
    whose window is days away, is still remembered: its replay is a duplicate."""
    d = await make_deploy(kafka_bootstrap, tmp_path, partitions=1)
    # remembered for 2 s; the sweep allows the clock tolerance (created_at_skew) on top, 1 s here
    short = f'[relay]\nremember_for = "PT{REMEMBER_FOR_S}S"\ncreated_at_skew = "PT1S"\n'
    d.config.write_text(d.config.read_text().replace("[relay]\n", short, 1))
    notice = message("CN", ["RU"])
    ack = message("RU", ["CN"], message_type="acknowledgement", refers_to=notice.message_id,
                  launch_key=notice.launch_key)  # fmt: skip
    ack_bytes = encode(ack)
    with capture_logs() as logs:
        async with relay(d, "relay-forget") as first:
            async with Publisher(d.bootstrap, "CN", d.signers["CN"], topic_prefix=d.prefix) as cn:
                assert (await cn.publish_and_wait(notice, 60)).outcome == "forwarded"
            async with Publisher(d.bootstrap, "RU", d.signers["RU"], topic_prefix=d.prefix) as ru:
                assert (await ru.publish_and_wait(ack, 60)).outcome == "forwarded"
            assert first.state.get("RU", ack.message_id) is not None
            async with asyncio.timeout(30):  # remember_for past its receipt, then the next sweep
                while first.state.get("RU", ack.message_id) is not None:
                    await asyncio.sleep(0.2)
            assert first.state.get("CN", notice.message_id) is not None
    forgotten = [e for e in logs if e["event"] == "relay.forgotten"]
    assert forgotten and forgotten[0]["ids"] >= 1

    async with relay(d, "relay-forget-2") as second:  # a restart reads the tombstone, not the acknowledgement
        assert second.state.get("RU", ack.message_id) is None
        assert second.state.get("CN", notice.message_id) is not None
        async with Publisher(d.bootstrap, "RU", d.signers["RU"], topic_prefix=d.prefix) as ru:
            await ru.publish_raw(ack_bytes, ack.launch_key.encode(), d.signers["RU"].headers(ack_bytes))
            replayed = await ru.wait_receipt(ack.message_id, 60)
        assert replayed.outcome == "rejected" and [r.code for r in replayed.reasons] == ["CREATED_AT_TOO_OLD"]
        async with Publisher(d.bootstrap, "CN", d.signers["CN"], topic_prefix=d.prefix) as cn:
            value = encode(notice)
            await cn.publish_raw(value, notice.launch_key.encode(), d.signers["CN"].headers(value))
            assert (await cn.wait_receipt(notice.message_id, 60)).outcome == "duplicate"

    def acks(records: list[Any]) -> list[Any]:
        return [r for r in records if json.loads(r.value).get("message_id") == ack.message_id]

    on_cn = acks(await read_topic(d.bootstrap, d.topics.inbound("CN"), lambda rs: len(acks(rs)) >= 1))
    assert len(on_cn) == 1 and hdr(on_cn[0], "lr-signature")
