"""The tracker service: fold status events into the ledger, and fire deadlines exactly once.

Exactly one alert per deadline, across crashes: an alert (the overdue receipt
to the sender and its ``acknowledgement_overdue`` status event) is written in
one Kafka transaction by a producer with a fixed transactional id, so a new
tracker incarnation fences and aborts whatever the last one left open. The
ledger learns that an alert fired only by reading that status event back, in
the same SQLite transaction as the offsets. After a restart the tracker reads
the status topic to its end before checking deadlines: an alert that was
committed is seen there and not fired again; one that was not committed was
aborted and fires now. Retransmissions work the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from launchrelay.agreements.config import Deployment, RetransmitPolicy
from launchrelay.broker.admin import behind, partitions_of
from launchrelay.contract.codec import encode, message_key, stable_id
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.contract.messages import Receipt, ReceiptOutcome, RecordRef
from launchrelay.signing import RETRANSMISSION_HEADER, Signer
from launchrelay.topics import Topics
from launchrelay.tracker.deadlines import Action, Clock, Retransmit, Timeout, due
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.lifecycle import Delivery, Notification

log = structlog.get_logger("launchrelay.tracker")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TrackerHooks(Protocol):
    """Where metrics attach (the operations work wires Prometheus here)."""

    def on_event(self, event: StatusEvent) -> None: ...
    def on_ack(self, agreement: str | None, delivery: Delivery) -> None: ...
    def on_timeout(self, notification: Notification, delivery: Delivery) -> None: ...
    def on_retransmit(self, notification: Notification, delivery: Delivery, attempt: int) -> None: ...


class CountingHooks:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {"events": 0, "timeouts": 0, "retransmits": 0, "acks": 0}

    def on_event(self, event: StatusEvent) -> None:
        self.counts["events"] += 1

    def on_ack(self, agreement: str | None, delivery: Delivery) -> None:
        self.counts["acks"] += 1

    def on_timeout(self, notification: Notification, delivery: Delivery) -> None:
        self.counts["timeouts"] += 1

    def on_retransmit(self, notification: Notification, delivery: Delivery, attempt: int) -> None:
        self.counts["retransmits"] += 1


@dataclass
class TrackerOptions:
    bootstrap: str
    tracker_id: str
    signer: Signer
    tick_s: float = 0.5
    clock: Clock = field(default_factory=SystemClock)
    hooks: TrackerHooks = field(default_factory=CountingHooks)
    client_options: dict[str, Any] = field(default_factory=dict)


def _in_flight_id(key: str, recipient: str, retransmission: int | None) -> str:
    """Names one deadline action (a retransmission attempt, or the timeout when None) until its event is read back."""
    kind = "overdue" if retransmission is None else f"retx{retransmission}"
    return f"{key}|{recipient}|{kind}"


def _action_id(action: Action) -> str:
    d = action.delivery
    return _in_flight_id(d.key, d.recipient, action.attempt if isinstance(action, Retransmit) else None)


class TrackerService:
    def __init__(self, deployment: Deployment, options: TrackerOptions, ledger: SqliteLedger) -> None:
        self.deployment = deployment
        self.options = options
        self.ledger = ledger
        self.topics = Topics(deployment.relay.topic_prefix)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=options.bootstrap,
            **options.client_options,
            transactional_id=f"{self.topics.prefix}.tracker",
            enable_idempotence=True,
            acks="all",
            max_request_size=deployment.relay.max_message_bytes * 2 + 65536,
        )
        self._status = AIOKafkaConsumer(
            bootstrap_servers=options.bootstrap, group_id=None, isolation_level="read_committed",
            **options.client_options,
            enable_auto_commit=False,
        )  # fmt: skip
        self._source = AIOKafkaConsumer(
            bootstrap_servers=options.bootstrap, group_id=None, isolation_level="read_committed",
            **options.client_options,
            enable_auto_commit=False,
        )  # fmt: skip
        self._parts: list[TopicPartition] = []
        self._in_flight: set[str] = set()  # fired, not yet read back from the status topic
        self._stopping = asyncio.Event()
        self._ready = False

    def ready(self) -> tuple[bool, str]:
        return (True, "caught up") if self._ready else (False, "catching up on the status topic")

    def _policy(self, agreement_id: str | None) -> RetransmitPolicy | None:
        agreement = self.deployment.agreement(agreement_id or "")
        return agreement.retransmit if agreement else None

    async def start(self) -> None:
        await self._producer.start()  # fences the previous incarnation: its open transaction is aborted
        await self._status.start()
        await self._source.start()
        self._parts = await partitions_of(self._status, self.topics.status)
        self._status.assign(self._parts)
        stored = self.ledger.offsets()
        for tp in self._parts:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                await self._status.seek_to_beginning(tp)
            else:
                self._status.seek(tp, offset)
        applied = await self.catch_up()
        self._ready = True
        log.info(
            "tracker.started",
            tracker_id=self.options.tracker_id,
            ledger=str(self.ledger.path),
            caught_up_events=applied,
            pending=len(self.ledger.pending()),
        )

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        await self._status.stop()
        await self._source.stop()
        await self._producer.stop()
        log.info("tracker.stopped", tracker_id=self.options.tracker_id)

    # reading the status topic -------------------------------------------------------------------
    async def _consume_once(self, timeout_ms: int) -> int:
        batch = await self._status.getmany(timeout_ms=timeout_ms, max_records=2000)
        events: list[StatusEvent] = []
        offsets: dict[tuple[str, int], int] = {}
        for tp, records in batch.items():
            for record in records:
                try:
                    events.append(StatusEvent.model_validate_json(record.value))
                except ValidationError:
                    log.exception("tracker.bad_status_event", partition=tp.partition, offset=record.offset)
                offsets[(tp.topic, tp.partition)] = record.offset + 1
        if not offsets:
            return 0
        self.ledger.apply(events, offsets, self._policy)
        for event in events:
            self._after_apply(event)
        return len(events)

    def _after_apply(self, event: StatusEvent) -> None:
        self.options.hooks.on_event(event)
        if event.kind in (EventKind.RETRANSMITTED, EventKind.ACKNOWLEDGEMENT_OVERDUE) and event.sender:
            key = message_key(event.sender, event.message_id or "")
            attempt = event.attempt if event.kind is EventKind.RETRANSMITTED else None
            for r in event.recipients:
                self._in_flight.discard(_in_flight_id(key, r, attempt))
        if event.kind is EventKind.FORWARDED and event.message_type == "acknowledgement" and event.recipients:
            for d in self.ledger.deliveries(message_key(event.recipients[0], event.refers_to or "")):
                if d.recipient == event.sender and d.ack_message_id == event.message_id:
                    self.options.hooks.on_ack(event.agreement, d)
            log.info(
                "tracker.acknowledged",
                message_id=event.refers_to,
                ack_id=event.message_id,
                by=event.sender,
                sender=event.recipients[0],
                launch_key=event.launch_key,
                agreement=event.agreement,
            )

    async def catch_up(self, timeout_s: float = 60.0) -> int:
        """Apply every committed status event up to the topic's current end."""
        ends = await self._status.end_offsets(self._parts)
        applied = 0
        async with asyncio.timeout(timeout_s):
            while await behind(self._status, ends):
                applied += await self._consume_once(200)
        return applied

    # deadlines ------------------------------------------------------------------------------------
    def _due(self) -> list[Action]:
        now = self.options.clock.now()
        candidates = self.ledger.due_deliveries(now)
        return [a for a in due(candidates, now) if _action_id(a) not in self._in_flight]

    async def _fetch_original(self, source: RecordRef) -> tuple[bytes, list[tuple[str, bytes]]] | None:
        tp = TopicPartition(source.topic, source.partition)
        self._source.assign([tp])
        self._source.seek(tp, source.offset)
        async with asyncio.timeout(15):
            while True:
                batch = await self._source.getmany(tp, timeout_ms=500, max_records=1)
                for record in batch.get(tp, []):
                    if record.offset == source.offset:
                        return record.value, [(k, bytes(v)) for k, v in (record.headers or ())]
                    return None  # the record is gone (retention): nothing to re-send

    async def _fire(self, actions: list[Action]) -> None:
        now = self.options.clock.now()
        plans: list[tuple[Action, Notification, list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]]] = []
        for action in actions:
            d = action.delivery
            n = self.ledger.notification(d.key)
            if n is None or n.sender is None or n.message_id is None:
                continue
            key = (n.launch_key or "").encode()
            aid = _action_id(action)
            records: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
            event = StatusEvent(
                event_id=stable_id("evt", aid),
                kind=EventKind.RETRANSMITTED if isinstance(action, Retransmit) else EventKind.ACKNOWLEDGEMENT_OVERDUE,
                at=now,
                message_id=n.message_id,
                message_type=n.message_type,
                agreement=n.agreement,
                sender=n.sender,
                recipients=[d.recipient],
                launch_key=n.launch_key,
                attempt=action.attempt if isinstance(action, Retransmit) else None,
            )
            if isinstance(action, Retransmit):
                ref = _ref(n.source)
                original = await self._fetch_original(ref) if ref else None
                if original is None:
                    log.warning("tracker.retransmit_unavailable", message_id=n.message_id, source=n.source)
                else:
                    value, headers = original
                    headers = [*headers, (RETRANSMISSION_HEADER, str(action.attempt).encode())]
                    records.append((self.topics.inbound(d.recipient), key, value, headers))
            else:
                receipt = Receipt(
                    message_id=stable_id("overdue", aid),
                    issued_by=self.options.tracker_id,
                    recipient=n.sender,
                    outcome=ReceiptOutcome.ACKNOWLEDGEMENT_OVERDUE,
                    created_at=now,
                    refers_to=n.message_id,
                    agreement=n.agreement,
                    launch_key=n.launch_key,
                    forwarded_to=[d.recipient],
                    source=_ref(n.source),
                )
                body = encode(receipt)
                records.append((self.topics.inbound(n.sender), key, body, self.options.signer.headers(body)))
            records.append((self.topics.status, key, encode(event), []))
            plans.append((action, n, records))
        if not plans:
            return
        await self._producer.begin_transaction()
        try:
            sends = []
            for _, _, records in plans:
                for topic, k, value, headers in records:
                    sends.append(await self._producer.send(topic, value=value, key=k, headers=headers))
            await asyncio.gather(*sends)
            await self._producer.commit_transaction()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._producer.abort_transaction()
            raise
        for action, n, _ in plans:
            self._in_flight.add(_action_id(action))
            d = action.delivery
            ids: dict[str, Any] = {
                "message_id": n.message_id,
                "launch_key": n.launch_key,
                "agreement": n.agreement,
                "sender": n.sender,
                "recipient": d.recipient,
                "deadline_at": d.deadline_at.isoformat(),
            }
            if isinstance(action, Timeout):
                log.warning("tracker.acknowledgement_overdue", retransmits=d.retransmits, **ids)
                self.options.hooks.on_timeout(n, d)
            else:
                log.info("tracker.retransmitted", attempt=action.attempt, **ids)
                self.options.hooks.on_retransmit(n, d, action.attempt)

    async def run(self) -> None:
        """Until ``request_stop``: apply status events as they come, fire what falls due."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self._consume_once(int(self.options.tick_s * 1000))
                backlog = getattr(self.options.hooks, "set_backlog", None)
                if backlog is not None:
                    counts = self.ledger.state_counts()
                    backlog(counts.get("pending", 0), counts.get("timed_out", 0))
                if self._due():
                    await self.catch_up()  # an acknowledgement may be waiting right behind
                    actions = self._due()
                    if actions:
                        await self._fire(actions)
                backoff = 0.5
            except (KafkaError, TimeoutError) as exc:
                log.warning("tracker.kafka_error", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)


def _ref(source: str | None) -> RecordRef | None:
    if not source:
        return None
    topic, partition, offset = source.rsplit(":", 2)
    return RecordRef(topic=topic, partition=int(partition), offset=int(offset))
