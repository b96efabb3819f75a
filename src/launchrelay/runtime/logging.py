"""structlog configured once: JSON lines in production, readable output on a terminal."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable

import structlog

from launchrelay.settings import LogFormat


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto") -> None:
    """Set up structlog and the stdlib root logger (aiokafka logs through it)."""
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Library records (aiokafka) go through the same renderer: one JSON object per
    # line in production, never a plain-text line among them.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.stdlib.ExtraAdder(allow=("repeated", "persisted_s")),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(TransientFilter())
    handler.addFilter(RepeatFilter())
    _library_loggers(remove=_library_filter())  # the root's filter summarises repeats here, with counts
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(numeric, logging.WARNING))


@functools.cache
def _library_filter() -> RepeatFilter:
    return RepeatFilter()


@functools.cache
def _transient_filter() -> TransientFilter:
    return TransientFilter()


def quiet_library_logs(prefix: str = "aiokafka") -> None:
    """Hold the Kafka client's own log records to one per kind per window, in a program that uses the SDK
    without this package's logging set-up (a filter on each of the library's loggers; the root is left alone).

    A logger's filter sees only records logged to it, not its children's, so each is given the filter."""
    shared, transient = _library_filter(), _transient_filter()
    for logger in _library_loggers(prefix):
        for f in (transient, shared):  # in this order: a held record is not counted as a repeat
            if f not in logger.filters:
                logger.addFilter(f)


def _library_loggers(prefix: str = "aiokafka", remove: logging.Filter | None = None) -> list[logging.Logger]:
    """The loggers under ``prefix`` that exist now; ``remove``: take that filter off each."""
    found = [
        logger for name, logger in list(logging.Logger.manager.loggerDict.items())
        if (name == prefix or name.startswith(prefix + ".")) and isinstance(logger, logging.Logger)
    ]  # fmt: skip
    if remove is not None:
        for logger in found:
            logger.removeFilter(remove)
            logger.removeFilter(_transient_filter())
    return found


class RepeatFilter(logging.Filter):
    """Let one record of a kind through per window; the next one of that kind says how many were held back.

    A client that cannot reach the broker logs the same warning for every
    attempt, hundreds in a few seconds of outage. A kind is the logger, level and
    message template, so a different host or error in the arguments does not
    make it new.
    """

    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        first, held = self._seen.get(key, (None, 0))
        if first is not None and now - first < self.window_s:
            self._seen[key] = (first, held + 1)
            return False
        if len(self._seen) > 1000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.repeated = held
        return True


class TransientFilter(logging.Filter):
    """Keep the Kafka client's "…, retrying" warnings out of sight unless the condition persists.

    aiokafka warns of every retriable answer it retries. Some are routine: right after a broker restarts, a
    single-node cluster answers a produce ``NotEnoughReplicas`` for a moment (Kafka 4's eligible leader replicas,
    KIP-966: a broker that shut down cleanly left each partition's ISR empty, and the leader it is elected
    again serves writes only once it has put itself back in the ISR); during a leader change, ``NotLeader``.
    The client retries and succeeds, nothing is wrong, yet the operator sees warnings. Such a record is held
    while its kind (logger, message template and error) has been seen for less than ``persist_s``; one that
    goes on longer passes, once per ``persist_s``, with ``persisted_s`` and ``repeated`` (the held count).
    A kind not seen for ``quiet_s`` starts afresh.
    """

    def __init__(self, persist_s: float = 15.0, quiet_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.persist_s, self.quiet_s = persist_s, quiet_s
        self._clock = clock
        #: kind -> (first seen in this run, last seen, held since the last one let through)
        self._seen: dict[tuple[str, str, str], tuple[float, float, int]] = {}

    @staticmethod
    def transient(record: logging.LogRecord) -> bool:
        text = str(record.msg).lower()
        return (
            record.name.startswith("aiokafka")
            and record.levelno == logging.WARNING
            and ("retrying" in text or "will retry" in text)
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.transient(record):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        kind = (record.name, str(record.msg), str(args[-1]) if args else "")
        now = self._clock()
        first, last, held = self._seen.get(kind, (now, now, 0))
        if now - last > self.quiet_s:
            first, held = now, 0
        if now - first < self.persist_s:
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[kind] = (first, now, held + 1)
            return False
        record.persisted_s = round(now - first, 1)
        record.repeated = held
        self._seen[kind] = (now, now, 0)
        return True
