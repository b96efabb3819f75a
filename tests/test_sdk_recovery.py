"""The SDKs recover by themselves: one Publisher and one Inbox, never replaced, across a broker stopped and started
and a broker frozen (SIGSTOP) past every client timeout. Every notice is confirmed (retried by the caller after a
clear error), forwarded exactly once and acknowledged; the relay answers any repeat ``duplicate``."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from harness import (
    Deploy,
    RelayProcess,
    assert_forwarded_once,
    make_deploy,
    message,
    read_forwards,
    read_topic,
    source_of,
)
from launchrelay.clients import Inbox, InboxItem, Publisher
from launchrelay.clients._producer import discard
from launchrelay.contract.messages import PartyMessage, PlannedLaunch
from launchrelay.errors import PublishError, PublishRefused
from launchrelay.provision.local import LocalBroker, free_port
from launchrelay.signing import public_key_from_b64

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

#: every client timeout short, so a freeze of a few seconds outlasts them all
FAST = {"request_timeout_ms": 4000, "retry_backoff_ms": 100}
DEADLINE_S = 4.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    b = LocalBroker(tmp_path_factory.mktemp("kafka-sdk"), port=free_port(), controller_port=free_port())
    b.start()
    try:
        yield b
    finally:
        if b.pid is not None:
            os.kill(b.pid, signal.SIGCONT)
        b.stop()


async def publish_until_confirmed(pub: Publisher, m: PartyMessage, errors: Counter[str]) -> None:
    """What a planning system does: publish, and on a retriable error publish the same message again."""
    while True:
        try:
            await pub.publish(m, timeout_s=DEADLINE_S)
            return
        except PublishRefused:
            raise
        except PublishError as exc:
            assert exc.retriable, exc
            assert "publishing it again is safe" in str(exc), f"not a clear error: {exc}"
            errors[type(exc).__name__] += 1
            await asyncio.sleep(0.2)


async def exchange_through(broker: LocalBroker, deploy: Deploy, fault: Callable[[], Awaitable[None]]) -> None:
    """CN publishes 20 notices a second while ``fault`` runs; RU's Inbox acknowledges each. Then every notice was
    forwarded once and acknowledged, with the same Publisher and Inbox objects throughout."""
    relay = RelayProcess(deploy, f"relay-{fault.__name__}").start()
    errors: Counter[str] = Counter()
    notices = [message("CN", ["RU"]) for _ in range(260)]
    acked: set[str] = set()
    try:
        await relay.wait("relay.partitions_assigned")
        cn = Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix,
                       watch_receipts=False, client_options=FAST)  # fmt: skip
        cn_key, relay_key = deploy.signers["CN"], deploy.relay_signer
        ru = Inbox(deploy.bootstrap, "RU", deploy.signers["RU"], topic_prefix=deploy.prefix, client_options=FAST,
                   sender_keys={"CN": {cn_key.key_id: public_key_from_b64(cn_key.public_b64)}},
                   relay_keys={relay_key.key_id: public_key_from_b64(relay_key.public_b64)})  # fmt: skip
        await cn.start()
        await ru.start()
        stop = asyncio.Event()

        async def acknowledge(item: InboxItem) -> None:
            if isinstance(item.message, PlannedLaunch) and item.message.message_id not in acked:
                while True:
                    try:
                        await ru.acknowledge(item.message)
                        break
                    except PublishError as exc:
                        assert exc.retriable, exc
                        errors["ack " + type(exc).__name__] += 1
                acked.add(item.message.message_id)

        reading = asyncio.create_task(ru.run(acknowledge, stop))

        async def publishing() -> None:
            for m in notices:
                await publish_until_confirmed(cn, m, errors)
                await asyncio.sleep(0.05)

        writer = asyncio.create_task(publishing())
        await asyncio.sleep(3)
        await fault()
        await asyncio.wait_for(writer, 240)
        ids = {m.message_id for m in notices}
        deadline = asyncio.get_running_loop().time() + 120
        while not ids <= acked:
            assert asyncio.get_running_loop().time() < deadline, f"{len(ids - acked)} notices never acknowledged"
            assert not reading.done(), reading
            await asyncio.sleep(0.5)
        stop.set()
        await reading
        assert cn._producer.generation > 1, "the fault must have made the publisher replace its producer"
        await cn.stop()
        await ru.stop()

        forwards = await read_forwards(deploy.bootstrap, deploy.topics.inbound("RU"), ids)
        assert_forwarded_once(forwards, ids, only=True)
        acks = await read_topic(
            deploy.bootstrap, deploy.topics.inbound("CN"),
            lambda rs: ids <= {json.loads(r.value).get("refers_to") for r in rs if source_of(r)}, timeout_s=120,
        )  # fmt: skip
        assert ids <= {json.loads(r.value).get("refers_to") for r in acks if source_of(r)}
        assert relay.proc is not None and relay.proc.poll() is None
        print(f"{fault.__name__}: errors the caller saw and retried: {dict(errors)}; "
              f"producers: {cn._producer.generation}")  # fmt: skip
    finally:
        relay.ensure_stopped()


async def test_one_publisher_and_inbox_across_a_broker_restart(broker: LocalBroker, tmp_path: Path) -> None:
    """The broker is stopped for 10 s and started again under a steady publisher: the same Publisher and Inbox
    go on by themselves; every notice is confirmed, forwarded once and acknowledged."""
    deploy = await make_deploy(broker.bootstrap, tmp_path)

    async def restart() -> None:
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(10)
        await asyncio.to_thread(broker.start)

    await exchange_through(broker, deploy, restart)


async def test_one_publisher_and_inbox_across_a_frozen_broker(broker: LocalBroker, tmp_path: Path) -> None:
    """The broker is frozen (SIGSTOP) for 10 s, two and a half times the clients' request timeout and the publisher's
    deadline: the same Publisher and Inbox go on when it thaws, nothing lost, nothing forwarded twice."""
    deploy = await make_deploy(broker.bootstrap, tmp_path)

    async def freeze() -> None:
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(10)
        finally:
            os.kill(broker.pid, signal.SIGCONT)

    await exchange_through(broker, deploy, freeze)


async def test_a_spent_producer_is_discarded_while_the_broker_is_frozen(broker: LocalBroker, tmp_path: Path) -> None:
    """discard() gives up a batch the frozen broker will not confirm (aiokafka's stop() alone would wait for it
    without end) and returns within its grace; it relies on a private name of aiokafka's, pinned here."""
    deploy = await make_deploy(broker.bootstrap, tmp_path)
    topic = deploy.topics.outbound("CN")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"x", key=b"k")  # the producer knows the topic's leader now
        assert callable(getattr(producer._message_accumulator, "fail_all", None))
        assert isinstance(producer._message_accumulator._batches, dict)
        assert hasattr(producer._message_accumulator, "_pending_batches")
        assert isinstance(producer.client._conns, dict)
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            pending = await producer.send(topic, b"y", key=b"k")
            started = asyncio.get_running_loop().time()
            await discard(producer, grace_s=0.5)
            assert asyncio.get_running_loop().time() - started < 4
            assert pending.done()
            assert not any(c.connected() for c in producer.client._conns.values()), "a connection left open"
            # the batch given up was retrieved: nothing logs "Future exception was never retrieved" later
            unretrieved: list[dict[str, Any]] = []
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
            try:
                del pending
                gc.collect()
                await asyncio.sleep(0)
            finally:
                loop.set_exception_handler(None)
            assert unretrieved == []
        finally:
            os.kill(broker.pid, signal.SIGCONT)
    finally:
        await discard(producer, grace_s=5)  # a no-op when the test got that far
