"""The counterpart SDK: read a party's in topic, verify end to end, acknowledge.

::

    async with Inbox(bootstrap, "RU", signer, sender_keys=keys, relay_keys=relay) as inbox:
        async for item in inbox:                 # the offset is committed when the body has run
            if isinstance(item.message, PlannedLaunch):
                await inbox.acknowledge(item.message)
        # or: await inbox.run(handler, stop_event)

Forwarded messages are verified against the original sender's public key
(the relay passes the sender's bytes and signature through unchanged);
receipts against the relay's key. A record that does not verify is never
yielded: it is logged and skipped.

One Inbox rides through broker restarts and freezes: reading pauses and goes
on, a commit is retried while the broker is away, and acknowledgements are
published through a :class:`~launchrelay.clients.publisher.Publisher`, which
replaces its producer when it must. Reading is at least once: a record whose
commit could not be made is read again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from launchrelay.clients.publisher import Publisher, PublishResult
from launchrelay.contract.codec import decode
from launchrelay.contract.headers import (
    RETRANSMISSION_HEADER,
    Headers,
    from_record,
    header,
)
from launchrelay.contract.messages import Acknowledgement, Message, PartyMessage, Receipt
from launchrelay.errors import ContractError, PublishError
from launchrelay.kafka.consume import FETCH_WAIT_MS
from launchrelay.runtime.logging import quiet_library_logs
from launchrelay.runtime.watcher import key
from launchrelay.signing import Signer, verify_headers
from launchrelay.topics import DEFAULT_MAX_MESSAGE_BYTES, Topics, size_limits

log = structlog.get_logger("launchrelay.inbox")

KeyRing = dict[str, dict[str, Ed25519PublicKey]]


@dataclass(frozen=True)
class InboxItem:
    """One verified message from the in topic, with where it was read."""

    message: Message
    raw: bytes
    topic: str
    partition: int
    offset: int
    retransmission: int


class Inbox:
    """Reads one party's in topic (read_committed) in a consumer group, verifying every record."""

    def __init__(
        self,
        bootstrap: str,
        party: str,
        signer: Signer,
        *,
        sender_keys: KeyRing,
        relay_keys: dict[str, Ed25519PublicKey],
        topic_prefix: str = "launchrelay",
        group_id: str | None = None,
        client_options: dict[str, Any] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.party = party
        self.topics = Topics(topic_prefix)
        self._sender_keys = sender_keys
        self._relay_keys = relay_keys
        self._consumer = AIOKafkaConsumer(
            self.topics.inbound(party),
            bootstrap_servers=bootstrap,
            **(client_options or {}),
            group_id=group_id or f"{topic_prefix}.inbox.{party}",
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_WAIT_MS,  # a forward is not held up behind another partition's fetch
            max_partition_fetch_bytes=size_limits(max_message_bytes).fetch,  # copies of up to twice the limit
        )
        self._publisher = Publisher(
            bootstrap,
            party,
            signer,
            topic_prefix=topic_prefix,
            watch_receipts=False,
            client_options=client_options,
            max_message_bytes=max_message_bytes,
        )
        self.skipped = 0
        #: how long a commit is tried while the broker is away before it is given up (the record may come again)
        self.commit_timeout_s = 30.0
        self._backoff = 0.5

    async def start(self, timeout_s: float = 60.0) -> None:
        """Connect; :class:`PublishError` if Kafka does not answer within ``timeout_s``."""
        quiet_library_logs()
        try:
            async with asyncio.timeout(timeout_s):
                await self._consumer.start()
                await self._publisher.start(timeout_s)
        except (KafkaError, TimeoutError) as exc:
            await self.stop()
            raise PublishError(f"cannot open the inbox of {self.party}: {exc!r}") from exc

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._publisher.stop()

    async def __aenter__(self) -> Inbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.stop()

    def _verified(self, message: Message, value: bytes, headers: Headers) -> bool:
        ring = self._relay_keys if isinstance(message, Receipt) else self._sender_keys.get(message.sender, {})
        return bool(verify_headers(value, headers, ring))

    def _item(self, record: Any) -> InboxItem | None:
        headers = from_record(record.headers)
        try:
            message: Message | None = decode(record.value or b"")
        except ContractError:
            message = None
        if message is None or not self._verified(message, record.value, headers):
            self.skipped += 1
            log.warning("inbox.unverified", party=self.party, topic=record.topic, offset=record.offset)
            return None
        retx = header(headers, RETRANSMISSION_HEADER)
        return InboxItem(message, record.value, record.topic, record.partition, record.offset, int(retx) if retx else 0)

    async def __aiter__(self) -> AsyncIterator[InboxItem]:
        while True:
            for tp, records in (await self._fetch()).items():
                for record in records:
                    item = self._item(record)
                    if item is not None:
                        yield item
                    # Runs when the caller asks for the next item, i.e. after its loop body returned.
                    await self._commit(tp, record.offset + 1)

    async def run(self, handler: Callable[[InboxItem], Awaitable[None]], stop: asyncio.Event) -> None:
        """Call ``handler`` for each verified message until ``stop`` is set; commit after each handler returns."""
        while not stop.is_set():
            for tp, records in (await self._fetch()).items():
                for record in records:
                    item = self._item(record)
                    if item is not None:
                        await handler(item)
                    await self._commit(tp, record.offset + 1)

    async def _fetch(self) -> dict[TopicPartition, list[Any]]:
        """The next records; while the broker is away, nothing (after a pause), never an error that ends reading."""
        try:
            batch: dict[TopicPartition, list[Any]] = await self._consumer.getmany(timeout_ms=300)
        except KafkaError as exc:
            log.warning("inbox.fetch_failed", party=self.party, error=repr(exc)[:200], retry_in_s=self._backoff)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 5.0)
            return {}
        self._backoff = 0.5
        return batch

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        """Commit the position after a handled record, trying for ``commit_timeout_s`` while the broker is away.

        A commit that cannot be made (the group rebalanced, or the broker stayed away) is logged and
        given up: the record may then be read again, as Kafka's at-least-once reading allows, and an
        acknowledgement sent twice is harmless (the sender's notice is acknowledged already)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.commit_timeout_s
        backoff = 0.2
        while True:
            try:
                await self._consumer.commit({tp: OffsetAndMetadata(offset, "")})
            except CommitFailedError as exc:
                log.warning("inbox.commit_failed", party=self.party, partition=key(tp),
                            offset=offset, error=repr(exc)[:200])  # fmt: skip
                return
            except KafkaError as exc:
                if loop.time() + backoff > deadline:
                    log.warning("inbox.commit_failed", party=self.party, partition=key(tp),
                                offset=offset, error=repr(exc)[:200])  # fmt: skip
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            else:
                return

    async def acknowledge(self, message: PartyMessage) -> PublishResult:
        """Publish a signed acknowledgement of ``message`` to this party's out topic."""
        ack = Acknowledgement(
            message_id=f"{self.party.lower()}-ack-{uuid.uuid4().hex[:16]}",
            agreement=message.agreement,
            sender=self.party,
            recipients=[message.sender],
            launch_key=message.launch_key,
            created_at=datetime.now(UTC),
            refers_to=message.message_id,
        )
        return await self._publisher.publish(ack)
