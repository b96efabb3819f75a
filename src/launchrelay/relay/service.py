"""The relay service: consume out topics, decide, and write every outcome exactly once.

Exactly once, the pre-KIP-447 way that aiokafka supports: one transactional
producer per input partition, with a transactional id derived from the topic
and partition (stable across instances). A new owner of a partition starts its
producer before it reads the partition's committed offset; that fences any
zombie owner and aborts its open transaction. Each batch of one partition is
one transaction holding the forwards, receipts, dead letters, status events,
state records and the input offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from launchrelay.agreements.config import Deployment
from launchrelay.broker.admin import behind, partitions_of
from launchrelay.ops.metrics import RelayMetrics
from launchrelay.relay.decide import Decision, InboundRecord, RelayContext, decide
from launchrelay.relay.observe import observe
from launchrelay.relay.outputs import plan
from launchrelay.relay.state import MemoryState, Overlay, SeenMessage
from launchrelay.signing import Signer

log = structlog.get_logger("launchrelay.relay")


@dataclass(frozen=True)
class RelayOptions:
    bootstrap: str
    relay_id: str
    signer: Signer
    batch_size: int = 200
    max_backoff_s: float = 10.0
    client_options: dict[str, Any] = field(default_factory=dict)


class StateReader:
    """Tails the compacted state topic (all partitions, read_committed) into a MemoryState."""

    def __init__(self, bootstrap: str, topic: str, state: MemoryState, client_options: dict[str, Any]) -> None:
        self._topic = topic
        self._state = state
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            **client_options,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self._parts: list[TopicPartition] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        await self._consumer.start()
        self._parts = await partitions_of(self._consumer, self._topic)
        self._consumer.assign(self._parts)
        await self._consumer.seek_to_beginning(*self._parts)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def catch_up(self, timeout_s: float = 60.0) -> int:
        """Read until every partition reaches its last stable offset as of now; returns records read."""
        async with self._lock:
            ends = await self._consumer.end_offsets(self._parts)
            read = 0
            async with asyncio.timeout(timeout_s):
                while await behind(self._consumer, ends):
                    batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
                    for records in batch.values():
                        for rec in records:
                            if rec.value is not None:
                                self._apply(rec)
                                read += 1
            return read

    def _apply(self, rec: ConsumerRecord) -> None:
        """Add one state record; one that cannot be read is named in an ERROR line and skipped.

        Only the relay writes this topic, so this means damage or a foreign
        writer. Stopping would halt every party's traffic; skipping costs at
        most the duplicate check for the one message id the record held.
        """
        try:
            seen = SeenMessage.from_bytes(rec.value)
        except (ValueError, KeyError, TypeError) as exc:
            log.error(  # noqa: TRY400 - the reason is in `error`; a traceback would add nothing
                "relay.state_unreadable", topic=rec.topic, partition=rec.partition, offset=rec.offset,
                key=rec.key.decode(errors="replace") if rec.key else None, error=str(exc)[:200],
            )  # fmt: skip
            return
        self._state.apply(seen)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, relay: RelayService) -> None:
        self._relay = relay

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._relay._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._relay._on_assigned(list(assigned))


class RelayService:
    """Reads every party's out topic and forwards or rejects each record exactly once."""

    def __init__(self, deployment: Deployment, options: RelayOptions, metrics: RelayMetrics | None = None) -> None:
        self.metrics = metrics or RelayMetrics()
        self._started = False
        self._last_fetch_ok = 0.0
        self.ctx = RelayContext.build(deployment)
        self.options = options
        self.topics = self.ctx.topics
        self.group_id = f"{self.topics.prefix}.relay"
        self.state = MemoryState()
        self._reader = StateReader(options.bootstrap, self.topics.relay_state, self.state, options.client_options)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=options.bootstrap,
            **options.client_options,
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=options.batch_size,
            # Notice a dead instance within seconds (the broker's minimum is 6 s).
            session_timeout_ms=6000,
            heartbeat_interval_ms=1500,
        )
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        #: the next offset this instance may process per partition: records below it were
        #: committed already (a batch fetched before a rebalance's seek must not run twice)
        self._next: dict[TopicPartition, int] = {}
        self._work = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.counts: dict[str, int] = {"forward": 0, "reject": 0, "duplicate": 0}

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._reader.start()
        restored = await self._reader.catch_up()
        log.info("relay.state_restored", records=restored, known=len(self.state), relay_id=self.options.relay_id)
        await self._consumer.start()
        out_topics = [self.topics.outbound(p) for p in sorted(self.ctx.deployment.parties)]
        self._consumer.subscribe(out_topics, listener=_Listener(self))
        self._started = True
        self._last_fetch_ok = time.monotonic()  # the broker just answered
        log.info("relay.started", topics=out_topics, group=self.group_id, relay_id=self.options.relay_id)

    def ready(self) -> tuple[bool, str]:
        """Ready: started, the broker answered a fetch in the last 30 s, and partitions are assigned."""
        if not self._started:
            return False, "starting"
        if time.monotonic() - self._last_fetch_ok > 30:
            return False, "no successful fetch from the broker in 30s"
        assigned = len(self._consumer.assignment())
        return (assigned > 0, f"{assigned} partitions assigned")

    def request_stop(self) -> None:
        """Stop fetching; the batch in hand finishes and commits first."""
        self._stopping.set()

    async def stop(self) -> None:
        # Leaving the group calls on_partitions_revoked, which takes the work lock itself.
        await self._consumer.stop()
        async with self._work:
            for producer in self._producers.values():
                await producer.stop()
            self._producers.clear()
            await self._reader.stop()
        log.info("relay.stopped", relay_id=self.options.relay_id, **self.counts)

    async def run(self) -> None:
        """Process until ``request_stop``; transient Kafka errors are retried with backoff."""
        backoff = 0.5
        while not self._stopping.is_set():
            fetch = asyncio.ensure_future(self._consumer.getmany(timeout_ms=500))
            stop_wait = asyncio.ensure_future(self._stopping.wait())
            done, _ = await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            if fetch not in done:
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, KafkaError):
                    await fetch
                break
            try:
                batch = fetch.result()
                self._last_fetch_ok = time.monotonic()
            except KafkaError as exc:
                log.warning("relay.fetch_failed", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_s)
                continue
            async with self._work:
                # Partitions are independent (each has its own producer and transaction): run them
                # side by side so one partition's commit round trip does not wait for another's.
                assigned = self._consumer.assignment()
                outcomes = await asyncio.gather(
                    *(self._process(tp, records) for tp, records in batch.items() if tp in assigned)
                )  # a partition revoked while we waited for the lock is the new owner's
            ok = all(outcomes)
            self._record_lag()
            if ok:
                backoff = 0.5
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_s)

    def _record_lag(self) -> None:
        for tp, expected in self._next.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - expected))

    # rebalancing ---------------------------------------------------------------------------------
    async def _producer_for(self, tp: TopicPartition) -> AIOKafkaProducer:
        producer = self._producers.get(tp)
        if producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.options.bootstrap,
                **self.options.client_options,
                transactional_id=f"{self.group_id}.{tp.topic}.{tp.partition}",
                enable_idempotence=True,
                acks="all",
                max_request_size=self.ctx.max_bytes * 2 + 65536,
            )
            await producer.start()
            self._producers[tp] = producer
        return producer

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._work:  # let the transaction in hand commit before giving partitions up
            for tp in revoked:
                self._next.pop(tp, None)
                producer = self._producers.pop(tp, None)
                if producer is not None:
                    await producer.stop()
        if revoked:
            log.info("relay.partitions_revoked", partitions=[f"{t.topic}:{t.partition}" for t in revoked])

    async def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        # Cheap on purpose: a slow listener delays the whole group. Each partition is
        # fenced and re-positioned when its first batch arrives (see _claim).
        if assigned:
            log.info("relay.partitions_assigned", partitions=[f"{t.topic}:{t.partition}" for t in assigned])

    async def _claim(self, tp: TopicPartition) -> AIOKafkaProducer:
        """Take over ``tp``: fence its previous owner, then read what that owner committed.

        Starting our producer with the partition's transactional id aborts or completes
        the previous owner's open transaction; only after that are its committed input
        offset and state records final, so both are read afterwards.
        """
        producer = await self._producer_for(tp)
        committed = await self._consumer.committed(tp)
        await self._reader.catch_up()
        self._next[tp] = committed or 0
        if committed is not None and committed > await self._consumer.position(tp):
            self._consumer.seek(tp, committed)
        log.info("relay.partition_claimed", partition=f"{tp.topic}:{tp.partition}", committed=committed)
        return producer

    # one partition's batch = one transaction -----------------------------------------------------
    async def _decide_all(self, records: list[InboundRecord]) -> tuple[list[Decision], Overlay]:
        overlay = Overlay(self.state)
        decisions = []
        for record in records:
            decision = decide(record, self.ctx, overlay)
            if decision.reference_missing:
                # The referenced message may have been forwarded by another instance moments ago.
                await self._reader.catch_up()
                decision = decide(record, self.ctx, overlay)
            for write in decision.state_writes:
                overlay.put(write)
            decisions.append(decision)
        return decisions, overlay

    async def _process(self, tp: TopicPartition, raw: list[Any]) -> bool:
        if tp not in self._producers:
            try:
                await self._claim(tp)
            except Exception as exc:  # noqa: BLE001 - retried with the next fetch
                log.warning("relay.claim_failed", partition=f"{tp.topic}:{tp.partition}", error=repr(exc))
                self._producers.pop(tp, None)
                return False
        expected = self._next[tp]
        raw = [r for r in raw if r.offset >= expected]
        records = [
            InboundRecord(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                value=r.value,
                headers=[(k, bytes(v)) for k, v in (r.headers or ())],
                timestamp_ms=r.timestamp,
            )
            for r in raw
        ]
        if not records:
            return True
        first = records[0].offset
        try:
            producer = await self._producer_for(tp)
            decisions, overlay = await self._decide_all(records)
            now = datetime.now(UTC)
            started = time.perf_counter()
            await producer.begin_transaction()
            sends: list[asyncio.Future[Any]] = []
            try:
                for decision in decisions:
                    for out in plan(decision, self.topics, self.options.signer, self.options.relay_id, now):
                        sends.append(await producer.send(out.topic, value=out.value, key=out.key, headers=out.headers))
                await asyncio.gather(*sends)
                await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, self.group_id)
                await producer.commit_transaction()
            except BaseException:
                for fut in sends:  # retrieve failures so none is reported as unhandled
                    if fut.done() and not fut.cancelled():
                        fut.exception()
                # A fenced or failed producer may refuse to abort; it is discarded below either way.
                with contextlib.suppress(Exception):
                    await producer.abort_transaction()
                raise
        except Exception as exc:  # noqa: BLE001 - any failure: nothing was committed, retry the batch
            fenced = isinstance(exc, ProducerFenced)
            log.warning(
                "relay.fenced" if fenced else "relay.transaction_failed",
                partition=f"{tp.topic}:{tp.partition}",
                first_offset=first,
                error=repr(exc),
                relay_id=self.options.relay_id,
            )
            broken = self._producers.pop(tp, None)
            if broken is not None:
                with contextlib.suppress(Exception):
                    await broken.stop()
            if tp in self._consumer.assignment() and tp in self._next:
                self._consumer.seek(tp, self._next[tp])
            self._next.pop(tp, None)  # re-claim before the next attempt
            return False
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self._next[tp] = records[-1].offset + 1
        for write in overlay.pending.values():
            self.state.apply(write)
        for decision in decisions:
            self.counts[decision.kind] += 1
            observe(decision, self.options.relay_id, self.metrics)
        return True
