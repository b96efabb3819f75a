"""Write an access plan to a Kafka cluster through the Admin API: SCRAM users and ACLs.

aiokafka has no CreateAcls or AlterUserScramCredentials, so this module uses
librdkafka (confluent-kafka), Kafka's reference C client; only the
``launchrelay access`` command loads it, never the relay or the tracker.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import structlog
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from launchrelay.access import Principal
from launchrelay.errors import ConfigError, KafkaRequestFailed

log = structlog.get_logger(__name__)

SCRAM_ITERATIONS = 8192


def librdkafka_config(bootstrap: str, client_options: Mapping[str, Any], ca_file: Path | None = None) -> dict[str, Any]:
    """librdkafka settings from the aiokafka-style options every other client gets (and the CA they hold)."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap}
    if ca_file is not None:
        conf["ssl.ca.location"] = str(ca_file)
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


def read_passwords(path: Path) -> dict[str, str]:
    """A TOML file of ``user = "password"`` lines, as `launchrelay access apply --passwords` takes it."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read passwords file {path}: {exc}") from exc
    if not all(isinstance(v, str) for v in raw.values()):
        raise ConfigError(f'{path}: every entry must be user = "password"')
    return dict(raw)


@dataclass(frozen=True)
class AccessReport:
    users: list[str]
    acls: int
    removed_acls: int = 0
    removed_users: list[str] = field(default_factory=list)


def _bindings(plan: list[Principal]) -> list[AclBinding]:
    kinds = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "transactionalId": ResourceType.TRANSACTIONAL_ID}
    patterns = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
    return [
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


def _ident(b: AclBinding) -> tuple[Any, ...]:
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)


class _Admin:
    """The few Admin API calls used here, each waited for with one timeout."""

    def __init__(self, conf: dict[str, Any], timeout_s: float) -> None:
        self._admin = AdminClient(conf)
        self._t = timeout_s

    def _wait(self, futures: Mapping[Any, Future[Any]]) -> None:
        for fut in futures.values():
            fut.result(timeout=self._t)

    def set_passwords(self, passwords: Mapping[str, str]) -> None:
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts: list[UserScramCredentialAlteration] = [
            UserScramCredentialUpsertion(user, info, pw.encode()) for user, pw in passwords.items()
        ]
        if upserts:
            self._wait(self._admin.alter_user_scram_credentials(upserts, request_timeout=self._t))

    def create_acls(self, bindings: list[AclBinding]) -> None:
        self._wait(self._admin.create_acls(bindings, request_timeout=self._t))

    def acls_of(self, principal_prefix: str) -> list[AclBinding]:
        # None matches any name, principal and host (the stubs say str; the library documents None).
        every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
                                 AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
        found: list[AclBinding] = self._admin.describe_acls(every, request_timeout=self._t).result(timeout=self._t)
        return [b for b in found if b.principal.startswith(principal_prefix)]

    def delete_acls(self, bindings: list[AclBinding]) -> None:
        if bindings:
            self._wait(
                self._admin.delete_acls([AclBindingFilter(*_ident(b)) for b in bindings], request_timeout=self._t)
            )

    def scram_users(self) -> dict[str, list[ScramMechanism]]:
        every = cast("Future[dict[str, Any]]", self._admin.describe_user_scram_credentials(request_timeout=self._t))
        return {u: [i.mechanism for i in d.scram_credential_infos] for u, d in every.result(timeout=self._t).items()}

    def delete_users(self, users: Mapping[str, list[ScramMechanism]]) -> None:
        gone: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(u, m) for u, mechanisms in users.items() for m in mechanisms
        ]
        if gone:
            self._wait(self._admin.alter_user_scram_credentials(gone, request_timeout=self._t))


def apply_access(
    bootstrap: str,
    plan: list[Principal],
    passwords: Mapping[str, str],
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = 30.0,
    prune: str | None = None,
    ca_file: Path | None = None,
) -> AccessReport:
    """Create or update the SCRAM users that have a password in ``passwords``, then every ACL of the plan.

    Both steps are idempotent: a user's password is set again, an ACL that is
    already there is left as is. Run it as a principal allowed to alter
    credentials and ACLs (a superuser). ``ca_file``: the brokers' CA, as ``kafka_ssl_cafile``.

    With ``prune`` (the deployment's :func:`user_prefix`), users with that
    prefix lose every ACL the plan does not give them, and those no longer in
    the plan (a party that left) lose their SCRAM credentials: access is
    revoked, not merely no longer granted. Other principals are never touched.
    """
    unknown = sorted(set(passwords) - {p.user for p in plan})
    if unknown:
        raise ConfigError(f"passwords given for users outside the plan: {', '.join(unknown)}")
    if prune is not None and not all(p.user.startswith(prune) for p in plan):
        raise ConfigError(f"prune prefix {prune!r} does not cover every user of the plan")
    bindings = _bindings(plan)
    admin = _Admin(librdkafka_config(bootstrap, client_options or {}, ca_file), timeout_s)
    stale: list[AclBinding] = []
    gone: dict[str, list[ScramMechanism]] = {}
    try:
        admin.set_passwords(passwords)
        admin.create_acls(bindings)
        if prune is not None:
            planned = {_ident(b) for b in bindings}
            stale = [b for b in admin.acls_of(f"User:{prune}") if _ident(b) not in planned]
            admin.delete_acls(stale)
            in_plan = {p.user for p in plan}
            gone = {u: m for u, m in admin.scram_users().items() if u.startswith(prune) and u not in in_plan}
            admin.delete_users(gone)
    except KafkaException as exc:
        raise KafkaRequestFailed(f"cannot apply users and ACLs on {bootstrap}: {exc.args[0]}") from exc
    except TimeoutError as exc:
        raise KafkaRequestFailed(f"cannot apply users and ACLs on {bootstrap}: no answer within {timeout_s}s") from exc
    users = [p.user for p in plan if p.user in passwords]
    log.info("access.applied", users=users, acls=len(bindings), removed_acls=len(stale), removed_users=sorted(gone))
    return AccessReport(users, len(bindings), len(stale), sorted(gone))
