"""Run the tracker as a process: settings in, SIGTERM handled, exit code out."""

from __future__ import annotations

import asyncio
import signal

from launchrelay.agreements.config import load_config
from launchrelay.broker.admin import ensure_topics, topic_specs
from launchrelay.errors import ConfigError
from launchrelay.ops.health import OpsServer
from launchrelay.ops.metrics import TrackerMetrics
from launchrelay.settings import Settings
from launchrelay.signing import Signer
from launchrelay.topics import Topics
from launchrelay.tracker.ledger import SqliteLedger
from launchrelay.tracker.service import TrackerOptions, TrackerService


async def run_tracker(settings: Settings) -> int:
    deployment = load_config(settings.config)
    if settings.relay_key is None:
        raise ConfigError("the tracker signs overdue receipts with the relay's key: set LAUNCHRELAY_RELAY_KEY")
    signer = Signer.from_file(settings.relay_key_id, settings.relay_key)
    bootstrap = settings.bootstrap()
    relay = deployment.relay
    await ensure_topics(
        bootstrap,
        topic_specs(Topics(relay.topic_prefix), list(deployment.parties), relay.partitions,
                    relay.replication_factor, relay.max_message_bytes),
        client_options=settings.kafka_options(),
    )  # fmt: skip
    ledger = SqliteLedger(settings.ledger_path())
    metrics = TrackerMetrics()
    service = TrackerService(
        deployment,
        TrackerOptions(bootstrap=bootstrap, tracker_id=settings.tracker_id, signer=signer,
                       tick_s=settings.tracker_tick_s, hooks=metrics, client_options=settings.kafka_options()),
        ledger,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
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
