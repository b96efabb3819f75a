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
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from launchrelay.agreements.config import Deployment
from launchrelay.audit.log import log_record
from launchrelay.audit.merkle import Frontier, leaf_hash
from launchrelay.contract.codec import message_key
from launchrelay.contract.events import STATUS_EVENT_FORMAT, EventKind, StatusEvent, event_format
from launchrelay.contract.headers import Headers, from_record
from launchrelay.contract.messages import RecordRef
from launchrelay.errors import FormatTooNew
from launchrelay.kafka.admin import cluster_id
from launchrelay.kafka.consume import behind, partitions_of, read_to_end
from launchrelay.runtime.watcher import Watcher, key
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord
from launchrelay.tracker import outputs
from launchrelay.tracker.auditlog import log_id, log_records
from launchrelay.tracker.deadlines import Action, Clock, Retransmit, Timeout, action_id, due, in_flight_id
from launchrelay.tracker.ledger import Ledger
from launchrelay.tracker.lifecycle import Delivery, DeliveryKind, Notification

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
    def on_partition(self, topic: str, partition: int, lag: int, oldest_pending_s: float) -> None: ...
    def on_set_aside(self) -> None: ...
    def on_fetch_error(self, error: str) -> None: ...
    def on_contact(self, at: float) -> None: ...
    def prime(self, deployment: Deployment) -> None: ...


class CountingHooks:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {"events": 0, "timeouts": 0, "retransmits": 0, "acks": 0, "set_aside": 0}

    def on_partition(self, topic: str, partition: int, lag: int, oldest_pending_s: float) -> None:
        pass

    def on_set_aside(self) -> None:
        self.counts["set_aside"] += 1

    def on_fetch_error(self, error: str) -> None:
        pass

    def prime(self, deployment: Deployment) -> None:
        pass

    def on_contact(self, at: float) -> None:
        pass

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
    #: tries per status event before it is set aside (logged at ERROR, counted) so the topic moves on
    event_attempts: int = 3
    #: the status topic waiting this long without progress is a stall: readiness 503, a WARNING per interval
    stall_after_s: float = 30.0
    watch_every_s: float = 5.0
    clock: Clock = field(default_factory=SystemClock)
    hooks: TrackerHooks = field(default_factory=CountingHooks)
    client_options: dict[str, Any] = field(default_factory=dict)


