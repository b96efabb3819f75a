"""A small HTTP endpoint per process: /metrics (Prometheus), /healthz (alive), /readyz (ready to work).

Served by uvicorn in the service's event loop; /metrics is prometheus_client's own ASGI exposition: the
format the scraper asks for in ``Accept`` (the text format, or OpenMetrics), gzipped when it accepts gzip.
What every service's registry carries besides its own metrics: :class:`WatchedMetrics`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, PlatformCollector, ProcessCollector, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = structlog.get_logger("launchrelay.ops")

Readiness = Callable[[], tuple[bool, str]]


class WatchedMetrics:
    """What every service serves, in its own registry: the process (CPU, memory, file descriptors, start time) and
    platform collectors, ``launchrelay_ready`` (tied to /readyz by :class:`OpsServer`), and what its partition
    watch learns (:class:`launchrelay.runtime.watcher.Gauges`): lag and the oldest waiting record per input
    partition, failed reads, the broker's last answer. The relay's and the tracker's metrics build on it."""

    def __init__(self, registry: CollectorRegistry | None, *, lag_help: str, oldest_help: str) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.ready = Gauge("launchrelay_ready", "1 when /readyz answers 200 (ready to work), else 0", registry=r)
        contact = "When the broker last answered the partition watch (Unix time)"
        self.broker_contact = Gauge("launchrelay_broker_contact_timestamp_seconds", contact, registry=r)
        self.consumer_lag = Gauge("launchrelay_consumer_lag", lag_help, ["topic", "partition"], registry=r)
        self.oldest_pending = Gauge("launchrelay_oldest_pending_seconds", oldest_help, ["topic", "partition"],
                                    registry=r)  # fmt: skip
        self.fetch_errors = Counter(
            "launchrelay_fetch_errors", "Failed reads from the broker, by error", ["error"], registry=r
        )

    def on_partition(self, topic: str, partition: int, lag: int, oldest_pending_s: float) -> None:
        self.consumer_lag.labels(topic, str(partition)).set(lag)
        self.oldest_pending.labels(topic, str(partition)).set(oldest_pending_s)

    def on_contact(self, at: float) -> None:
        self.broker_contact.set(at)

    def on_fetch_error(self, error: str) -> None:
        self.fetch_errors.labels(error).inc()


class _ServiceServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM and SIGINT, and stops this server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Asgi:
    """Wraps an ASGI callable so Starlette's router hands it the raw request (not a Request object)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def ops_app(registry: CollectorRegistry, ready: Readiness) -> Starlette:
    """/metrics (prometheus_client's own ASGI exposition), /healthz and /readyz."""

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ok, why = ready()
        return PlainTextResponse(why + "\n", status_code=200 if ok else 503)

    routes = [
        Route("/metrics", _Asgi(make_asgi_app(registry=registry))),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    return Starlette(routes=routes)


class OpsServer:
    """Serves the three paths on ``host:port`` (uvicorn, in the service's own event loop)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, ready: Readiness, ready_gauge: Gauge | None = None
    ) -> None:
        self.host, self.port = host, port
        if ready_gauge is not None:  # launchrelay_ready says on /metrics what /readyz says
            ready_gauge.set_function(lambda: 1.0 if ready()[0] else 0.0)
        config = uvicorn.Config(ops_app(registry, ready), host=host, port=port, log_config=None, access_log=False,
                                lifespan="off")  # fmt: skip
        self._server = _ServiceServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task  # it could not listen: its error
                raise OSError(f"cannot serve on {self.host}:{self.port}")
            await asyncio.sleep(0.02)
        log.info("ops.listening", host=self.host, port=self.port, paths=["/metrics", "/healthz", "/readyz"])

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
