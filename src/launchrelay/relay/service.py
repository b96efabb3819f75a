"""The relay service: consume out topics, decide, and write every outcome exactly once.

Exactly once, the pre-KIP-447 way that aiokafka supports: one transactional
producer per input partition, with a transactional id derived from the topic
and partition (stable across instances). A new owner of a partition starts its
producer before it reads the partition's committed offset; that fences any
zombie owner and aborts its open transaction. Each batch of one partition is
one transaction holding the forwards, receipts, dead letters, status events,
state records and the input offsets.

No record holds its partition. Failures are of two kinds:

- **about one record**: deciding or planning it raises, or the Kafka client
  cannot even read it (a header name that is not UTF-8). The records before it
  are committed, the partition pauses and tries that record again, a bounded
  number of times; then the record is set aside as ``INTERNAL_ERROR`` or
  ``RECORD_UNREADABLE`` (dead letter, receipt, status event, and its offset, in
  one transaction) and the partition moves on;
- **about the broker or the network**: retried without end, since no record is
  at fault, but never silently: a partition with work waiting and no progress
  for ``stall_after_s`` turns readiness to 503, shows in
  ``launchrelay_oldest_pending_seconds`` and is logged once per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    KafkaError,
    ProducerFenced,
)

from launchrelay.agreements.config import Deployment
from launchrelay.audit.log import head_record
from launchrelay.audit.merkle import Frontier
from launchrelay.contract.headers import from_record
from launchrelay.contract.outcomes import VERDICTS, Outcome
from launchrelay.kafka.admin import cluster_id
from launchrelay.kafka.clients import started
from launchrelay.kafka.consume import (
    FETCH_WAIT_MS,
    committed_with_metadata,
    first_unreadable,
    is_record_fault,
    read_below,
)
from launchrelay.kafka.produce import BATCH_BYTES, set_concurrent_transactions_backoff, transact
from launchrelay.reasons import ReasonCode
from launchrelay.relay.auditlog import HeadPolicy, frontier_from, log_id, log_records, metadata_of
from launchrelay.relay.decide import Decision, InboundRecord, RelayContext, decide, set_aside
from launchrelay.relay.links import Links
from launchrelay.relay.metrics import RelayMetrics
from launchrelay.relay.observe import committed, observe
from launchrelay.relay.outputs import plan
from launchrelay.relay.partitions import (
    Assigned,
    Claimed,
    ClaimFailed,
    Command,
    Committed,
    Do,
    Event,
    Partition,
    Phase,
    ReadAfterAll,
    RecordFailed,
    Revoked,
    Rules,
    Tick,
    TransactionFailed,
    Unreadable,
    step,
)
from launchrelay.relay.state import MemoryState, Overlay, StateView
from launchrelay.relay.state_reader import StateReader
from launchrelay.runtime.watcher import Watcher, key
from launchrelay.signing import Signer
from launchrelay.topics import OutRecord, size_limits

log = structlog.get_logger("launchrelay.relay")


Decider = Callable[[InboundRecord, RelayContext, StateView], Decision]


@dataclass(frozen=True)
class RelayOptions:
    bootstrap: str
    relay_id: str
    signer: Signer
    batch_size: int = 200
    max_backoff_s: float = 10.0
    #: tries per record before it is set aside (INTERNAL_ERROR, RECORD_UNREADABLE)
    record_attempts: int = 3
    #: a partition with work waiting and no progress this long is stalled: readiness 503, a WARNING per interval
    stall_after_s: float = 30.0
    #: how often lag, the oldest pending record and the broker's reachability are checked
    watch_every_s: float = 5.0
    #: how long the broker may hold a fetch for more data (see broker.consume.FETCH_WAIT_MS)
    fetch_max_wait_ms: int = FETCH_WAIT_MS
    #: producer retries (a coordinator busy writing the last transaction's markers answers CONCURRENT_TRANSACTIONS)
    retry_backoff_ms: int = 5
    client_options: dict[str, Any] = field(default_factory=dict)
    #: how often ids past their time are forgotten (dropped from memory, tombstoned on the state topic)
    forget_every_s: float = 600.0


def inbound(r: ConsumerRecord) -> InboundRecord:
    """A consumer record as the relay decides it (also the throughput bench's same-work pipe, so both read alike)."""
    return InboundRecord(
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key,
        value=r.value,
        headers=from_record(r.headers),
        timestamp_ms=r.timestamp,
    )


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, relay: RelayService) -> None:
        self._relay = relay

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._relay._on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._relay._on_assigned(list(assigned))


