"""Sessions the console can end: held by the console, not by the cookie.

The signed cookie carries a random session id and nothing else the console trusts. A session ends when its user
signs out, after ``idle_s`` without a request, after ``lifetime_s`` in all, and, for every session of a user, as
soon as the accounts file no longer gives that user the role and password hash the session was opened with (a
demoted operator, a changed password, a removed account): checked on every request against the file as it now
is. The sessions live in the console's memory, at most ``most`` of them (the oldest seen goes first): a restart
of the console signs everyone out.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from launchrelay.console.accounts import Account, Role

log = structlog.get_logger("launchrelay.console")


@dataclass
class Session:
    user: str
    role: Role
    #: the account's password hash when the session was opened: a new password ends the session
    hashed: str
    started: float
    seen: float


@dataclass
class Sessions:
    lifetime_s: float = 12 * 3600.0
    idle_s: float = 30 * 60.0
    most: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _open: dict[str, Session] = field(default_factory=dict)

    def start(self, account: Account, hashed: str) -> str:
        """A new session for ``account`` (signed in with the password whose hash is ``hashed``): its id."""
        if len(self._open) >= self.most:
            oldest = min(self._open, key=lambda sid: self._open[sid].seen)
            self._open.pop(oldest)
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        self._open[sid] = Session(account.name, account.role, hashed, now, now)
        return sid

    def get(self, sid: str, users: dict[str, tuple[Role, str]]) -> Account | None:
        """The session's account, if it is still open and the accounts file still says the same of its user."""
        session = self._open.get(sid)
        if session is None:
            return None
        now = self.clock()
        if now - session.started > self.lifetime_s or now - session.seen > self.idle_s:
            self._open.pop(sid, None)
            log.info("console.session_expired", user=session.user,
                     why="lifetime" if now - session.started > self.lifetime_s else "idle")  # fmt: skip
            return None
        if users.get(session.user) != (session.role, session.hashed):
            ended = self.end_user(session.user)
            log.warning("console.sessions_ended", user=session.user, sessions=ended,
                        why="the account's role or password changed, or it was removed")  # fmt: skip
            return None
        session.seen = now
        return Account(session.user, session.role)

    def end(self, sid: str | None) -> None:
        if sid is not None:
            self._open.pop(sid, None)

    def end_user(self, user: str) -> int:
        """End every session of ``user``; how many there were."""
        ended = [sid for sid, s in self._open.items() if s.user == user]
        for sid in ended:
            del self._open[sid]
        return len(ended)

    def __len__(self) -> int:
        return len(self._open)
