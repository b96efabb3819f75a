"""Run the relay as a process: settings in, SIGTERM handled, exit code out."""

from __future__ import annotations

from launchrelay.relay.service import RelayOptions, RelayService
from launchrelay.runtime.process import prepare, serve
from launchrelay.settings import Settings


async def run_relay(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT: stop fetching, finish the transaction in hand, exit 0."""
    p = await prepare(settings, "relay")
    options = RelayOptions(
        bootstrap=p.bootstrap,
        relay_id=settings.relay_id,
        signer=p.signer,
        batch_size=settings.relay_batch,
        fetch_max_wait_ms=settings.relay_fetch_wait_ms,
        record_attempts=settings.record_attempts,
        stall_after_s=settings.stall_after_s,
        forget_every_s=settings.relay_forget_every_s,
        client_options=settings.kafka_options(),
    )
    service = RelayService(p.deployment, options)
    await serve(service, settings, service.metrics)
    return 0
