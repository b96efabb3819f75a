"""What the relay and tracker processes share at start-up: config, the relay's key, topics, signals."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, Gauge

from launchrelay.access import Role, access_plan
from launchrelay.agreements.config import Deployment, load_config
from launchrelay.errors import ConfigError
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.runtime.health import OpsServer
from launchrelay.settings import Settings
from launchrelay.signing import Signer

log = structlog.get_logger("launchrelay.runtime")


@dataclass(frozen=True)
class Prepared:
    deployment: Deployment
    signer: Signer
    bootstrap: str


async def prepare(settings: Settings, who: Role) -> Prepared:
    """Load the config and the relay's signing key, and make sure the topics this service uses exist."""
    deployment = load_config(settings.config)
    if settings.relay_key is None:
        raise ConfigError(f"the {who} signs receipts with the relay's key: set LAUNCHRELAY_RELAY_KEY to its PEM file")
    signer = Signer.from_file(settings.relay_key_id, settings.relay_key)
    check_relay_key(deployment, signer)
    bootstrap = settings.bootstrap()
    r = deployment.relay
    specs = topic_specs(deployment.topics, list(deployment.parties), r.partitions, r.replication_factor,
                        r.max_message_bytes, decision_log=r.decision_log)  # fmt: skip
    # Only the topics this service is granted: under ACLs it cannot see (or create) the others.
    uses = {g.name for p in access_plan(deployment) if p.role == who for g in p.grants if g.resource == "topic"}
    specs = [s for s in specs if s.name in uses]
    await ensure_topics(bootstrap, specs, client_options=settings.kafka_options())
    return Prepared(deployment, signer, bootstrap)


def check_relay_key(deployment: Deployment, signer: Signer) -> None:
    """The key this process signs with must be the one the config publishes to counterparts."""
    published = deployment.relay.keys
    if not published:
        log.warning("relay_key.unpublished", key_id=signer.key_id,
                    hint=f'add [relay] keys = {{ {signer.key_id} = "{signer.public_b64}" }} so counterparts can '
                    "verify receipts")  # fmt: skip
        return
    if signer.key_id not in published:
        raise ConfigError(
            f"LAUNCHRELAY_RELAY_KEY_ID={signer.key_id!r} is not among [relay] keys ({', '.join(published)}): "
            "counterparts could not verify what this process signs"
        )
    if published[signer.key_id] != signer.public_b64:
        raise ConfigError(
            f"LAUNCHRELAY_RELAY_KEY is not the key [relay] keys.{signer.key_id} publishes (its public half is "
            f"{signer.public_b64}): counterparts could not verify what this process signs"
        )


def operator_signer(deployment: Deployment, settings: Settings) -> Signer:
    """The operator key a redrive is signed with; it must be one ``[relay] operator_keys`` registers."""
    if settings.operator_key is None:
        raise ConfigError(
            "a redrive is signed by an operator's key: set LAUNCHRELAY_OPERATOR_KEY to its PEM file "
            "(`launchrelay keygen` makes one; register its public half in [relay] operator_keys)"
        )
    signer = Signer.from_file(settings.operator_key_id, settings.operator_key)
    registered = deployment.relay.operator_keys.get(signer.key_id)
    if registered != signer.public_b64:
        raise ConfigError(
            f"the operator key {signer.key_id!r} is not registered in [relay] operator_keys "
            f'(add {signer.key_id} = "{signer.public_b64}"): the relay would ignore its redrives'
        )
    return signer


def stop_on_signals(request_stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT ask the service to stop after the work in hand."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)


#: the cyclic collector's thresholds for a long-running service (Python's defaults: 700, 10, 10)
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Collect cycles less often, and never scan what start-up built again.

    A relay or tracker allocates a few hundred short-lived objects per record (models, dicts, records)
    and keeps a growing state cache beside them; at Python's defaults the collector walked that cache
    often enough to cost a fifth of the relay's CPU per notice (bench/results: 0.39 -> 0.31 ms). What
    start-up built (modules, config, boundaries) is frozen out of the collector's generations."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Service(Protocol):
    async def start(self) -> None: ...
    async def run(self) -> None: ...
    async def stop(self) -> None: ...
    def request_stop(self) -> None: ...
    def ready(self) -> tuple[bool, str]: ...


class ServiceMetrics(Protocol):
    registry: CollectorRegistry
    ready: Gauge


async def serve(service: Service, settings: Settings, metrics: ServiceMetrics) -> None:
    """Run a service until a signal stops it, with /metrics, /healthz and /readyz when a port is set."""
    stop_on_signals(service.request_stop)
    ops = None
    if settings.metrics_port is not None:
        ops = OpsServer(settings.metrics_host, settings.metrics_port, metrics.registry, service.ready, metrics.ready)
        await ops.start()
    try:
        await service.start()
        tune_gc()
        await service.run()
    finally:
        await service.stop()
        if ops is not None:
            await ops.stop()
