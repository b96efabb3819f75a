"""The relay's state topic, read back: every committed state record into the memory the decisions use."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from launchrelay.kafka.consume import FETCH_WAIT_MS, behind, partitions_of
from launchrelay.relay.state import MemoryState, SeenMessage

log = structlog.get_logger("launchrelay.relay")


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
            # A catch-up waits for the consumer to learn its position; with the default 500 ms fetch wait
            # every catch-up took half a second even with nothing to read, and claims queued behind it.
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        self._parts: list[TopicPartition] = []
        self._lock = asyncio.Lock()
        #: catch-ups asked for so far, and how many of them a finished catch-up has answered
        self._asked = 0
        self._answered = 0

    async def start(self) -> None:
        await self._consumer.start()
        self._parts = await partitions_of(self._consumer, self._topic)
        self._consumer.assign(self._parts)
        await self._consumer.seek_to_beginning(*self._parts)
        # Paused between catch-ups: an assigned partition is fetched in the background all the time (every
        # 10 ms when there is nothing new), which an idle relay paid for in CPU; what it would have read,
        # the next catch-up reads.
        self._consumer.pause(*self._parts)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def catch_up(self, timeout_s: float = 60.0) -> int:
        """Read until every partition reaches its last stable offset as of now; returns records read.

        Callers that ask while a catch-up runs share the next one: it starts after they asked, so
        it sees everything committed before (what a claim needs after fencing), and nine claims of
        a rebalance cost two catch-ups, not nine in a row.
        """
        self._asked += 1
        ticket = self._asked
        async with self._lock:
            if self._answered >= ticket:
                return 0  # a catch-up that started after this call was made has finished meanwhile
            through = self._asked
            read = await self._read_to_end(timeout_s)
            self._answered = through
            return read

    async def _read_to_end(self, timeout_s: float) -> int:
        ends = await self._consumer.end_offsets(self._parts)
        self._consumer.resume(*self._parts)
        try:
            return await self._read_until(ends, timeout_s)
        finally:
            self._consumer.pause(*self._parts)

    async def _read_until(self, ends: dict[TopicPartition, int], timeout_s: float) -> int:
        read = 0
        async with asyncio.timeout(timeout_s):
            while await behind(self._consumer, ends):
                batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batch.values():
                    for rec in records:
                        if rec.value is not None:
                            self._apply(rec)
                            read += 1
                        elif rec.key is not None:  # a tombstone: the id was forgotten
                            self._state.forget(rec.key.decode(errors="replace"))
        return read

    def _apply(self, rec: ConsumerRecord) -> None:
        """Add one state record; one that cannot be read is named in an ERROR line and skipped.

        Only the relay writes this topic, so this means damage or a foreign
        writer. Stopping would halt every party's traffic; skipping costs at
        most the duplicate check for the one message id the record held.
        """
        try:
            # Holding it is part of reading it: a record of the right shape can still carry values the packed
            # state cannot hold (a digest that is not one, a negative partition).
            self._state.apply(SeenMessage.from_bytes(rec.value))
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            log.error(  # noqa: TRY400 - the reason is in `error`; a traceback would add nothing
                "relay.state_unreadable", topic=rec.topic, partition=rec.partition, offset=rec.offset,
                key=rec.key.decode(errors="replace") if rec.key else None, error=str(exc)[:200],
            )  # fmt: skip
