"""Console accounts: a TOML file of users with a role and an argon2 password hash, and a brake on guessing.

::

    [users.alice]
    role = "operator"          # or "viewer"
    hash = "$argon2id$v=19$..."

``launchrelay console-user NAME --role ROLE`` adds or changes one (the password from a prompt or stdin).
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from launchrelay.errors import ConfigError

_HASHER = PasswordHasher()


class Role(StrEnum):
    VIEWER = "viewer"  # sees everything the console shows
    OPERATOR = "operator"  # and may redrive dead letters


@dataclass(frozen=True)
class Account:
    name: str
    role: Role


def load_users(path: Path) -> dict[str, tuple[Role, str]]:
    """name -> (role, argon2 hash); an absent file has no users."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
        return {name: (Role(u["role"]), str(u["hash"])) for name, u in data.get("users", {}).items()}
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise ConfigError(f"{path}: not a console users file ({exc})") from exc


def set_user(path: Path, name: str, role: Role, password: str) -> None:
    """Add ``name`` or change its role and password; the file stays readable by its owner only."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"user name {name!r}: letters, digits, '-', '_' and '.' only")
    if len(password) < 12:
        raise ConfigError("a console password has at least 12 characters")
    users = load_users(path)
    users[name] = (role, _HASHER.hash(password))
    lines = ["# launchrelay console accounts: `launchrelay console-user NAME --role ROLE` changes them", ""]
    for user, (r, h) in sorted(users.items()):
        lines += [f"[users.{user}]", f'role = "{r.value}"', f'hash = "{h}"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    path.chmod(0o600)


def verify(users: dict[str, tuple[Role, str]], name: str, password: str) -> Account | None:
    """The account when ``password`` is ``name``'s; None otherwise (an unknown name costs a hash all the same)."""
    role, hashed = users.get(name, (Role.VIEWER, _DUMMY))
    try:
        _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return None
    return Account(name, role) if name in users else None


_DUMMY = _HASHER.hash("not a password of anyone's")


@dataclass
class LoginBrake:
    """At most ``attempts`` failed logins per user name and per client address in ``window_s``; then refused."""

    attempts: int = 5
    window_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        self._failures[key] = kept
        return kept

    def blocked(self, name: str, address: str) -> bool:
        return any(len(self._recent(k)) >= self.attempts for k in (f"user:{name}", f"addr:{address}"))

    def failed(self, name: str, address: str) -> None:
        for key in (f"user:{name}", f"addr:{address}"):
            self._recent(key).append(self.clock())
        if len(self._failures) > 10_000:
            self._failures.clear()
