"""The one exception tree of launchrelay.

::

    LaunchRelayError
    ├── ConfigError            bad settings or agreement configuration (not retriable)
    ├── ContractError          a document is not a valid message (also a ValueError)
    ├── BrokerError            the local broker could not be provisioned or started
    │   ├── BrokerToolMissing  java or mvn is not on PATH
    │   └── BrokerPortBusy     the port the broker wants is taken
    ├── KafkaRequestFailed     Kafka did not answer, or refused what was asked (retriable)
    ├── PublishError           a publish did not reach the broker (retriable)
    │   └── PublishRefused     the SDK will not publish this message (not retriable)
    ├── RedriveError           a dead letter that cannot be redriven
    ├── SignatureError         a signature or key could not be used
    └── ReceiptTimeout         no receipt arrived in time (retriable)

``retriable`` on the class tells a caller whether trying again can help.
Errors from libraries are wrapped at the boundary and re-raised ``from exc``:
:func:`kafka_errors` does it for the Kafka client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka.errors import KafkaError


class LaunchRelayError(Exception):
    """Base class of every error raised by launchrelay."""

    retriable: bool = False


class ConfigError(LaunchRelayError):
    """Configuration (settings or agreements) is invalid."""


class ContractError(LaunchRelayError, ValueError):
    """A document does not satisfy the message contract; ``reasons`` lists every way it fails."""

    def __init__(self, reasons: list[Any]) -> None:
        self.reasons = reasons
        listed = "; ".join(f"{r.code}: {r.field + ': ' if r.field else ''}{r.message}" for r in reasons[:5])
        more = f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else ""
        super().__init__(f"not a valid message: {listed}{more}")


class LedgerCorrupt(LaunchRelayError):
    """The tracker's ledger file is not a readable SQLite database."""

    def __init__(self, path: object, cause: str) -> None:
        self.path, self.cause = path, cause
        super().__init__(
            f"the ledger {path} is corrupt ({cause}): the tracker moves it aside and rebuilds it from the status "
            "topic when it next starts"
        )


class FormatTooNew(LaunchRelayError):
    """Something stored was written by a later release, in a format this one does not read: it stops rather
    than misread it."""

    def __init__(self, what: object, found: int, reads: int) -> None:
        self.what, self.found, self.reads = what, found, reads
        super().__init__(
            f"{what} is in format {found}, written by a later launchrelay; this release reads format {reads} and "
            "older: upgrade launchrelay (see CHANGELOG.md) or point it at data of its own release"
        )


class BrokerError(LaunchRelayError):
    """The local Kafka broker could not be provisioned, started or stopped."""


class BrokerToolMissing(BrokerError):
    """A tool the local broker needs (java, mvn) is not installed."""


class BrokerPortBusy(BrokerError):
    """The port the local broker would listen on is already taken."""


class KafkaRequestFailed(LaunchRelayError):
    """Kafka could not be reached, or refused a request (a topic missing, a permission lacking)."""

    retriable = True


class PublishError(LaunchRelayError):
    """A message could not be written to Kafka."""

    retriable = True


class PublishTimeout(PublishError):
    """Kafka did not confirm a record within the caller's deadline. It may still be written: publishing the
    same message again is safe (the relay answers a repeat with a DUPLICATE receipt, forwarding nothing)."""


class PublishRefused(PublishError):
    """The message cannot be published as given (for example, another party's sender)."""

    retriable = False


class RedriveError(LaunchRelayError):
    """A dead letter that cannot be redriven (not found, or not from a party's out topic)."""


class SignatureError(LaunchRelayError):
    """A key or signature could not be loaded or produced."""


class ReceiptTimeout(LaunchRelayError):
    """The relay's receipt did not arrive within the caller's timeout."""

    retriable = True


@contextmanager
def kafka_errors(doing: str, wrap: type[LaunchRelayError] = KafkaRequestFailed) -> Iterator[None]:
    """Re-raise the Kafka client's errors (and timeouts) as ``wrap``, saying what was being done."""
    try:
        yield
    except (KafkaError, TimeoutError) as exc:
        raise wrap(f"{doing}: {exc!r}") from exc


class LaunchRelayDeprecationWarning(DeprecationWarning):
    """A public name of the SDK that a later release removes: announced in the CHANGELOG a release ahead."""


def deprecated(what: str, *, since: str, removed_in: str, instead: str) -> None:
    """Say, at run time, that ``what`` is deprecated: call it where the deprecated thing is used.

    Python shows a DeprecationWarning raised in the caller's code (``stacklevel`` 3: the caller of the
    deprecated function); ``python -W error::launchrelay.errors.LaunchRelayDeprecationWarning`` makes it fail."""
    import warnings

    warnings.warn(
        f"{what} is deprecated since launchrelay {since} and goes in {removed_in}: use {instead}",
        LaunchRelayDeprecationWarning,
        stacklevel=3,
    )
