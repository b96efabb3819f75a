"""Write an access plan to a Kafka cluster through the Admin API: SCRAM users and ACLs.

aiokafka has no CreateAcls or AlterUserScramCredentials, so this module uses
librdkafka (confluent-kafka), Kafka's reference C client; only the
``launchrelay access`` command loads it, never the relay or the tracker.
"""

from __future__ import annotations

import asyncio
import re
import tomllib
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import structlog
from aiokafka.errors import KafkaError
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
from launchrelay.kafka.quotas import alter_user_quotas, user_quotas

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
    """What ``access apply`` did (or, with ``dry_run``, would do)."""

    users: list[str]
    acls: int
    added_acls: list[str] = field(default_factory=list)
    removed_acls: list[str] = field(default_factory=list)
    removed_users: list[str] = field(default_factory=list)
    #: user -> {quota key: new value, or None for removed}
    quota_changes: dict[str, dict[str, float | None]] = field(default_factory=dict)
    dry_run: bool = False

    def lines(self) -> list[str]:
        """One line per change, as `access apply --dry-run` prints them."""
        verb = "would " if self.dry_run else ""
        out = [f"{verb}set password: {u}" for u in self.users]
        out += [f"{verb}add ACL: {a}" for a in self.added_acls]
        out += [f"{verb}remove ACL: {a}" for a in self.removed_acls]
        out += [f"{verb}delete user: {u}" for u in self.removed_users]
        for user, ops in self.quota_changes.items():
            out += [f"{verb}{'remove' if v is None else 'set'} quota: {user} {k}" + ("" if v is None else f"={v:.0f}")
                    for k, v in ops.items()]  # fmt: skip
        return out


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
            AclOperation[re.sub(r"(?<!^)(?=[A-Z])", "_", op).upper()],  # DescribeConfigs: DESCRIBE_CONFIGS
            AclPermissionType.ALLOW,
        )
        for p in plan
        for g in p.grants
        for op in g.operations
    ]


def _ident(b: AclBinding) -> tuple[Any, ...]:
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)


def _acl_text(b: AclBinding) -> str:
    pattern = "*" if b.resource_pattern_type == ResourcePatternType.PREFIXED else ""
    operation, kind = (getattr(x, "name", x) for x in (b.operation, b.restype))
    return f"{b.principal} {operation} {str(kind).lower()} {b.name}{pattern}"


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
        if bindings:
            self._wait(self._admin.create_acls(bindings, request_timeout=self._t))

    def acls(self) -> list[AclBinding]:
        # None matches any name, principal and host (the stubs say str; the library documents None).
        every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
                                 AclOperation.ANY, AclPermissionType.ANY)  # fmt: skip
        found: list[AclBinding] = self._admin.describe_acls(every, request_timeout=self._t).result(timeout=self._t)
        return found

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


def _quota_changes(
    plan: list[Principal], current: Mapping[str, Mapping[str, float]], managed: re.Pattern[str] | None
) -> dict[str, dict[str, float | None]]:
    """What to set so each planned user has its quotas; with ``managed``, what to remove from the rest of ours."""
    changes: dict[str, dict[str, float | None]] = {}
    planned = {p.user: dict(p.quotas) for p in plan}
    for user, want in planned.items():
        have = current.get(user, {})
        ops: dict[str, float | None] = {k: v for k, v in want.items() if have.get(k) != v}
        if managed is not None:
            ops |= {k: None for k in have if k not in want}
        if ops:
            changes[user] = ops
    if managed is not None:
        for user, have in current.items():
            if user not in planned and managed.fullmatch(user) and have:
                changes[user] = dict.fromkeys(have)
    return changes


def apply_access(
    bootstrap: str,
    plan: list[Principal],
    passwords: Mapping[str, str],
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = 30.0,
    prune: re.Pattern[str] | None = None,
    ca_file: Path | None = None,
    dry_run: bool = False,
) -> AccessReport:
    """Create or update the SCRAM users that have a password in ``passwords``, every ACL and quota of the plan.

    Every step is idempotent: a user's password is set again, an ACL or a quota
    already in place is left as is. Run it as a principal allowed to alter
    credentials, ACLs and quotas (a superuser). ``ca_file``: the brokers' CA, as ``kafka_ssl_cafile``.

    With ``prune`` (the deployment's :func:`~launchrelay.access.managed_user`), the users whose
    names the plan can produce lose every ACL and quota the plan does not give them, and those
    no longer in the plan (a party that left) lose their SCRAM credentials: access is revoked,
    not merely no longer granted. Any other principal, whatever its name, is never touched.
    ``dry_run`` reads what is there and reports the changes without making them.
    """
    unknown = sorted(set(passwords) - {p.user for p in plan})
    if unknown:
        raise ConfigError(f"passwords given for users outside the plan: {', '.join(unknown)}")
    if prune is not None and not all(prune.fullmatch(p.user) for p in plan):
        raise ConfigError(f"the plan has users outside the names pruning manages ({prune.pattern})")
    bindings = _bindings(plan)
    options = dict(client_options or {})
    admin = _Admin(librdkafka_config(bootstrap, options, ca_file), timeout_s)
    try:
        existing = admin.acls()
        have = {_ident(b) for b in existing}
        added = [b for b in bindings if _ident(b) not in have]
        stale: list[AclBinding] = []
        gone: dict[str, list[ScramMechanism]] = {}
        if prune is not None:
            planned = {_ident(b) for b in bindings}
            ours = [b for b in existing if b.principal.startswith("User:") and prune.fullmatch(b.principal[5:])]
            stale = [b for b in ours if _ident(b) not in planned]
            in_plan = {p.user for p in plan}
            gone = {u: m for u, m in admin.scram_users().items() if prune.fullmatch(u) and u not in in_plan}
        quotas = _quota_changes(plan, asyncio.run(user_quotas(bootstrap, options, timeout_s)), prune)
        if not dry_run:
            admin.set_passwords(passwords)
            admin.create_acls(added)
            admin.delete_acls(stale)
            admin.delete_users(gone)
            asyncio.run(alter_user_quotas(bootstrap, quotas, options, timeout_s))
    except KafkaException as exc:
        raise KafkaRequestFailed(f"cannot apply users and ACLs on {bootstrap}: {exc.args[0]}") from exc
    except (TimeoutError, KafkaError) as exc:
        raise KafkaRequestFailed(f"cannot apply users and ACLs on {bootstrap}: {exc!r}") from exc
    users = [p.user for p in plan if p.user in passwords]
    report = AccessReport(users, len(bindings), [_acl_text(b) for b in added], [_acl_text(b) for b in stale],
                          sorted(gone), quotas, dry_run)  # fmt: skip
    if not dry_run:
        log.info("access.applied", users=users, acls=len(bindings), added_acls=len(added),
                 removed_acls=len(stale), removed_users=sorted(gone), quota_changes=quotas)  # fmt: skip
    return report