class RelayService:
    """Reads every party's out topic and forwards or rejects each record exactly once."""

    def __init__(
        self,
        deployment: Deployment,
        options: RelayOptions,
        metrics: RelayMetrics | None = None,
        decider: Decider = decide,
    ) -> None:
        self.metrics = metrics or RelayMetrics()
        self.metrics.prime(deployment)  # every series the config can produce, from the start
        self._decide = decider
        set_concurrent_transactions_backoff(options.retry_backoff_ms / 1000)
        self._started = False
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
            # Any record an out topic accepts fits in one fetch (aiokafka skips a record that does not).
            max_partition_fetch_bytes=size_limits(self.ctx.max_bytes).fetch,
            fetch_max_bytes=size_limits(self.ctx.max_bytes).fetch_total,
            # Notice a dead instance within seconds (the broker's minimum is 6 s).
            session_timeout_ms=6000,
            heartbeat_interval_ms=1500,
            fetch_max_wait_ms=options.fetch_max_wait_ms,
        )
        #: each assigned partition's life (claimed, where deciding stands, a failed or unreadable record, paused):
        #: pure state, changed only by :meth:`_on` (see :mod:`launchrelay.relay.partitions`)
        self._parts: dict[TopicPartition, Partition] = {}
        self._rules = Rules(options.record_attempts, options.max_backoff_s)
        #: what the shell holds per partition: its transactional producer (while claimed or claiming) ...
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        #: ... records fetched beyond its batch for this round, handed out in later rounds ...
        self._held: dict[TopicPartition, list[ConsumerRecord]] = {}
        #: writes the tombstones of forgotten ids (not in a transaction: a lost one is written again next time)
        self._tombstones: AIOKafkaProducer | None = None
        self._next_forget = 0.0
        #: ... and the task claiming it in the background (paused meanwhile; see _claim_in_background)
        self._claims: dict[TopicPartition, asyncio.Task[None]] = {}
        self.watcher = Watcher(
            "relay", self._consumer, lambda: list(self._consumer.assignment()), self.metrics,
            stall_after_s=options.stall_after_s, every_s=options.watch_every_s, unpositioned=self._consumer.committed,
            held=lambda tp: rs[0].offset if (rs := self._held.get(tp)) else None, ids={"relay_id": options.relay_id},
        )  # fmt: skip
        self.watch = self.watcher.watch
        self._work = asyncio.Lock()
        #: the decision log ([relay] decision_log): each claimed partition's tree as committed, and its last head
        self._log = deployment.relay.decision_log
        self._frontiers: dict[TopicPartition, Frontier] = {}
        self._heads: dict[TopicPartition, tuple[int, float]] = {}
        self._head_policy = HeadPolicy(deployment.relay.log_head_every,
                                       deployment.relay.log_head_interval.total_seconds())  # fmt: skip
        self._stopping = asyncio.Event()
        self.counts: dict[Outcome, int] = dict.fromkeys(VERDICTS, 0)
        #: two-centre mode: beacons out, silence watched in (None: one shared cluster)
        self.links = (
            Links(deployment, options.signer, options.relay_id, self.metrics, self._beacon_producer)
            if deployment.centre is not None and deployment.links
            else None
        )
        #: the cluster's id, folded into every id the relay mints (see :mod:`launchrelay.relay.outputs`)
        self.origin = ""

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        self.origin = await cluster_id(self.options.bootstrap, self.options.client_options)
        await self._reader.start()
        restored = await self._reader.catch_up()
        log.info("relay.state_restored", records=restored, known=len(self.state), relay_id=self.options.relay_id)
        self._tombstones = AIOKafkaProducer(bootstrap_servers=self.options.bootstrap, acks="all",
                                            **self.options.client_options)  # fmt: skip
        await self._tombstones.start()
        await self._forget_expired()
        await self._consumer.start()
        out_topics = self.topics.inputs(list(self.ctx.deployment.parties))
        self._consumer.subscribe(out_topics, listener=_Listener(self))
        self._started = True
        self.watcher.last_contact = time.monotonic()  # the broker just answered
        log.info("relay.started", topics=out_topics, group=self.group_id, relay_id=self.options.relay_id,
                 cluster_id=self.origin)  # fmt: skip

    def ready(self) -> tuple[bool, str]:
        """Ready: started, the broker answered lately, partitions assigned, and none of them stalled. A silent link
        is named but does not make the relay unready: it still serves its own party."""
        if not self._started:
            return False, "starting"
        problem = self.watcher.problem()
        if problem is not None:
            return False, problem
        assigned = len(self._consumer.assignment())
        silent = self.links.problem() if self.links is not None else None
        return (assigned > 0, f"{assigned} partitions assigned" + (f"; {silent}" if silent else ""))

    def _beacon_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.options.bootstrap, acks="all", enable_idempotence=True,
                                **self.options.client_options)  # fmt: skip

    def request_stop(self) -> None:
        """Stop fetching; the batch in hand finishes and commits first."""
        self._stopping.set()

    async def stop(self) -> None:
        # Leaving the group calls on_partitions_revoked, which takes the work lock itself.
        await self._consumer.stop()
        await self._cancel_claims(list(self._claims))
        async with self._work:
            for producer in self._producers.values():
                await producer.stop()
            self._producers.clear()
            if self._tombstones is not None:
                await self._tombstones.stop()
            await self._reader.stop()
        log.info("relay.stopped", relay_id=self.options.relay_id, **self.counts)

    async def run(self) -> None:
        """Process until ``request_stop``; transient Kafka errors are retried with backoff."""
        links = asyncio.create_task(self.links.run(self._stopping)) if self.links is not None else None
        try:
            await self.watcher.beside(self._run(), self._stopping)
        finally:
            if links is not None:
                self._stopping.set()
                await links

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            for tp in list(self._parts):
                await self._on(tp, Tick(time.monotonic()))
            if time.monotonic() >= self._next_forget:
                async with self._work:
                    await self._forget_expired()
            if self._log:
                async with self._work:
                    await self._publish_due_heads()
            fetch = asyncio.ensure_future(self._fetch())
            stop_wait = asyncio.ensure_future(self._stopping.wait())
            done, _ = await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            if fetch not in done:
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch
                break
            try:
                batch = fetch.result()
            except Exception as exc:  # noqa: BLE001 - sorted below: a record's fault, or the broker's
                self.metrics.fetch_errors.labels(type(exc).__name__).inc()
                if is_record_fault(exc):
                    await self._locate(exc)
                    continue
                log.debug("relay.fetch_failed", error=repr(exc), retry_in_s=backoff)
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
                unreadable = [tp for tp, p in self._parts.items() if p.unreadable is not None and tp in assigned]
                for tp in unreadable:  # one at a time: they read as they go
                    outcomes.append(await self._approach_unreadable(tp))
            self._record_lag()
            if all(outcomes):
                backoff = 0.5
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_s)

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """This round's records: at most a batch per partition, so no party's backlog delays another's.

        A poll may bring far more for a flooded partition than one batch (a fetch holds up to a
        megabyte per partition). The rest is held and handed out a batch per round, while every other
        partition gets its own batch in the same round; a partition with a batch held is not fetched.
        """
        batch = self.options.batch_size
        self._drop_stale_held()
        assigned = self._consumer.assignment()
        full = {tp for tp, rs in self._held.items() if len(rs) >= batch}
        wanted = [tp for tp in assigned if not self._unreadable(tp) and tp not in full]
        most = batch * max(1, len(assigned))
        timeout = 0 if self._held else 500  # work in hand: only take what has arrived meanwhile
        if not wanted:
            if not self._held:
                await asyncio.sleep(0.05)
            fetched: dict[TopicPartition, list[ConsumerRecord]] = {}
        elif len(wanted) == len(assigned):
            fetched = await self._consumer.getmany(timeout_ms=timeout, max_records=most)
        else:  # getmany() of no partitions would mean all of them; of some, only those
            fetched = await self._consumer.getmany(*wanted, timeout_ms=timeout, max_records=most)
        for tp, records in fetched.items():
            held = self._held.get(tp)
            if held and records and records[0].offset <= held[-1].offset:
                held = None  # the consumer was sought back: what it fetched now is what counts
            self._held[tp] = [*(held or []), *records]
        round_: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp, records in list(self._held.items()):
            round_[tp] = records[:batch]
            if len(records) > batch:
                self._held[tp] = records[batch:]
            else:
                del self._held[tp]
        return round_

    def _drop_stale_held(self) -> None:
        """Held records stay valid only while they continue exactly where deciding stands on their partition.

        A failed transaction or record, a claim or a revocation sought the consumer elsewhere: it fetches
        from there again, and held records past that point would be decided twice."""
        assigned = self._consumer.assignment()
        for tp, records in list(self._held.items()):
            p = self._parts.get(tp)
            going = p is not None and p.phase is Phase.READY and p.unreadable is None and p.next == records[0].offset
            if tp not in assigned or not going:
                del self._held[tp]

    async def _forget_expired(self) -> None:
        """Forget the ids past their time: out of memory, and a tombstone each so a restart does not read them.

        A replay of a forgotten message is refused by its age (CREATED_AT_TOO_OLD), never forwarded again.
        The clock is set back by the skew tolerance, so a relay whose clock runs ahead of the broker's does
        not forget early. A failure is retried at the next interval; nothing depends on it but memory."""
        self._next_forget = time.monotonic() + self.options.forget_every_s
        now = time.time() - self.ctx.deployment.relay.created_at_skew.total_seconds()
        keys = self.state.expired(now)
        if not keys or self._tombstones is None:
            return
        try:
            sends = [await self._tombstones.send(self.topics.relay_state, None, key=k.encode()) for k in keys]
            await asyncio.gather(*sends)
        except (KafkaError, TimeoutError) as exc:
            log.warning("relay.forget_failed", ids=len(keys), error=repr(exc)[:300], relay_id=self.options.relay_id)
            return
        for k in keys:
            self.state.forget_if_expired(k, now)
        log.info("relay.forgotten", ids=len(keys), known=len(self.state), relay_id=self.options.relay_id)

    def _record_lag(self) -> None:
        for tp, p in self._parts.items():
            highwater = self._consumer.highwater(tp)
            if highwater is not None and p.next is not None:
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, highwater - p.next))

    # a partition's life: the pure state machine's events in, its commands carried out ------------------
    async def _on(self, tp: TopicPartition, event: Event) -> list[Command]:
        """Tell the partition's state what happened; do what it answers (the consumer's part only while ``tp`` is
        still assigned); return the commands, for the caller to act on the ones about its batch."""
        part, commands = step(self._parts.get(tp), event, self._rules)
        if part is None:
            self._parts.pop(tp, None)
        else:
            self._parts[tp] = part
        ours = tp in self._consumer.assignment()
        for command in commands:
            if command.do is Do.DROP_PRODUCER:
                producer = self._producers.pop(tp, None)
                if producer is not None:
                    with contextlib.suppress(Exception):
                        await producer.stop()
            elif not ours:
                continue
            elif command.do is Do.CLAIM:
                self._claim_in_background(tp)
            elif command.do is Do.SEEK and command.offset is not None:
                self._consumer.seek(tp, command.offset)
            elif command.do is Do.PAUSE:
                self._consumer.pause(tp)
            elif command.do is Do.RESUME:
                self._consumer.resume(tp)
        return commands

    def _unreadable(self, tp: TopicPartition) -> bool:
        p = self._parts.get(tp)
        return p is not None and p.unreadable is not None

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
                max_request_size=size_limits(self.ctx.max_bytes).copy_request,
                max_batch_size=BATCH_BYTES,
                retry_backoff_ms=self.options.retry_backoff_ms,
            )
            self._producers[tp] = await started(producer)  # cancelled with the claim, or failed: none left behind
        return producer

    async def _on_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._cancel_claims(revoked)
        async with self._work:  # let the transaction in hand commit before giving partitions up
            for tp in revoked:
                await self._on(tp, Revoked())
                self._held.pop(tp, None)
                self.watch.revoked(key(tp))
                for gauge in (self.metrics.consumer_lag, self.metrics.oldest_pending):
                    with contextlib.suppress(KeyError):
                        gauge.remove(tp.topic, str(tp.partition))
        if revoked:
            log.info("relay.partitions_revoked", partitions=[key(t) for t in revoked])

    async def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        # Cheap on purpose: a slow listener delays the whole group. Each partition is
        # claimed in the background (see _claim_in_background).
        for tp in assigned:  # series exist from assignment on, so increase() and alerts see the first change
            self.watch.assigned(key(tp))
            self.metrics.on_partition(tp.topic, tp.partition, 0, 0.0)
            await self._on(tp, Assigned())
        if assigned:
            log.info("relay.partitions_assigned", partitions=[key(t) for t in assigned])

    def _claim_in_background(self, tp: TopicPartition) -> None:
        """Pause ``tp`` and claim it in a task of its own, so claiming never stalls other partitions' batches.

        A claim starts a producer, reads a committed offset and catches the state up:
        a quarter to two thirds of a second, which the serial batch loop would otherwise
        make every partition wait. Records of ``tp`` fetched before it is claimed are
        dropped and fetched again from the committed offset the claim seeks to.
        """
        if tp in self._claims and not self._claims[tp].done():
            return
        self._consumer.pause(tp)
        self._claims[tp] = asyncio.create_task(self._claim_until_done(tp), name=f"claim {key(tp)}")

    async def _claim_until_done(self, tp: TopicPartition) -> None:
        backoff = 0.5
        while True:
            try:
                await self._claim(tp)
            except Exception as exc:  # noqa: BLE001 - the broker's fault: try again, visibly
                log.warning("relay.claim_failed", partition=key(tp), error=repr(exc), retry_in_s=backoff,
                            relay_id=self.options.relay_id)  # fmt: skip
                self.watch.failed(key(tp), f"claim failed: {exc!r}")
                await self._on(tp, ClaimFailed())
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.options.max_backoff_s)
                continue
            return

    async def _cancel_claims(self, partitions: list[TopicPartition]) -> None:
        tasks = [t for tp in partitions if (t := self._claims.pop(tp, None)) is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _claim(self, tp: TopicPartition) -> None:
        """Take over ``tp``: fence its previous owner, then read what that owner committed.

        Starting our producer with the partition's transactional id aborts or completes
        the previous owner's open transaction; only after that are its committed input
        offset and state records final, so both are read afterwards.
        """
        started = time.monotonic()
        await self._producer_for(tp)
        if self._log:  # the tree's frontier was committed with the offset, in the same transaction
            committed, metadata = await committed_with_metadata(self._consumer, tp)
            self._frontiers[tp] = frontier_from(metadata)
            self._heads.pop(tp, None)
        else:
            committed = await self._consumer.committed(tp)
        await self._reader.catch_up()
        # Always from the committed offset: records fetched before the claim were dropped.
        if committed is None:
            await self._consumer.seek_to_beginning(tp)
        else:
            self._consumer.seek(tp, committed)
        self.watch.positioned(key(tp), committed or 0)
        log.info("relay.partition_claimed", partition=key(tp), committed=committed,
                 took_ms=round((time.monotonic() - started) * 1000), relay_id=self.options.relay_id)  # fmt: skip
        await self._on(tp, Claimed(committed, time.monotonic()))  # decided from here on; fetching resumes

    async def _start_of(self, tp: TopicPartition) -> None:
        """Put ``tp`` back where deciding stands (records fetched past it are fetched again)."""
        p = self._parts.get(tp)
        if p is not None and p.next is not None:
            self._consumer.seek(tp, p.next)
            return
        committed = await self._consumer.committed(tp)
        if committed is None:
            await self._consumer.seek_to_beginning(tp)
        else:
            self._consumer.seek(tp, committed)

    # records that fail ---------------------------------------------------------------------------
    async def _record_failed(self, tp: TopicPartition, offset: int, exc: BaseException) -> Command:
        """Count one more failure of the record at ``offset`` (a different record starts a new count): it is tried
        again after a backoff (the partition sought back to it and paused; the others go on) or, past its attempts,
        set aside. Returns which."""
        error = f"{type(exc).__name__}: {exc}"
        commands = await self._on(tp, RecordFailed(offset, error, time.monotonic()))
        self.watch.failed(key(tp), f"offset {offset}: {error}")
        (verdict,) = [c for c in commands if c.do in (Do.RETRY_LATER, Do.SET_ASIDE)]
        if verdict.do is Do.RETRY_LATER:
            log.warning(
                "relay.record_failed", partition=key(tp), offset=offset, attempt=verdict.attempts,
                of=self.options.record_attempts, error=repr(exc)[:300], retry_in_s=verdict.delay_s,
                relay_id=self.options.relay_id,
            )  # fmt: skip
        return verdict

    async def _locate(self, exc: BaseException) -> None:
        """The client failed on a record it cannot read: find which partition and offset, by reading one at a time.

        A failed fetch may have dropped records it had read before the bad one, so every
        partition first goes back to where deciding stands.
        """
        async with self._work:
            assigned = sorted(self._consumer.assignment())
            for tp in assigned:
                await self._start_of(tp)
            found = False
            for tp in assigned:
                if self._unreadable(tp):
                    continue
                at = await first_unreadable(self._consumer, tp)
                await self._start_of(tp)
                if at is not None:
                    found = True
                    await self._on(tp, Unreadable(at))
                    log.warning(
                        "relay.record_unreadable", partition=key(tp), offset=at, error=repr(exc)[:300],
                        relay_id=self.options.relay_id,
                    )  # fmt: skip
            if not found:
                log.warning("relay.fetch_failed", error=repr(exc)[:300], relay_id=self.options.relay_id)
                await asyncio.sleep(0.5)

    async def _approach_unreadable(self, tp: TopicPartition) -> bool:
        """Decide the records before the unreadable one (never letting the client reach it), then set it aside."""
        p = self._parts.get(tp)
        if p is None or p.unreadable is None or p.phase is Phase.PAUSED:
            return True
        if not p.claimed:
            self._claim_in_background(tp)
            return True
        at = p.unreadable
        records = await read_below(self._consumer, tp, at, self.options.batch_size)
        if records:
            return await self._process(tp, records)
        if await self._consumer.position(tp) < at:
            return True  # nothing fetched yet
        try:  # the record is next: try it again, in case the failure was passing
            got = await self._consumer.getmany(tp, timeout_ms=1000, max_records=1)
        except Exception as exc:
            if not is_record_fault(exc):
                raise
            verdict = await self._record_failed(tp, at, exc)
            if verdict.do is Do.RETRY_LATER:
                return True
            unread = InboundRecord(tp.topic, tp.partition, at, None, None, [], -1)
            decision = set_aside(unread, self.ctx, ReasonCode.RECORD_UNREADABLE, exc, verdict.attempts)
            ok = await self._commit(tp, [decision], [self._plan(decision)], Overlay(self.state))
            if ok:  # the commit passed it (no longer unreadable): fetch from the record after
                self._consumer.seek(tp, at + 1)
            return ok
        await self._on(tp, ReadAfterAll())  # back to the normal path
        return await self._process(tp, got.get(tp, []))

    async def _publish_due_heads(self) -> None:
        """A quiet partition's log still gets a head for its latest leaves once the interval has passed: a head on
        its own in a transaction, the offset and frontier committed again unchanged."""
        now = time.monotonic()
        for tp, frontier in list(self._frontiers.items()):
            p = self._parts.get(tp)
            if p is None or p.next is None or tp not in self._consumer.assignment():
                continue
            if not self._head_policy.due(frontier.size, self._heads.get(tp), now):
                continue
            name = log_id(tp.topic, tp.partition)
            record = head_record(name, frontier, self.topics.decision_log, self.options.signer, datetime.now(UTC))
            try:
                producer = await self._producer_for(tp)
                await transact(producer, [record], {tp: (p.next, metadata_of(frontier))}, self.group_id)
            except Exception as exc:  # noqa: BLE001 - tried again next round; the leaves are committed already
                log.warning("relay.head_failed", partition=key(tp), error=repr(exc), relay_id=self.options.relay_id)
                await self._on(tp, TransactionFailed())
                continue
            self._heads[tp] = (frontier.size, now)
            self._observe_log(tp, headed=True)
            log.info("relay.tree_head", log=name, size=frontier.size, root=frontier.root().hex(),
                     relay_id=self.options.relay_id)  # fmt: skip

    def _observe_log(self, tp: TopicPartition, headed: bool) -> None:
        name = log_id(tp.topic, tp.partition)
        if headed:
            self.metrics.log_head_time.labels(name).set(time.time())
        last = self._heads.get(tp)
        self.metrics.log_unheaded.labels(name).set(self._frontiers[tp].size - (last[0] if last else 0))

    # one partition's batch = one transaction -----------------------------------------------------
    def _log_records(
        self, tp: TopicPartition, decisions: list[Decision]
    ) -> tuple[list[OutRecord], Frontier | None, bool]:
        """The batch's leaves and any head due, and the tree after them (None: no decision log kept)."""
        if not self._log:
            return [], None, False
        return log_records(decisions, log_id(tp.topic, tp.partition), self._frontiers.get(tp, Frontier()),
                           self.topics.decision_log, self.options.signer, datetime.now(UTC),
                           last_head=self._heads.get(tp), policy=self._head_policy, clock=time.monotonic())  # fmt: skip

    def _plan(self, decision: Decision) -> list[OutRecord]:
        return plan(decision, self.topics, self.options.signer, self.options.relay_id, datetime.now(UTC), self.origin)

    async def _decide_all(
        self, tp: TopicPartition, records: list[InboundRecord]
    ) -> tuple[list[Decision], list[list[OutRecord]], Overlay]:
        """Decide and plan each record in order; stop at the first that fails and may still be tried again."""
        overlay = Overlay(self.state)
        decisions: list[Decision] = []
        plans: list[list[OutRecord]] = []
        for record in records:
            try:
                decision = self._decide(record, self.ctx, overlay)
                if decision.reference_missing:
                    # The referenced message may have been forwarded by another instance moments ago.
                    await self._reader.catch_up()
                    decision = self._decide(record, self.ctx, overlay)
                out = self._plan(decision)
            except (KafkaError, TimeoutError):
                raise  # the broker's fault, not the record's: the whole batch is tried again
            except Exception as exc:  # noqa: BLE001 - any other failure is this record's: bounded retries
                verdict = await self._record_failed(tp, record.offset, exc)
                if verdict.do is Do.RETRY_LATER:
                    return decisions, plans, overlay
                decision = set_aside(record, self.ctx, ReasonCode.INTERNAL_ERROR, exc, verdict.attempts)
                try:
                    out = self._plan(decision)
                except Exception:  # noqa: BLE001 - its headers may be what fails: keep only where it came from
                    bare = InboundRecord(record.topic, record.partition, record.offset, None, None, [], -1)
                    decision = set_aside(bare, self.ctx, ReasonCode.INTERNAL_ERROR, exc, verdict.attempts)
                    out = self._plan(decision)
            for write in decision.state_writes:
                overlay.put(write)
            decisions.append(decision)
            plans.append(out)
        return decisions, plans, overlay

    async def _process(self, tp: TopicPartition, raw: list[Any]) -> bool:
        """Decide one partition's batch and commit it; False when the broker failed us (retry with backoff)."""
        p = self._parts.get(tp)
        if p is None or p.next is None:
            # Not claimed (yet, or again after a failed transaction): the claim seeks back to the committed
            # offset, so these records are fetched again once it is done.
            if p is None:
                await self._on(tp, Assigned())
            else:
                self._claim_in_background(tp)
            return True
        expected = p.next
        records = [inbound(r) for r in raw if r.offset >= expected]
        if not records:
            return True
        self.watch.fetched(key(tp), records[0].timestamp_ms / 1000.0 if records[0].timestamp_ms >= 0 else None,
                           time.time())  # fmt: skip
        try:
            decisions, plans, overlay = await self._decide_all(tp, records)
        except (KafkaError, TimeoutError) as exc:
            log.warning("relay.state_unavailable", partition=key(tp), error=repr(exc), relay_id=self.options.relay_id)
            self.watch.failed(key(tp), repr(exc))
            self._consumer.seek(tp, expected)
            return False
        return await self._commit(tp, decisions, plans, overlay) if decisions else True

    async def _commit(
        self, tp: TopicPartition, decisions: list[Decision], plans: list[list[OutRecord]], overlay: Overlay
    ) -> bool:
        """Write every planned record and the input offset in one transaction; apply state once committed."""
        first, last = decisions[0].record.offset, decisions[-1].record.offset
        try:
            producer = await self._producer_for(tp)
            started = time.perf_counter()
            logged, after, headed = self._log_records(tp, decisions)
            offsets: dict[TopicPartition, Any] = {tp: last + 1 if after is None else (last + 1, metadata_of(after))}
            await transact(producer, (o for planned in [*plans, logged] for o in planned), offsets, self.group_id)
        except Exception as exc:  # noqa: BLE001 - any failure: nothing was committed, retry the batch
            fenced = isinstance(exc, ProducerFenced)
            log.warning(
                "relay.fenced" if fenced else "relay.transaction_failed",
                partition=key(tp),
                first_offset=first,
                error=repr(exc),
                relay_id=self.options.relay_id,
            )
            self.watch.failed(key(tp), f"transaction failed: {exc!r}")
            await self._on(tp, TransactionFailed())  # back to where deciding stood, and claimed again
            return False
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if after is not None:
            self._frontiers[tp] = after
            if headed:
                self._heads[tp] = (after.size, time.monotonic())
            self._observe_log(tp, headed)
        await self._on(tp, Committed(last))
        if self.watch.committed(key(tp), last + 1):
            log.info("relay.partition_moving", partition=key(tp), next_offset=last + 1, relay_id=self.options.relay_id)
        for write in overlay.pending.values():
            self.state.apply(write)
        for decision in decisions:
            self.counts[decision.kind] = self.counts.get(decision.kind, 0) + 1
        observe(decisions, self.options.relay_id, self.metrics)
        if self.links is not None:
            self.links.heard(decisions)
        if any(d.kind is not Outcome.BEACON for d in decisions):
            committed(tp, decisions, self.options.relay_id)
        return True
