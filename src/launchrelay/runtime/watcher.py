"""The watch over a service's input partitions, asking the broker: lag, the oldest pending record, stalls, outages.

Every few seconds one ListOffsets request says where each partition ends; with
where deciding stands (``PartitionWatch``, fed by the service as it fetches and
commits) that is the lag and the age of the oldest record waiting. A partition
waiting longer than the stall limit is logged once per interval and fails
readiness; a broker that does not answer is logged once per interval and again,
with the outage's length, when it is back. The relay and the tracker each run one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from launchrelay.runtime.watch import Outage, PartitionWatch

log = structlog.get_logger("launchrelay.runtime")


def key(tp: TopicPartition) -> str:
    """How a partition is named in logs, readiness and the watch: ``topic:partition``."""
    return f"{tp.topic}:{tp.partition}"


class Gauges(Protocol):
    """Where a service's metrics take what the watcher learns."""

    def on_partition(self, topic: str, partition: int, lag: int, oldest_pending_s: float) -> None: ...
    def on_fetch_error(self, error: str) -> None: ...
    def on_contact(self, at: float) -> None: ...


class Watcher:
    """One service's watch: ``watch`` is fed by the service; :meth:`run` asks the broker and reports."""

    def __init__(
        self,
        name: str,
        consumer: AIOKafkaConsumer,
        partitions: Callable[[], list[TopicPartition]],
        gauges: Gauges,
        *,
        stall_after_s: float,
        every_s: float,
        unpositioned: Callable[[TopicPartition], Awaitable[int | None]] | None = None,
        held: Callable[[TopicPartition], int | None] | None = None,
        ids: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.watch = PartitionWatch(stall_after_s)
        self._outage = Outage(stall_after_s)
        self._consumer = consumer
        self._partitions = partitions
        self._gauges = gauges
        self._every_s = every_s
        self._unpositioned = unpositioned
        #: the first offset a service has fetched but not yet taken up (fetched is not decided)
        self._held = held
        self._ids = ids or {}
        self.last_contact = time.monotonic()

    def problem(self) -> str | None:
        """Why the service is not ready, as far as the watch knows: a stall (named) or a silent broker."""
        stalls = self.watch.stalls(time.time())
        if stalls:
            named = "; ".join(
                f"{s.key} has waited {s.waited_s:.0f}s with {s.lag} behind" + (f" ({s.error})" if s.error else "")
                for s in stalls
            )
            return f"stalled: {named}"
        silent = time.monotonic() - self.last_contact
        if silent > self.watch.stall_after_s:
            return f"no answer from the broker in {silent:.0f}s"
        return None

    async def beside(self, work: Awaitable[None], stopping: asyncio.Event) -> None:
        """Run ``work`` with this watch looking on every few seconds; the watch ends when the work does."""
        watch = asyncio.create_task(self.run(stopping))
        try:
            await work
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._every_s)
            if not stopping.is_set():
                await self.look()

    async def _position(self, tp: TopicPartition) -> int | None:
        """The consumer's fetch position of ``tp``, when it has one (not while it is being claimed or revoked)."""
        held = self._held(tp) if self._held is not None else None
        if held is not None:
            return held
        try:
            return await asyncio.wait_for(self._consumer.position(tp), 1.0)
        except (KafkaError, TimeoutError):
            return None

    async def look(self) -> None:
        """Ask the broker where each partition ends; update lag, oldest pending, stalls and the outage."""
        parts = sorted(self._partitions())
        if not parts:
            return
        try:
            ends = await asyncio.wait_for(self._consumer.end_offsets(parts), self._every_s)
            for tp in parts:
                known = self.watch.partitions.get(key(tp))
                if self._unpositioned is not None and (known is None or known.next_offset is None):
                    self.watch.positioned(key(tp), await self._unpositioned(tp) or 0)
        except (KafkaError, TimeoutError) as exc:
            self._gauges.on_fetch_error(type(exc).__name__)
            now = time.monotonic()
            if self._outage.failed(repr(exc), now):
                since = now - (self._outage.since or now)
                log.warning(f"{self.name}.broker_unreachable", for_s=round(since), error=repr(exc), **self._ids)
            return
        self.last_contact = time.monotonic()
        self._gauges.on_contact(time.time())
        length = self._outage.recovered(self.last_contact)
        if length is not None:
            log.info(f"{self.name}.broker_reachable", outage_s=round(length, 1), **self._ids)
        now = time.time()
        for tp in parts:
            self.watch.ends(key(tp), ends[tp], now, await self._position(tp))
            state = self.watch.partitions[key(tp)]
            self._gauges.on_partition(tp.topic, tp.partition, state.lag, self.watch.oldest_pending_s(key(tp), now))
        for stall in self.watch.due_reports(now):
            log.warning(f"{self.name}.partition_stalled", partition=stall.key, waited_s=round(stall.waited_s),
                        lag=stall.lag, error=stall.error, **self._ids)  # fmt: skip
