"""Run the tracker as a process: settings in, SIGTERM handled, exit code out."""

from __future__ import annotations

from launchrelay.ops.health import OpsServer
from launchrelay.ops.metrics import TrackerMetrics
from launchrelay.ops.process import prepare, stop_on_signals
from launchrelay.settings import Settings
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.service import TrackerOptions, TrackerService


async def run_tracker(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; the ledger is closed on the way out."""
    p = await prepare(settings, "tracker")
    ledger = SqliteLedger(settings.ledger_path())
    metrics = TrackerMetrics()
    options = TrackerOptions(
        bootstrap=p.bootstrap,
        tracker_id=settings.tracker_id,
        signer=p.signer,
        tick_s=settings.tracker_tick_s,
        hooks=metrics,
        client_options=settings.kafka_options(),
    )
    service = TrackerService(p.deployment, options, ledger)
    stop_on_signals(service.request_stop)
    ops = None
    if settings.metrics_port is not None:
        ops = OpsServer(settings.metrics_host, settings.metrics_port, metrics.registry, service.ready)
        await ops.start()
    try:
        await service.start()
        await service.run()
    finally:
        await service.stop()
        ledger.close()
        if ops is not None:
            await ops.stop()
    return 0