class TrackerService:
    def __init__(self, deployment: Deployment, options: TrackerOptions, ledger: Ledger) -> None:
        self.deployment = deployment
        self.options = options
        self.ledger = ledger
        self.topics = deployment.topics
        self._producer = AIOKafkaProducer(
            bootstrap_servers=options.bootstrap,
            **options.client_options,
            transactional_id=f"{self.topics.prefix}.tracker",
            enable_idempotence=True,
            acks="all",
            max_request_size=deployment.limits.copy_request,
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
        #: the decision log ([relay] decision_log): the tracker's own log's tree, read back at start
        self._log = deployment.relay.decision_log
        self._frontier = Frontier()
        options.hooks.prime(deployment)  # every series the config can produce, from the start
        self._in_flight: set[str] = set()  # fired, not yet read back from the status topic
        self._stopping = asyncio.Event()
        self._ready = False
        #: the cluster's id, folded into every id the tracker mints (see :func:`outputs.action_seed`)
        self.origin = ""
        self.watcher = Watcher(
            "tracker", self._status, lambda: self._parts, options.hooks,
            stall_after_s=options.stall_after_s, every_s=options.watch_every_s,
        )  # fmt: skip
        self.watch = self.watcher.watch

    def ready(self) -> tuple[bool, str]:
        if not self._ready:
            return False, "catching up on the status topic"
        problem = self.watcher.problem()
        return (False, problem) if problem is not None else (True, "caught up")

    async def start(self) -> None:
        self.origin = await cluster_id(self.options.bootstrap, self.options.client_options)
        await self._producer.start()  # fences the previous incarnation: its open transaction is aborted
        await self._status.start()
        await self._source.start()
        if self._log:
            frontier = await self._read_frontier()
            if frontier is None:  # its alerts matter more than their leaves: they fire, unlogged, this run
                self._log = False
            else:
                self._frontier = frontier
        self._parts = await partitions_of(self._status, self.topics.status)
        self._status.assign(self._parts)
        for tp in self._parts:
            self.watch.assigned(key(tp))
            self.options.hooks.on_partition(tp.topic, tp.partition, 0, 0.0)
        stored = self.ledger.offsets()
        for tp in self._parts:
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                await self._status.seek_to_beginning(tp)
            else:
                self._status.seek(tp, offset)
            self.watch.positioned(key(tp), await self._status.position(tp))
        applied = await self.catch_up()
        self._ready = True
        log.info(
            "tracker.started",
            tracker_id=self.options.tracker_id,
            ledger=self.ledger.location,
            caught_up_events=applied,
            pending=self.ledger.pending_count(),
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
        read: list[tuple[TopicPartition, int, StatusEvent | None]] = []
        offsets: dict[tuple[str, int], int] = {}
        now = time.time()
        for tp, records in batch.items():
            if records:
                first = records[0].timestamp
                self.watch.fetched(key(tp), first / 1000.0 if first >= 0 else None, now)
            for record in records:
                found = event_format(record.value or b"")
                if found > STATUS_EVENT_FORMAT:  # stop here: a later release wrote it, in a format not read here
                    where = (
                        f"the status event at {RecordRef(topic=tp.topic, partition=tp.partition, offset=record.offset)}"
                    )
                    log.error("tracker.format_too_new", partition=tp.partition, offset=record.offset, format=found,
                              reads=STATUS_EVENT_FORMAT)  # fmt: skip
                    raise FormatTooNew(where, found, STATUS_EVENT_FORMAT)
                try:
                    event: StatusEvent | None = StatusEvent.model_validate_json(record.value or b"")
                except ValidationError as exc:
                    log.error(  # noqa: TRY400 - the reason is in `error`; a traceback would add nothing
                        "tracker.bad_status_event", partition=tp.partition, offset=record.offset,
                        error=str(exc)[:300],
                    )  # fmt: skip
                    event = None
                read.append((tp, record.offset, event))
                offsets[(tp.topic, tp.partition)] = record.offset + 1
        if not offsets:
            return 0
        events = [e for _, _, e in read if e is not None]
        try:
            self.ledger.apply(events, offsets)
            applied = events
        except Exception as exc:  # noqa: BLE001 - one event may be at fault: apply them one by one
            log.warning("tracker.batch_failed", events=len(events), error=repr(exc)[:300])
            applied = await self._apply_one_by_one(read)
        for event in applied:
            self._after_apply(event)
        for (topic, partition), next_offset in offsets.items():
            self.watch.committed(key(TopicPartition(topic, partition)), next_offset)
        return len(applied)

    def _rewind(self) -> None:
        """Back to the last event the ledger applied: a failed pass may have fetched past it."""
        for tp in self._parts:
            applied = self.watch.partitions.get(key(tp))
            if applied is not None and applied.next_offset is not None:
                self._status.seek(tp, applied.next_offset)

    async def _apply_one_by_one(self, read: list[tuple[TopicPartition, int, StatusEvent | None]]) -> list[StatusEvent]:
        """Apply each event in its own ledger transaction; one that fails every try is set aside, not applied.

        Setting aside advances the offset past the event (so the topic moves on) and says so at ERROR
        with the event's ids; a ledger that cannot even record the offset raises (a stall, watched).
        """
        applied: list[StatusEvent] = []
        for tp, offset, event in read:
            position = {(tp.topic, tp.partition): offset + 1}
            for attempt in range(1, self.options.event_attempts + 1):
                try:
                    self.ledger.apply([event] if event else [], position)
                except Exception as exc:  # bounded: set aside after the last attempt
                    if attempt < self.options.event_attempts:
                        await asyncio.sleep(0.2 * attempt)
                        continue
                    self.watch.failed(key(tp), f"offset {offset}: {exc!r}")
                    self.ledger.apply([], position)
                    self.options.hooks.on_set_aside()
                    log.error(  # noqa: TRY400 - the error is named; a traceback is in the DEBUG line below
                        "tracker.event_set_aside", partition=tp.partition, offset=offset, attempts=attempt,
                        error=repr(exc)[:300], message_id=event.message_id if event else None,
                        kind=event.kind.value if event else None,
                    )  # fmt: skip
                    log.debug("tracker.event_set_aside_traceback", exc_info=exc)
                else:
                    if event is not None:
                        applied.append(event)
                break
        return applied

    def _after_apply(self, event: StatusEvent) -> None:
        self.options.hooks.on_event(event)
        overdue = (EventKind.RETRANSMITTED, EventKind.ACKNOWLEDGEMENT_OVERDUE, EventKind.REPORT_OVERDUE)
        if event.kind in overdue and event.sender:
            notice = message_key(event.sender, event.message_id or "")
            attempt = event.attempt if event.kind is EventKind.RETRANSMITTED else None
            report = event.kind is EventKind.REPORT_OVERDUE
            for r in event.recipients:
                self._in_flight.discard(in_flight_id(notice, r, attempt, report=report))
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
        return [a for a in due(candidates, now) if action_id(a) not in self._in_flight]

    async def _fetch_original(self, source: RecordRef) -> tuple[bytes, Headers] | None:
        tp = TopicPartition(source.topic, source.partition)
        self._source.assign([tp])
        self._source.seek(tp, source.offset)
        async with asyncio.timeout(15):
            while True:
                batch = await self._source.getmany(tp, timeout_ms=500, max_records=1)
                for record in batch.get(tp, []):
                    if record.offset == source.offset:
                        return record.value, from_record(record.headers)
                    return None  # the record is gone (retention): nothing to re-send

    async def _read_frontier(self) -> Frontier | None:
        """The tracker's log as committed: its leaves on the log topic, in order (read once the producer has fenced
        the last incarnation, so no transaction of its is still open); None, said at ERROR, when they are not
        numbered 0..n-1 (a leaf appended after them would prove nothing)."""
        name = log_id(self.topics)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.options.bootstrap, group_id=None, enable_auto_commit=False,
                                    isolation_level="read_committed", **self.options.client_options)  # fmt: skip
        leaves: dict[int, bytes] = {}
        await consumer.start()
        try:
            async for _, records in read_to_end(consumer, self.topics.decision_log, {}, None, 120.0, 5000):
                for r in records:
                    found = log_record(r.key, r.value, r.headers)
                    if found is not None and found.kind == "leaf" and found.log == name:
                        leaves[found.index] = found.value
        finally:
            await consumer.stop()
        if sorted(leaves) != list(range(len(leaves))):
            log.error("tracker.log_broken", log=name, leaves=len(leaves), first_places=sorted(leaves)[:20],
                      hint="alerts fire but are not logged until the log topic is looked at; nothing is appended "
                      "to a log out of place")  # fmt: skip
            return None
        frontier = Frontier()
        for i in range(len(leaves)):
            frontier.append(leaf_hash(leaves[i]))
        log.info("tracker.log_read", log=name, leaves=frontier.size)
        return frontier

    async def _fire(self, actions: list[Action]) -> None:
        now = self.options.clock.now()
        plans: list[tuple[Action, Notification, list[OutRecord]]] = []
        alerts: list[tuple[Notification, DeliveryKind, str, str]] = []  # for the decision log
        for action in actions:
            n = self.ledger.notification(action.delivery.key)
            if n is None or n.sender is None or n.message_id is None:
                continue
            original = None
            if isinstance(action, Retransmit) or self._log:
                original = await self._fetch_original(RecordRef.parse(n.source)) if n.source else None
                if original is None and isinstance(action, Retransmit):
                    log.warning("tracker.retransmit_unavailable", message_id=n.message_id, source=n.source)
            if not isinstance(action, Retransmit):
                digest = hashlib.sha256(original[0]).hexdigest() if original is not None else ""
                alerts.append((n, action.delivery.kind, action.delivery.recipient, digest))
            records = outputs.plan(
                action, n, original, self.topics, self.options.signer, self.options.tracker_id, now, self.origin
            )
            plans.append((action, n, records))
        if not plans:
            return
        logged: list[OutRecord] = []
        frontier = self._frontier
        if self._log and alerts:
            logged, frontier = log_records(alerts, self.topics, self._frontier, self.options.signer, now)
        await self._producer.begin_transaction()
        try:
            sends = []
            for r in [*(r for _, _, records in plans for r in records), *logged]:
                sends.append(await self._producer.send(r.topic, value=r.value, key=r.key, headers=r.headers))
            await asyncio.gather(*sends)
            await self._producer.commit_transaction()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._producer.abort_transaction()
            raise
        self._frontier = frontier
        for action, n, _ in plans:
            self._in_flight.add(action_id(action))
            d = action.delivery
            ids: dict[str, Any] = {
                "message_id": n.message_id,
                "launch_key": n.launch_key,
                "agreement": n.agreement,
                "sender": n.sender,
                "recipient": d.recipient,
                "deadline_at": d.deadline_at.isoformat(),
            }
            if isinstance(action, Timeout) and d.kind is DeliveryKind.REPORT:
                log.warning("tracker.report_overdue", **ids)
                self.options.hooks.on_timeout(n, d)
            elif isinstance(action, Timeout):
                log.warning("tracker.acknowledgement_overdue", retransmits=d.retransmits, **ids)
                self.options.hooks.on_timeout(n, d)
            else:
                log.info("tracker.retransmitted", attempt=action.attempt, **ids)
                self.options.hooks.on_retransmit(n, d, action.attempt)

    async def run(self) -> None:
        """Until ``request_stop``: apply status events as they come, fire what falls due."""
        await self.watcher.beside(self._run(), self._stopping)

    async def _run(self) -> None:
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
            except Exception as exc:  # noqa: BLE001 - never a crash loop: retried, and a stall shows in readiness
                self.options.hooks.on_fetch_error(type(exc).__name__)
                for tp in self._parts:
                    self.watch.failed(key(tp), repr(exc))
                log.warning("tracker.loop_failed", error=repr(exc)[:300], retry_in_s=backoff)
                self._rewind()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
