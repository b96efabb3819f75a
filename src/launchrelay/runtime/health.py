"""A small HTTP endpoint per process: /metrics (Prometheus), /healthz (alive), /readyz (ready to work).

Served by uvicorn in the service's event loop; /metrics is prometheus_client's own ASGI exposition: the
format the scraper asks for in ``Accept`` (the text format, or OpenMetrics), gzipped when it accepts gzip.
Every registry also carries the process and platform collectors and ``launchrelay_ready`` (see
:func:`standard_metrics`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = structlog.get_logger("launchrelay.ops")

Readiness = Callable[[], tuple[bool, str]]


def standard_metrics(registry: CollectorRegistry) -> tuple[Gauge, Gauge]:
    """Add the process (CPU, memory, file descriptors, start time) and platform collectors to ``registry``, and
    ``launchrelay_ready`` (tied to /readyz by :class:`OpsServer`) and ``launchrelay_broker_contact_timestamp_seconds``
    (set by the partition watcher); returns those two gauges."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    ready = Gauge("launchrelay_ready", "1 when /readyz answers 200 (ready to work), else 0", registry=registry)
    contact = Gauge("launchrelay_broker_contact_timestamp_seconds",
                    "When the broker last answered the partition watch (Unix time)", registry=registry)  # fmt: skip
    return ready, contact


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
