"""The topic naming convention, in one place.

For a prefix ``P`` (default ``launchrelay``) and a party code ``XX``:

=====================  ==================================================================
``P.XX.out``           the party writes its notifications and acknowledgements here
``P.XX.in``            the party reads forwards, acknowledgements and receipts here
``P.status``           lifecycle events written by the relay, read by the tracker
``P.deadletter``       original bytes of every rejected record, with reasons in headers
``P.relay-state``      compacted: what the relay has forwarded, for checks after restarts
``P.link.YY``          two-centre mode: what this centre sends to YY's centre (MirrorMaker 2 copies it)
``YY.P.link.XX``       two-centre mode, in XX's cluster: YY's ``P.link.XX`` as the mirror copied it
=====================  ==================================================================

In two-centre mode (``here`` set) only ``here``'s out and in topics are in this cluster; a record for a
party of a linked centre goes to that centre's link topic (:meth:`Topics.to`). The mirrored topic's name is
MirrorMaker 2's default replication policy: the source cluster's alias (the party code), a dot, the topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from launchrelay.contract.headers import Headers

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
DEFAULT_PREFIX = "launchrelay"


_LINK_IN = re.compile(r"^([A-Z]{2})\.(.+)\.link\.([A-Z]{2})$")


@dataclass(frozen=True)
class Topics:
    """Topic names for one deployment (one prefix; in two-centre mode, one centre)."""

    prefix: str = DEFAULT_PREFIX
    #: two-centre mode: the party this centre serves (None: every party's topics are in this cluster)
    here: str | None = None
    #: the parties of the centres this one is linked to
    linked: frozenset[str] = frozenset()

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

    @property
    def decision_log(self) -> str:
        """The decision log's leaves and signed tree heads (``[relay] decision_log``; docs/audit-log.md)."""
        return f"{self.prefix}.log"

    def proofs(self, party: str) -> str:
        """What ``party`` is sent about the decision log: heads, consistency and its leaves' inclusion proofs (in
        two-centre mode, for a linked party, what that party's centre's mirror copies there). Named as the link
        topics are: a name ``<prefix>.<PARTY>.<more>`` would read to MirrorMaker 2 as a copy from ``PARTY``'s
        cluster, which it never copies back there (its cycle check)."""
        return f"{self.prefix}.proofs.{party}"

    def proofs_in(self, party: str) -> str:
        """Two-centre mode: what ``party``'s centre proves to this centre's party, as the mirror copies it here."""
        assert self.here is not None, "a linked centre's proofs need the centre's own party"
        return f"{party}.{self.proofs(self.here)}"

    def is_local(self, party: str) -> bool:
        """Whether ``party``'s systems read and write this cluster (always, outside two-centre mode)."""
        return self.here is None or party == self.here

    def link_out(self, party: str) -> str:
        """Two-centre mode: the topic this centre writes for ``party``'s centre (its mirror reads it)."""
        return f"{self.prefix}.link.{party}"

    def link_in(self, party: str) -> str:
        """Two-centre mode: ``party``'s centre's link topic for this one, as the mirror copies it here."""
        assert self.here is not None, "a link topic needs the centre's own party"
        return f"{party}.{self.prefix}.link.{self.here}"

    def to(self, party: str) -> str:
        """Where a record for ``party`` is written: its in topic when local, else the link to its centre."""
        return self.inbound(party) if self.is_local(party) else self.link_out(party)

    def inputs(self, parties: list[str]) -> list[str]:
        """What the relay reads: the out topics of the local parties, and every incoming link."""
        local = [self.outbound(p) for p in sorted(parties) if self.is_local(p)]
        return local + [self.link_in(p) for p in sorted(self.linked)]

    def link_of(self, topic: str) -> str | None:
        """The linked party whose centre's records arrive on ``topic``, or None when it is not an incoming link."""
        m = _LINK_IN.match(topic)
        if m is None or m.group(2) != self.prefix or m.group(3) != self.here or m.group(1) not in self.linked:
            return None
        return m.group(1)

    def owner_of(self, topic: str) -> str | None:
        """The party that owns an out topic (or whose centre sends on an incoming link), or None."""
        linked = self.link_of(topic)
        if linked is not None:
            return linked
        head, sep, rest = topic.partition(self.prefix + ".")
        if head or not sep or not rest.endswith(".out"):
            return None
        party = rest[: -len(".out")]
        return party if re.fullmatch(r"[A-Z]{2}", party) else None


@dataclass(frozen=True)
class OutRecord:
    """A record a service writes: topic, key, value and headers (one of a transaction's)."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers


#: The relay's default limit on a message's bytes (``[relay] max_message_bytes``), and so the SDK's.
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
#: Room for a record's headers and a request's framing above the value's bytes.
HEADROOM = 64 << 10
#: Kafka's own default of a consumer's ``fetch.max.bytes`` (50 MiB), kept where the chain asks for less.
KAFKA_FETCH_MAX_BYTES = 50 << 20


@dataclass(frozen=True)
class SizeLimits:
    """Bytes allowed at each link of the chain, for a relay limit of ``relay`` bytes per value: the one place
    they are computed (:func:`size_limits`); topics, the relay, the tracker and the SDK's clients take them from
    here. Publisher (its request) < out topic (2x) < copies (in and dead-letter topics: 2x + headers)."""

    relay: int  # a value over this is rejected OVERSIZE

    @property
    def out_topic(self) -> int:
        """The broker refuses a bigger record batch on an out topic (the producer sees the error)."""
        return 2 * self.relay

    @property
    def copies(self) -> int:
        """In and dead-letter topics: an out topic's record and the relay's headers beside it."""
        return self.out_topic + HEADROOM

    @property
    def publish_request(self) -> int:
        """A party's producer request: one value the relay accepts, with its headers."""
        return self.relay + HEADROOM

    @property
    def copy_request(self) -> int:
        """The relay's and the tracker's producer requests: one copy and its headers."""
        return self.copies + HEADROOM

    @property
    def fetch(self) -> int:
        """What a consumer must accept per partition, so any record of the chain fits."""
        return self.copies + HEADROOM

    @property
    def fetch_total(self) -> int:
        """What a consumer accepts per fetch: Kafka's default, or one partition's limit if more."""
        return max(KAFKA_FETCH_MAX_BYTES, self.fetch)


def size_limits(relay_max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> SizeLimits:
    """The chain for a relay limit of ``relay_max_bytes``."""
    return SizeLimits(relay_max_bytes)
