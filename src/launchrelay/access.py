"""Who may do what on the cluster: one plan, rendered for Strimzi or applied to any Kafka.

A party may write only its own out topic and read only its own in topic (and
use consumer groups named for it); the relay and the tracker get exactly what
they use. :func:`access_plan` is the single source of these rules:
``launchrelay deploy strimzi`` renders it as KafkaUser resources, and
``launchrelay access apply`` writes it to a cluster that has no operator, as
SCRAM-SHA-512 users and ACLs (:mod:`launchrelay.broker.access`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from launchrelay.agreements.config import Deployment
from launchrelay.topics import Topics

Resource = Literal["topic", "group", "transactionalId"]
Role = Literal["party", "relay", "tracker", "operator"]


@dataclass(frozen=True)
class Grant:
    """Allow ``operations`` on one resource name (``literal``) or every name starting with it (``prefix``)."""

    resource: Resource
    name: str
    operations: tuple[str, ...]
    pattern: Literal["literal", "prefix"] = "literal"


@dataclass(frozen=True)
class Principal:
    """One Kafka user (principal ``User:<user>``) and everything it is allowed."""

    user: str
    role: Role
    grants: tuple[Grant, ...]
    party: str | None = None
    #: client quotas at the broker (Kafka's keys, e.g. ``producer_byte_rate``); none: not limited
    quotas: tuple[tuple[str, float], ...] = ()


def k8s_name(text: str) -> str:
    """A Kubernetes resource name; users get one too, as Strimzi names the principal after its KafkaUser."""
    return re.sub(r"[^a-z0-9.-]", "-", text.lower()).strip("-.")


def user_prefix(topic_prefix: str) -> str:
    """What every user name of a deployment starts with: the users ``access apply --prune`` manages."""
    return k8s_name(topic_prefix) + "-"


_ROLES = r"(?:party-[a-z]{2}|relay|tracker|operator)"


def managed_user(topic_prefix: str) -> re.Pattern[str]:
    """The user names a deployment's plan can produce, and only those: what ``access apply --prune`` may touch.

    Exactly ``<prefix>-party-<cc>``, ``-relay``, ``-tracker`` and ``-operator``: a name that merely
    starts with the prefix (``launchrelay-admin``, or ``launchrelay-staging-party-cn`` of a deployment
    whose prefix is ``launchrelay-staging``) is someone else's.
    """
    return re.compile(re.escape(user_prefix(topic_prefix)) + _ROLES + r"\Z")


def access_plan(deployment: Deployment) -> list[Principal]:
    """One user per party, one for the relay, one for the tracker, one for the watch's operators, in a stable order.

    The operator may list dead letters and write them back to the out topic
    they came from (``launchrelay deadletters`` / ``redrive``). Writing an out
    topic forges nothing: the relay still checks each record's signature and
    sender, and a replay of anything forwarded is a duplicate.
    """
    topics = Topics(deployment.relay.topic_prefix)
    prefix = topics.prefix
    users = user_prefix(prefix)
    parties = sorted(deployment.parties)
    plan = [
        Principal(
            users + k8s_name(f"party-{code}"),
            "party",
            (
                Grant("topic", topics.outbound(code), ("Write", "Describe")),
                Grant("topic", topics.inbound(code), ("Read", "Describe")),
                Grant("group", f"{prefix}.inbox.{code}", ("Read",), "prefix"),
            ),
            party=code,
            quotas=tuple((deployment.parties[code].quota or deployment.relay.party_quota).items().items()),
        )
        for code in parties
    ]
    writes = [topics.inbound(p) for p in parties] + [topics.status, topics.deadletter, topics.relay_state]
    plan.append(
        Principal(
            users + "relay",
            "relay",
            (
                *(Grant("topic", topics.outbound(p), ("Read", "Describe")) for p in parties),
                *(Grant("topic", t, ("Write", "Describe")) for t in writes),
                Grant("topic", topics.relay_state, ("Read",)),
                Grant("group", f"{prefix}.relay", ("Read",)),
                Grant("transactionalId", f"{prefix}.relay.", ("Write", "Describe"), "prefix"),
            ),
        )
    )
    plan.append(
        Principal(
            users + "tracker",
            "tracker",
            (
                Grant("topic", topics.status, ("Read", "Write", "Describe")),
                *(Grant("topic", topics.inbound(p), ("Write", "Describe")) for p in parties),
                *(Grant("topic", topics.outbound(p), ("Read", "Describe")) for p in parties),
                Grant("transactionalId", f"{prefix}.tracker", ("Write", "Describe")),
            ),
        )
    )
    plan.append(
        Principal(
            users + "operator",
            "operator",
            (
                Grant("topic", topics.deadletter, ("Read", "Describe")),
                *(Grant("topic", topics.outbound(p), ("Write", "Describe")) for p in parties),
            ),
        )
    )
    return plan


def render_plan(plan: list[Principal]) -> str:
    """The plan as `launchrelay access show` prints it: each user, then its grants (``*``: a name prefix)."""
    lines = []
    for principal in plan:
        lines.append(f"User:{principal.user}  ({principal.role}{' ' + principal.party if principal.party else ''})")
        for g in principal.grants:
            name = g.name + ("*" if g.pattern == "prefix" else "")
            lines.append(f"  {g.resource:<16} {name:<40} {', '.join(g.operations)}")
        for quota, value in principal.quotas:
            lines.append(f"  {'quota':<16} {quota:<40} {value:.0f} bytes/s")
    return "\n".join(lines)
