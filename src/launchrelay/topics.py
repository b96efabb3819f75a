"""The topic naming convention, in one place.

For a prefix ``P`` (default ``launchrelay``) and a party code ``XX``:

=====================  ==================================================================
``P.XX.out``           the party writes its notifications and acknowledgements here
``P.XX.in``            the party reads forwards, acknowledgements and receipts here
``P.status``           lifecycle events written by the relay, read by the tracker
``P.deadletter``       original bytes of every rejected record, with reasons in headers
``P.relay-state``      compacted: what the relay has forwarded, for checks after restarts
=====================  ==================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from launchrelay.contract.headers import Headers

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
DEFAULT_PREFIX = "launchrelay"


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment (one prefix)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"topic prefix {self.prefix!r} must match {_PREFIX.pattern}")

    def outbound(self, party: str) -> str:
        """The topic a party writes to."""
        return f"{self.prefix}.{party}.out"

    def inbound(self, party: str) -> str:
        """The topic a party reads from."""
        return f"{self.prefix}.{party}.in"

    @property
    def status(self) -> str:
        return f"{self.prefix}.status"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def relay_state(self) -> str:
        return f"{self.prefix}.relay-state"

    def owner_of(self, topic: str) -> str | None:
        """The party that owns an out topic, or None when ``topic`` is not one."""
        head, sep, rest = topic.partition(self.prefix + ".")
        if head or not sep or not rest.endswith(".out"):
            return None
        party = rest[: -len(".out")]
        return party if re.fullmatch(r"[A-Z]{2}", party) else None

    def all_for(self, parties: list[str]) -> list[str]:
        """Every topic a deployment with these parties needs."""
        names = [self.status, self.deadletter, self.relay_state]
        for p in sorted(parties):
            names += [self.outbound(p), self.inbound(p)]
        return names


@dataclass(frozen=True)
class OutRecord:
    """A record a service writes: topic, key, value and headers (one of a transaction's)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
