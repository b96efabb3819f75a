"""Who may do what on the cluster: one plan, rendered for Strimzi or applied to any Kafka.

A party may write only its own out topic and read only its own in topic (and
use consumer groups named for it); the relay and the tracker get exactly what
they use. :func:`access_plan` is the single source of these rules:
``launchrelay deploy strimzi`` renders it as KafkaUser resources, and
``launchrelay access apply`` writes it to a cluster that has no operator, as
SCRAM-SHA-512 users and ACLs through the Admin API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from launchrelay.agreements.config import Deployment
from launchrelay.errors import BrokerError
from launchrelay.topics import Topics

log = structlog.get_logger(__name__)

Resource = Literal["topic", "group", "transactionalId"]
Role = Literal["party", "relay", "tracker"]
SCRAM_ITERATIONS = 8192


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


def k8s_name(text: str) -> str:
    """A Kubernetes resource name; users get one too, as Strimzi names the principal after its KafkaUser."""
    return re.sub(r"[^a-z0-9.-]", "-", text.lower()).strip("-.")


def access_plan(deployment: Deployment) -> list[Principal]:
    """One user per party, one for the relay, one for the tracker, in a stable order."""
    topics = Topics(deployment.relay.topic_prefix)
    prefix = topics.prefix
    parties = sorted(deployment.parties)
    plan = [
        Principal(
            k8s_name(f"{prefix}-party-{code}"),
            "party",
            (
                Grant("topic", topics.outbound(code), ("Write", "Describe")),
                Grant("topic", topics.inbound(code), ("Read", "Describe")),
                Grant("group", f"{prefix}.inbox.{code}", ("Read",), "prefix"),
            ),
            party=code,
        )
        for code in parties
    ]
    writes = [topics.inbound(p) for p in parties] + [topics.status, topics.deadletter, topics.relay_state]
    plan.append(
        Principal(
            k8s_name(f"{prefix}-relay"),
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
            k8s_name(f"{prefix}-tracker"),
            "tracker",
            (
                Grant("topic", topics.status, ("Read", "Write", "Describe")),
                *(Grant("topic", topics.inbound(p), ("Write", "Describe")) for p in parties),
                *(Grant("topic", topics.outbound(p), ("Read", "Describe")) for p in parties),
                Grant("transactionalId", f"{prefix}.tracker", ("Write", "Describe")),
            ),
        )
    )
    return plan


def librdkafka_config(bootstrap: str, client_options: Mapping[str, Any]) -> dict[str, Any]:
    """The Admin API client's settings from the aiokafka-style options every other client gets."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap}
    names = {
        "security_protocol": "security.protocol",
        "sasl_mechanism": "sasl.mechanism",
        "sasl_plain_username": "sasl.username",
        "sasl_plain_password": "sasl.password",
    }
    for key, value in client_options.items():
        if key in names and value is not None:
            conf[names[key]] = value
    return conf


@dataclass(frozen=True)
class AccessReport:
    users: list[str]
    acls: int


def apply_access(
    bootstrap: str,
    plan: list[Principal],
    passwords: Mapping[str, str],
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = 30.0,
) -> AccessReport:
    """Create or update the SCRAM users that have a password in ``passwords``, then every ACL of the plan.

    Both steps are idempotent: a user's password is set again, an ACL that is
    already there is left as is. Run it as a principal allowed to alter
    credentials and ACLs (a superuser). ACLs beyond the plan are not removed.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    unknown = sorted(set(passwords) - {p.user for p in plan})
    if unknown:
        raise BrokerError(f"passwords given for users outside the plan: {', '.join(unknown)}")
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "transactionalId": ResourceType.TRANSACTIONAL_ID}
    patterns = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
    bindings = [
        AclBinding(
            kinds[g.resource],
            g.name,
            patterns[g.pattern],
            f"User:{p.user}",
            "*",
            AclOperation[op.upper()],
            AclPermissionType.ALLOW,
        )
        for p in plan
        for g in p.grants
        for op in g.operations
    ]
    admin = AdminClient(librdkafka_config(bootstrap, client_options or {}))
    users = [p.user for p in plan if p.user in passwords]
    try:
        if users:
            upserts: list[UserScramCredentialAlteration] = [
                UserScramCredentialUpsertion(
                    u,
                    ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS),
                    passwords[u].encode(),
                )
                for u in users
            ]
            for fut in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).values():
                fut.result(timeout=timeout_s)
        for fut in admin.create_acls(bindings, request_timeout=timeout_s).values():
            fut.result(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerError(f"cannot apply users and ACLs on {bootstrap}: {exc.args[0]}") from exc
    except TimeoutError as exc:
        raise BrokerError(f"cannot apply users and ACLs on {bootstrap}: no answer within {timeout_s}s") from exc
    log.info("access.applied", users=users, acls=len(bindings))
    return AccessReport(users, len(bindings))
