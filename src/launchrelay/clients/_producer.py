"""An idempotent producer that replaces itself when aiokafka's can no longer go on.

aiokafka's idempotent producer numbers each partition's batches. A batch that
fails or expires (no leader for longer than ``request_timeout_ms``, a broker
frozen past every timeout, an outage that outlived the caller's deadline)
leaves a gap the broker will not accept: every later batch is refused
``OutOfOrderSequenceNumber`` and the producer's background sender dies with it.
The broker may also forget the producer's id (``UnknownProducerId`` after
``producer.id.expiration.ms``) or fence its epoch. Each of these is permanent
for that producer object, so a planning system would stop notifying until
its process is replaced.

Here any send that did not end in the broker's confirmation marks the producer
*spent*; the next send first discards it (giving what it still holds a short
grace to be delivered) and starts a new one, which gets a new producer id and
fresh sequence numbers. Replacing is lazy, so nothing is attempted while the
broker is away except by a caller who asked to publish, and always within that
caller's deadline.

Replacing can write a record twice: a batch the old producer sent may have been
appended although its answer never came. The relay answers the repeat with a
``duplicate`` receipt and forwards nothing, which is why publishing the same
message again is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerClosed,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from aiokafka.structs import RecordMetadata

from launchrelay.kafka.clients import started

log = structlog.get_logger("launchrelay.producer")

#: errors about the record or the caller's rights, not the producer's state: trying again cannot help
FINAL_ERRORS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    InvalidTopicError,
)

#: how long a spent producer may go on delivering what it holds before it is given up
DISCARD_GRACE_S = 1.0


async def discard(producer: AIOKafkaProducer, grace_s: float = DISCARD_GRACE_S) -> None:
    """Stop ``producer``; batches it cannot deliver within ``grace_s`` fail with ``ProducerClosed``.

    ``AIOKafkaProducer.stop()`` first waits for every batch to be delivered, without end while the
    broker is away (an idempotent producer never gives a batch up). Failing what it still holds lets
    the stop finish; ``tests/test_sdk_recovery.py`` holds the private name to aiokafka's."""
    stopping = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait({stopping}, timeout=grace_s)
    if not done:
        accumulator = producer._message_accumulator  # private: no public way to give up
        given_up = [f for b in _batches_of(accumulator) for f, _ in b._msg_futures]
        accumulator.fail_all(ProducerClosed())
        for future in given_up:  # their senders stopped waiting (a bounded publish): retrieved here, so asyncio
            if future.done() and not future.cancelled():  # does not log "exception was never retrieved" at exit
                future.exception()
        done, _ = await asyncio.wait({stopping}, timeout=1.0)
    if not done:
        # closing its connections waits for a peer that does not answer: close them at once instead, so none
        # is left open (and none warns when collected)
        stopping.cancel()
        for conn in list(producer.client._conns.values()):  # private, pinned with the name above
            with contextlib.suppress(Exception):
                conn.close()
    with contextlib.suppress(BaseException):
        await stopping


class RenewingProducer:
    """An idempotent ``acks=all`` producer, replaced by a fresh one after any send that failed or timed out."""

    def __init__(self, factory: Callable[[], AIOKafkaProducer], *, name: str) -> None:
        self._factory = factory
        self._name = name
        self._producer: AIOKafkaProducer | None = None
        self._spent = False
        self._lock = asyncio.Lock()
        #: how many producers this object has started (the first included)
        self.generation = 0

    async def start(self) -> None:
        async with self._lock:
            await self._renew()

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await discard(self._producer, grace_s=10.0)
                self._producer = None

    async def _renew(self) -> AIOKafkaProducer:
        old, self._producer = self._producer, None
        if old is not None:
            await discard(old)
        producer = await started(self._factory())
        self._producer, self._spent = producer, False
        self.generation += 1
        if self.generation > 1:
            log.info("producer.replaced", client=self._name, generation=self.generation)
        return producer

    async def _current(self) -> AIOKafkaProducer:
        async with self._lock:
            producer = self._producer
            if producer is None or self._spent or _sender_dead(producer):
                producer = await self._renew()
            return producer

    def _mark_spent(self, producer: AIOKafkaProducer, why: BaseException) -> None:
        if producer is self._producer and not self._spent:
            self._spent = True
            log.info("producer.spent", client=self._name, generation=self.generation, error=repr(why)[:200])

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None, headers: Any) -> RecordMetadata:
        """Send one record and wait for the broker's confirmation (the caller bounds the wait).

        Raises what aiokafka raises; whatever the outcome other than a confirmation or a final
        error about the record itself, the producer is replaced before the next send."""
        producer = await self._current()
        try:
            return await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except FINAL_ERRORS:
            raise
        except BaseException as exc:  # a timeout (cancelled), a lost batch, a dead sender: start afresh next time
            self._mark_spent(producer, exc)
            raise


def _batches_of(accumulator: Any) -> list[Any]:
    """The batches aiokafka's accumulator still holds (private names, pinned with ``discard``'s)."""
    return [b for queue in accumulator._batches.values() for b in queue] + list(accumulator._pending_batches)


def _sender_dead(producer: AIOKafkaProducer) -> bool:
    """aiokafka's background sender ends on OutOfOrderSequenceNumber or a fenced epoch and never restarts."""
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    return task is not None and task.done()
