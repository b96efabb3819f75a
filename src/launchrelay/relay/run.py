"""Run the relay as a process: settings in, SIGTERM handled, exit code out."""

from __future__ import annotations

import asyncio
import signal

import structlog

from launchrelay.agreements.config import load_config
from launchrelay.broker.admin import ensure_topics, topic_specs
from launchrelay.errors import ConfigError
from launchrelay.ops.health import OpsServer
from launchrelay.relay.service import RelayOptions, RelayService
from launchrelay.settings import Settings
from launchrelay.signing import Signer
from launchrelay.topics import Topics

log = structlog.get_logger("launchrelay.relay")


async def run_relay(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT: stop fetching, finish the transaction in hand, exit 0."""
    deployment = load_config(settings.config)
    if settings.relay_key is None:
        raise ConfigError("the relay signs its receipts: set LAUNCHRELAY_RELAY_KEY to its PEM key file")
    signer = Signer.from_file(settings.relay_key_id, settings.relay_key)
    bootstrap = settings.bootstrap()
    topics = Topics(deployment.relay.topic_prefix)
    await ensure_topics(
        bootstrap,
        topic_specs(
            topics,
            list(deployment.parties),
            deployment.relay.partitions,
            deployment.relay.replication_factor,
            deployment.relay.max_message_bytes,
        ),
        client_options=settings.kafka_options(),
    )
    service = RelayService(
        deployment,
        RelayOptions(
            bootstrap=bootstrap,
            relay_id=settings.relay_id,
            signer=signer,
            batch_size=settings.relay_batch,
            client_options=settings.kafka_options(),
        ),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.request_stop)
    ops = None
    if settings.metrics_port is not None:
        ops = OpsServer(settings.metrics_host, settings.metrics_port, service.metrics.registry, service.ready)
        await ops.start()
    try:
        await service.start()
        await service.run()
    finally:
        await service.stop()
        if ops is not None:
            await ops.stop()
    return 0
