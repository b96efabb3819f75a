"""The publisher SDK for upstream launch-planning systems.

::

    async with Publisher(bootstrap, party="CN", signer=signer) as pub:
        result = await pub.publish(notification)              # durable on the broker
        receipt = await pub.publish_and_wait(other, timeout_s=30)  # plus the relay's verdict

Messages are encoded canonically, signed (Ed25519, headers ``lr-signature`` and
``lr-key-id``) and keyed by ``launch_key`` so one launch keeps its order. The
producer is idempotent with ``acks=all``. Every call has a deadline
(``timeout_s``): past it, :class:`PublishTimeout` or :class:`ReceiptTimeout`,
never a wait without end while the broker is away. The Kafka client's own log
lines are held to one per kind per 30 s (see ``quiet_library_logs``).

One Publisher rides through broker restarts, freezes and leader changes: a send
that fails or times out retires the Kafka producer, and the next try (within the
same call while its deadline allows, or the caller's next call) starts a fresh one
(see :mod:`launchrelay.clients._producer`). A record may then be written twice;
the relay answers the repeat ``duplicate`` and forwards nothing.

Give it the relay's size limit (``max_message_bytes``, the deployment's ``[relay] max_message_bytes``; default
1 MiB, the relay's default): a message over it is refused at once (``PublishRefused``, ``OVERSIZE``), and the
producer's requests are sized to carry one the relay accepts (:class:`~launchrelay.topics.SizeLimits`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from launchrelay.clients._producer import FINAL_ERRORS, RenewingProducer
from launchrelay.contract.codec import decode, encode
from launchrelay.contract.headers import Headers
from launchrelay.contract.messages import PartyMessage, Receipt
from launchrelay.errors import KafkaRequestFailed, PublishError, PublishRefused, PublishTimeout, ReceiptTimeout
from launchrelay.kafka.consume import FETCH_WAIT_MS, partitions_of
from launchrelay.runtime.logging import quiet_library_logs
from launchrelay.signing import Signer, verify_headers
from launchrelay.topics import DEFAULT_MAX_MESSAGE_BYTES, Topics, size_limits

log = structlog.get_logger("launchrelay.publisher")


@dataclass(frozen=True)
class PublishResult:
    message_id: str
    topic: str
    partition: int
    offset: int


class Publisher:
    """Publishes one party's messages to its out topic and, optionally, waits for receipts."""

    def __init__(
        self,
        bootstrap: str,
        party: str,
        signer: Signer,
        *,
        topic_prefix: str = "launchrelay",
        relay_keys: dict[str, Ed25519PublicKey] | None = None,
        watch_receipts: bool = True,
        client_options: dict[str, Any] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._client_options = client_options or {}
        #: the relay's limit (its ``[relay] max_message_bytes``): a message over it is refused here, before Kafka
        self.limits = size_limits(max_message_bytes)
        producer_options = {"max_request_size": self.limits.publish_request, **self._client_options}
        self.party = party
        self.topics = Topics(topic_prefix)
        self._signer = signer
        self._bootstrap = bootstrap
        self._relay_keys = relay_keys
        self._producer = RenewingProducer(
            lambda: AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **producer_options
            ),
            name=f"publisher.{party}",
        )
        self._watch = watch_receipts
        self._receipts: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[Receipt]] = {}
        self._early: dict[str, Receipt] = {}
        #: every receipt seen per message (two-centre mode: the own centre's, then the counterpart centre's)
        self._seen: dict[str, list[Receipt]] = {}

    async def start(self, timeout_s: float = 60.0) -> None:
        """Connect (and start watching receipts); :class:`PublishError` if Kafka does not answer in time."""
        quiet_library_logs()
        try:
            async with asyncio.timeout(timeout_s):
                await self._producer.start()
                if self._watch:
                    await self._start_receipts()
        except (KafkaError, TimeoutError) as exc:
            await self.stop()
            raise PublishError(f"cannot connect to Kafka at {self._bootstrap} within {timeout_s:g}s: {exc!r}") from exc
        except BaseException:
            await self.stop()
            raise

    async def _start_receipts(self) -> None:
        topic = self.topics.inbound(self.party)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            **self._client_options,
            group_id=None,
            isolation_level="read_committed",
            enable_auto_commit=False,
            fetch_max_wait_ms=FETCH_WAIT_MS,  # a receipt is not held up behind another partition's fetch
            max_partition_fetch_bytes=self.limits.fetch,  # the in topic holds copies of up to twice the limit
        )
        await consumer.start()
        self._receipts = consumer
        try:
            tps = await partitions_of(consumer, topic)
        except KafkaRequestFailed as exc:
            raise PublishRefused(str(exc)) from exc
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve positions now, so receipts of what we publish next are not skipped
            await consumer.position(tp)
        self._task = asyncio.create_task(self._read_receipts(consumer))

    async def _read_receipts(self, consumer: AIOKafkaConsumer) -> None:
        """Hand receipts to their waiters; the reader outlives any error of the Kafka client."""
        backoff = 0.5
        while True:
            try:
                async for record in consumer:
                    self._receipt(record.value, record.headers)
                    backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker's fault: read on after a pause, visibly
                log.warning("publisher.receipts_failed", party=self.party, error=repr(exc)[:200], retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _receipt(self, value: bytes | None, headers: Headers) -> None:
        try:
            message = decode(value or b"")
        except ValueError:
            return
        if not isinstance(message, Receipt) or message.refers_to is None:
            return
        if self._relay_keys is not None and not self._relay_signed(value or b"", headers):
            log.warning("publisher.receipt_unverified", refers_to=message.refers_to)
            return
        self._seen.setdefault(message.refers_to, []).append(message)
        if len(self._seen) > 10_000:
            self._seen.pop(next(iter(self._seen)))
        waiter = self._waiters.pop(message.refers_to, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        else:
            self._early.setdefault(message.refers_to, message)  # the first receipt counts (its own centre's)
            if len(self._early) > 10_000:
                self._early.pop(next(iter(self._early)))

    def _relay_signed(self, value: bytes, headers: Headers) -> bool:
        assert self._relay_keys is not None
        return bool(verify_headers(value, headers, self._relay_keys))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._receipts is not None:
            await self._receipts.stop()
        await self._producer.stop()

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()

    async def publish_raw(
        self, value: bytes, key: bytes | None, headers: Headers, timeout_s: float = 30.0
    ) -> PublishResult:
        """Write bytes as they are (for tests and tools); ``publish`` is the normal path.

        Within ``timeout_s`` a failed send is tried again on a fresh producer (after a short backoff);
        an error about the record itself (too large, a topic this party may not write) is final at once."""
        topic = self.topics.outbound(self.party)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        backoff, last_error = 0.1, None
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    meta = await self._producer.send_and_wait(topic, value, key, headers)
                return PublishResult("", topic, meta.partition, meta.offset)
            except TimeoutError as exc:
                raise PublishTimeout(
                    f"Kafka did not confirm the record on {topic} within {timeout_s:g}s"
                    f"{f' (last error: {last_error!r})' if last_error else ''}; it may still be written, and "
                    "publishing it again is safe (a repeat gets a DUPLICATE receipt)"
                ) from exc
            except FINAL_ERRORS as exc:
                raise PublishRefused(f"Kafka refused the record on {topic}: {exc!r}") from exc
            except KafkaError as exc:
                last_error = exc
                log.info("publisher.retrying", topic=topic, error=repr(exc)[:200], retry_in_s=backoff)
                if loop.time() + backoff >= deadline:
                    raise PublishTimeout(
                        f"Kafka did not confirm the record on {topic} within {timeout_s:g}s (last error: {exc!r}); "
                        "it may still be written, and publishing it again is safe (a repeat gets a DUPLICATE receipt)"
                    ) from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def publish(self, message: PartyMessage, timeout_s: float = 30.0) -> PublishResult:
        """Sign and publish; returns once the broker has the record durably (acks=all), or raises
        :class:`PublishTimeout` after ``timeout_s``."""
        if message.sender != self.party:
            raise PublishRefused(f"this publisher speaks for {self.party}, not {message.sender}")
        value = encode(message)
        if len(value) > self.limits.relay:
            raise PublishRefused(
                f"OVERSIZE: {message.message_id} is {len(value)} bytes; the relay refuses more than "
                f"{self.limits.relay} (its [relay] max_message_bytes, given to this publisher as max_message_bytes)"
            )
        result = await self.publish_raw(value, message.launch_key.encode(), self._signer.headers(value), timeout_s)
        log.info(
            "publisher.published",
            message_id=message.message_id,
            launch_key=message.launch_key,
            topic=result.topic,
            partition=result.partition,
            offset=result.offset,
        )
        return PublishResult(message.message_id, result.topic, result.partition, result.offset)

    def receipts_for(self, message_id: str) -> list[Receipt]:
        """Every receipt seen so far for ``message_id``, in arrival order (in two-centre mode this centre's relay's,
        then the counterpart centre's, passed back over the link; tell them apart by ``issued_by``)."""
        return list(self._seen.get(message_id, ()))

    async def wait_receipt(self, message_id: str, timeout_s: float = 30.0) -> Receipt:
        """The relay's receipt for ``message_id`` (forwarded, rejected or duplicate)."""
        if not self._watch:
            raise PublishRefused("this publisher was opened with watch_receipts=False")
        early = self._early.pop(message_id, None)
        if early is not None:
            return early
        waiter = self._waiters.get(message_id)
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters[message_id] = waiter
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout_s)
        except TimeoutError as exc:
            raise ReceiptTimeout(f"no receipt for {message_id} within {timeout_s:g}s") from exc

    async def publish_and_wait(self, message: PartyMessage, timeout_s: float = 30.0) -> Receipt:
        """Publish, then wait for the relay's receipt: both within ``timeout_s`` in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if message.message_id not in self._waiters:
            self._waiters[message.message_id] = loop.create_future()
        await self.publish(message, timeout_s)
        return await self.wait_receipt(message.message_id, max(0.0, deadline - loop.time()))
