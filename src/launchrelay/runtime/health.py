"""A small HTTP endpoint per process: /metrics (Prometheus), /healthz (alive), /readyz (ready to work).

/metrics is prometheus_client's own exposition: the format the scraper asks for in ``Accept`` (the text
format, or OpenMetrics), gzipped when it accepts gzip. Every registry also carries the process and platform
collectors and ``launchrelay_ready`` (see :func:`standard_metrics`)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

log = structlog.get_logger("launchrelay.ops")

Readiness = Callable[[], tuple[bool, str]]


def standard_metrics(registry: CollectorRegistry) -> Gauge:
    """Add the process (CPU, memory, file descriptors, start time) and platform collectors to ``registry``, and
    ``launchrelay_ready``; returns that gauge, which :func:`launchrelay.runtime.process.serve` ties to /readyz."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return Gauge("launchrelay_ready", "1 when /readyz answers 200 (ready to work), else 0", registry=registry)


def metrics_response(registry: CollectorRegistry, accept: str, accept_encoding: str) -> tuple[str, bytes, bool]:
    """(content type, body, gzipped) of the exposition of ``registry`` in the format ``accept`` asks for."""
    encoder, content_type = choose_encoder(accept)
    body = encoder(registry)
    zipped = "gzip" in accept_encoding.lower()
    return content_type, gzip.compress(body) if zipped else body, zipped


class OpsServer:
    """Serves the three paths on ``host:port`` with asyncio streams (no web framework needed)."""

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, ready: Readiness, ready_gauge: Gauge | None = None
    ) -> None:
        self.host, self.port = host, port
        self._registry = registry
        self._ready = ready
        if ready_gauge is not None:  # launchrelay_ready says on /metrics what /readyz says
            ready_gauge.set_function(lambda: 1.0 if ready()[0] else 0.0)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        log.info("ops.listening", host=self.host, port=self.port, paths=["/metrics", "/healthz", "/readyz"])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            headers: dict[str, str] = {}
            while line := (await asyncio.wait_for(reader.readline(), 5)).strip():
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            parts = request.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else "/"
            extra = ""
            if path == "/metrics":
                ctype, body, zipped = metrics_response(
                    self._registry, headers.get("accept", ""), headers.get("accept-encoding", "")
                )
                status, extra = 200, "Content-Encoding: gzip\r\n" if zipped else ""
            elif path == "/healthz":
                status, ctype, body = 200, "text/plain", b"ok\n"
            elif path == "/readyz":
                ok, why = self._ready()
                status, ctype, body = (200 if ok else 503), "text/plain", (why + "\n").encode()
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
