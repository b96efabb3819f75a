"""Two-centre mode: the relay's side of each link to a counterpart centre.

Every ``beacon_every_s`` the relay writes a small signed beacon to each outgoing link topic; the counterpart's
mirror copies it like everything else, and the counterpart's relay, reading it, knows the whole path is alive
(this relay, this cluster, the mirror, its own cluster). Here, whatever arrives over an incoming link (a beacon,
a receipt, a party's message) is "heard": a link not heard from for ``[links.XX] silent_after`` is reported silent
(one WARNING per interval, ``launchrelay_link_silent`` 1, and the readiness text), and heard again with how long
it was silent. Nothing here decides a record's fate: that stays in :func:`launchrelay.relay.decide.decide`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from launchrelay.agreements.config import Deployment
from launchrelay.contract.headers import LINK_BEACON
from launchrelay.relay.decide import Decision
from launchrelay.relay.metrics import RelayMetrics
from launchrelay.signing import Signer

log = structlog.get_logger("launchrelay.relay")

#: how often a beacon goes out on each link
BEACON_EVERY_S = 5.0


def beacon(centre: str, relay_id: str, at: datetime) -> bytes:
    """A beacon's bytes (JSON); signed like a receipt, keyed ``beacon``."""
    return json.dumps({"beacon": True, "centre": centre, "relay": relay_id, "at": at.isoformat()}).encode()


class Links:
    """Beacons out, silence watched in; the I/O around the links (the service calls :meth:`heard`)."""

    def __init__(
        self,
        deployment: Deployment,
        signer: Signer,
        relay_id: str,
        metrics: RelayMetrics,
        producer: Callable[[], AIOKafkaProducer],
        *,
        every_s: float = BEACON_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert deployment.centre is not None
        self.here = deployment.centre.party
        self.topics = deployment.topics
        self.links = deployment.links
        self._signer, self._relay_id, self._metrics = signer, relay_id, metrics
        self._new_producer = producer
        self._producer: AIOKafkaProducer | None = None
        self.every_s, self._clock = every_s, clock
        started = clock()
        self.last_heard = {code: started for code in self.links}  # a grace of silent_after from the start
        self.silent_since: dict[str, float] = {}
        self._warned_at: dict[str, float] = {}

    def heard(self, decisions: list[Decision]) -> None:
        """Records arrived over links (their broker time here): those links are alive."""
        for d in decisions:
            if d.link is None:
                continue
            at = d.record.received_at.timestamp() if d.record.received_at else self._clock()
            self.last_heard[d.link] = max(self.last_heard.get(d.link, 0.0), at)

    def check(self) -> None:
        """Report links that fell silent or came back (one WARNING per interval while silent)."""
        now = self._clock()
        for code, link in self.links.items():
            quiet = now - self.last_heard.get(code, now)
            limit = link.silent_after.total_seconds()
            if quiet >= limit:
                self._metrics.link_silent.labels(code).set(1)
                self.silent_since.setdefault(code, self.last_heard[code])
                if now - self._warned_at.get(code, 0.0) >= limit:
                    self._warned_at[code] = now
                    log.warning("relay.link_silent", link=code, silent_s=round(quiet), relay_id=self._relay_id)
            elif code in self.silent_since:
                since = self.silent_since.pop(code)
                self._warned_at.pop(code, None)
                self._metrics.link_silent.labels(code).set(0)
                log.info("relay.link_heard", link=code, silent_s=round(self.last_heard[code] - since),
                         relay_id=self._relay_id)  # fmt: skip

    def problem(self) -> str | None:
        """For the readiness text: which links are silent (the relay still works for its own party)."""
        if not self.silent_since:
            return None
        now = self._clock()
        return "; ".join(f"link to {c} silent for {round(now - s)}s" for c, s in sorted(self.silent_since.items()))

    async def send_beacons(self) -> None:
        """One beacon to each linked centre; a failure is logged and tried again at the next interval."""
        if self._producer is None:
            self._producer = self._new_producer()
            try:
                await self._producer.start()
            except (KafkaError, OSError) as exc:
                log.warning("relay.beacon_failed", error=repr(exc)[:200], relay_id=self._relay_id)
                await self._drop()
                return
        value = beacon(self.here, self._relay_id, datetime.now(UTC))
        headers = [(LINK_BEACON, b"1"), *self._signer.headers(value)]
        producer = self._producer
        try:
            async with asyncio.timeout(self.every_s * 2):
                await asyncio.gather(*[
                    producer.send_and_wait(self.topics.link_out(code), value, key=b"beacon", headers=headers)
                    for code in self.links
                ])  # fmt: skip
        except (KafkaError, TimeoutError) as exc:
            log.warning("relay.beacon_failed", error=repr(exc)[:200], relay_id=self._relay_id)
            await self._drop()  # a fresh producer next time (a lost batch leaves an idempotent one stuck)

    async def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await producer.stop()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self.send_beacons()
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.every_s)
        await self._drop()
