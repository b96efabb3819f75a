"""Run the tracker as a process: settings in, SIGTERM handled, exit code out."""

from __future__ import annotations

from launchrelay.runtime.process import prepare, serve
from launchrelay.settings import Settings
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.metrics import TrackerMetrics
from launchrelay.tracker.service import TrackerOptions, TrackerService


async def run_tracker(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; the ledger is closed on the way out."""
    p = await prepare(settings, "tracker")
    ledger = SqliteLedger.recovered(settings.ledger_path())
    metrics = TrackerMetrics()
    options = TrackerOptions(
        bootstrap=p.bootstrap,
        tracker_id=settings.tracker_id,
        signer=p.signer,
        tick_s=settings.tracker_tick_s,
        event_attempts=settings.record_attempts,
        stall_after_s=settings.stall_after_s,
        hooks=metrics,
        client_options=settings.kafka_options(),
    )
    service = TrackerService(p.deployment, options, ledger)
    try:
        await serve(service, settings, metrics)
    finally:
        ledger.close()
    return 0
