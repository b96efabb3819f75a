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


#: how much of a user name the brake keeps and the log shows (a name is never longer in the accounts file)
NAME_KEPT = 64


def shown(name: str) -> str:
    """A user name as the brake keys it and the log shows it: cut, whatever was sent."""
    return name if len(name) <= NAME_KEPT else f"{name[:NAME_KEPT]}…({len(name)} chars)"


@dataclass
class LoginBrake:
    """Slows guessing without locking the real user out.

    Failed sign-ins are counted per (user, address): past ``attempts`` in ``window_s`` that pair waits, while the
    same user from another address signs in (an attacker's typos cannot lock the watch out; behind a proxy the
    address is the client's only when the proxy is trusted, LAUNCHRELAY_CONSOLE_TRUSTED_PROXIES). Per address,
    past ``per_address`` failures whatever the names, that address waits (one address trying many users). And
    at most ``per_second`` sign-in attempts a second are taken at all (each costs an argon2 hash). Memory is
    bounded: at most ``most`` counted keys (the oldest go first), names cut to 64 characters.
    """

    attempts: int = 5
    per_address: int = 20
    per_second: int = 20
    window_s: float = 60.0
    most: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _second: tuple[int, int] = (0, 0)

    def _recent(self, key: str) -> list[float]:
        now = self.clock()
        kept = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return f"pair:{name[:NAME_KEPT]}\x00{address[:NAME_KEPT]}", f"addr:{address[:NAME_KEPT]}"

    def blocked(self, name: str, address: str) -> bool:
        pair, addr = self._keys(name, address)
        return len(self._recent(pair)) >= self.attempts or len(self._recent(addr)) >= self.per_address

    def busy(self) -> bool:
        """Too many sign-in attempts this second, from anyone: this one is turned away (counted when taken)."""
        now = int(self.clock())
        second, taken = self._second
        if second != now:
            second, taken = now, 0
        if taken >= self.per_second:
            self._second = (second, taken)
            return True
        self._second = (second, taken + 1)
        return False

    def failed(self, name: str, address: str) -> None:
        for key in self._keys(name, address):
            self._recent(key)
            self._failures.setdefault(key, []).append(self.clock())
            self._failures[key] = self._failures.pop(key)  # most recently failed last
        while len(self._failures) > self.most:
            self._failures.pop(next(iter(self._failures)))

    def __len__(self) -> int:
        return len(self._failures)
