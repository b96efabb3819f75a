"""The console as an ASGI application (Starlette): pages rendered on the server, one small script for live
updates (server-sent events tell the page the ledger changed; it fetches the rows again).

Every page needs a signed-in account; every form that changes something carries the session's CSRF token;
the session cookie is HttpOnly, SameSite=Strict, and Secure when the console is served over TLS. Failed
logins are counted per user name and per client address and refused past a limit, each one logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import structlog
from markupsafe import Markup
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from launchrelay.agreements.config import Agreement
from launchrelay.console.accounts import Account, LoginBrake, Role, load_users, shown, verify
from launchrelay.console.mapdata import map_of
from launchrelay.console.sessions import Sessions
from launchrelay.contract.messages import RecordRef
from launchrelay.errors import ConfigError, FormatTooNew, LaunchRelayError, LedgerCorrupt
from launchrelay.ops import auditlog, deadletters, records
from launchrelay.signing import Signer, public_key_from_b64
from launchrelay.topics import Topics
from launchrelay.tracker import status
from launchrelay.tracker.ledger import LedgerChanges, SqliteLedger

log = structlog.get_logger("launchrelay.console")
HERE = Path(__file__).parent
#: the states a notification can still change from: the board shows these unless asked for all
OPEN_STATES = ("overdue", "refused_there", "pending")
#: rows the board shows at most (a filter narrows it; the page says when more matched)
BOARD_ROWS = 500
#: dead letters on one page of the list
DEAD_LETTERS_PER_PAGE = 50
#: how long a rendered board (its rows, its counts) serves every request for it while the ledger is unchanged
CACHE_S = 1.0
#: most boards kept rendered at once (each filter and search is one)
CACHE_ENTRIES = 64
T = TypeVar("T")


@dataclass
class ConsoleConfig:
    ledger: Path
    users: Path
    #: Kafka, for dead letters and redrive (as the operator user of the access plan where ACLs are on)
    bootstrap: str | None = None
    topic_prefix: str = "launchrelay"
    client_options: dict[str, Any] = field(default_factory=dict)
    #: name -> base URL of the ops endpoint (/readyz, /metrics) of each service the health page shows
    services: dict[str, str] = field(default_factory=dict)
    #: the deployment's agreements (from the config): a notification's map draws its agreement's boundary
    agreements: dict[str, Agreement] = field(default_factory=dict)
    #: party -> key id -> base64 public key (from the config): the original bytes' signature is checked with these
    party_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    #: with the decision log kept: the relay's keys (key id -> base64); the health page checks, with them, what
    #: each party is sent about the log (none: no such check)
    relay_keys: dict[str, str] = field(default_factory=dict)
    #: that check reads the proofs topics again at most this often
    views_fresh_s: float = 5.0
    #: the operator key the console signs redrives with (registered in [relay] operator_keys); None: no redrive
    operator_key: Signer | None = None
    session_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    secure_cookies: bool = False  # True when served over TLS (directly or behind a TLS proxy)
    poll_s: float = 0.5  # how often the live feed looks at the ledger
    #: how long a rendered board serves every request for it while the ledger is unchanged (0: render each time)
    cache_s: float = CACHE_S
    #: a session ends this long after sign-in, or after this long without a request (see console/sessions.py)
    session_lifetime_s: float = 12 * 3600.0
    session_idle_s: float = 30 * 60.0
    clock: Callable[[], float] = time.monotonic


class Console:
    """The application's state: configuration, accounts, the login brake, the ledger (opened when it exists)."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.topics = Topics(config.topic_prefix)
        self.brake = LoginBrake()
        self.sessions = Sessions(config.session_lifetime_s, config.session_idle_s, clock=config.clock)
        self._users: tuple[tuple[float, int], dict[str, tuple[Role, str]]] | None = None
        #: when each user last opened the dead letters (the board counts what was refused since)
        self.last_looked: dict[str, datetime] = {}
        self._ledger: SqliteLedger | None = None
        self._dead_letters: deadletters.DeadLetterIndex | None = None
        self._views: auditlog.ViewChecks | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="console-pages")
        self._cache: dict[tuple[Any, ...], tuple[Any, float, Any]] = {}
        #: why there is no ledger to show, when it is not simply that the tracker has not written one yet
        self.ledger_problem: str | None = None

    def users(self) -> dict[str, tuple[Role, str]]:
        """The accounts file as it is now (read again when it changes; unreadable or gone: no accounts, so every
        session ends rather than outlive what the file says)."""
        try:
            stat = self.config.users.stat()
            mark = (stat.st_mtime, stat.st_size)
        except OSError:
            return {}
        if self._users is None or self._users[0] != mark:
            try:
                self._users = (mark, load_users(self.config.users))
            except ConfigError:
                return {}
        return self._users[1]

    def ledger(self) -> SqliteLedger | None:
        if self._ledger is not None:
            return self._ledger
        problem = None
        try:
            self._ledger = SqliteLedger.open_existing(self.config.ledger)
        except (LedgerCorrupt, FormatTooNew) as exc:  # corrupt: the tracker rebuilds it; too new: an upgrade
            problem = str(exc)
        if problem is not None and self.ledger_problem is None:  # said once, not on every page
            log.error("console.ledger_corrupt", ledger=str(self.config.ledger), problem=problem)
        self.ledger_problem = problem
        return self._ledger

    async def work(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the console's one page thread: the ledger's reads and writes and the rendering of pages
        happen there, one at a time, so the event loop stays free for /healthz and the live stream however many
        pages are asked for at once."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)

    def cached(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """What ``make`` returns, shared by every request for ``key`` while the ledger is unchanged and for at most
        ``cache_s`` (a time left or an overdue-by moves on). Called on the page thread only."""
        ledger = self.ledger()
        version = ledger.version() if ledger is not None else None
        now = self.config.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version and now - hit[1] < self.config.cache_s:
            return cast(T, hit[2])
        value = make()
        if len(self._cache) >= CACHE_ENTRIES:  # bounded whatever the queries: forget them all, start again
            self._cache.clear()
        self._cache[key] = (version, now, value)
        return value

    def dead_letters(self) -> deadletters.DeadLetterIndex | None:
        """The index of dead letters (None without Kafka), made at first use."""
        if self._dead_letters is None and self.config.bootstrap is not None:
            self._dead_letters = deadletters.DeadLetterIndex(self.config.bootstrap, self.topics,
                                                             self.config.client_options)  # fmt: skip
        return self._dead_letters

    def view_checks(self) -> auditlog.ViewChecks | None:
        """The check of each party's view of the decision log (None without Kafka or without the log)."""
        if self._views is None and self.config.bootstrap is not None and self.config.relay_keys:
            keys = {k: public_key_from_b64(v) for k, v in self.config.relay_keys.items()}
            self._views = auditlog.ViewChecks(self.config.bootstrap, self.topics, self.config.party_keys, keys,
                                              self.config.client_options)  # fmt: skip
        return self._views

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        if self._ledger is not None:
            self._ledger.close()


def probe(name: str, base: str, timeout_s: float = 2.0) -> dict[str, Any]:
    """One service's readiness, its partitions' lag and oldest waiting record, and its last broker contact,
    from its own /readyz and /metrics."""
    out: dict[str, Any] = {
        "name": name, "url": base, "ready": None, "why": "", "partitions": [], "contact_s": None, "links": [],
        "logs": [], "proofs": None,
    }  # fmt: skip
    try:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=timeout_s) as resp:  # noqa: S310 - configured
                out["ready"], out["why"] = True, resp.read().decode().strip()
        except urllib.error.HTTPError as exc:
            out["ready"], out["why"] = False, exc.read().decode().strip()
        with urllib.request.urlopen(f"{base}/metrics", timeout=timeout_s) as resp:  # noqa: S310
            text = resp.read().decode()
    except (OSError, ValueError) as exc:
        out["why"] = f"no answer: {exc}"
        return out
    parts: dict[tuple[str, str], dict[str, float]] = {}
    links: dict[str, dict[str, Any]] = {}
    logs: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("launchrelay_consumer_lag", "launchrelay_oldest_pending_seconds"):
                key = (sample.labels["topic"], sample.labels["partition"])
                parts.setdefault(key, {})[sample.name.removeprefix("launchrelay_")] = sample.value
            elif sample.name == "launchrelay_broker_contact_timestamp_seconds" and sample.value > 0:
                out["contact_s"] = max(0.0, time.time() - sample.value)
            elif sample.name in LINK_SAMPLES:
                link = links.setdefault(sample.labels["link"], {"link": sample.labels["link"], "lag": 0.0})
                link[LINK_SAMPLES[sample.name]] = sample.value
            elif sample.name in LOG_SAMPLES:
                logs.setdefault(sample.labels["log"], {"log": sample.labels["log"]})[LOG_SAMPLES[sample.name]] = (
                    max(0.0, time.time() - sample.value) if sample.name.endswith("_timestamp_seconds") else sample.value
                )
            elif sample.name in PROOF_SAMPLES:
                out["proofs"] = (out["proofs"] or {}) | {PROOF_SAMPLES[sample.name]: sample.value}
    out["partitions"] = [{"partition": f"{t}:{p}", **v} for (t, p), v in sorted(parts.items())]
    out["logs"] = [logs[k] for k in sorted(logs)]
    for code, link in sorted(links.items()):
        # what waits on the incoming link topic: MirrorMaker 2 names the copy "<source alias>.<topic>"
        link["lag"] = sum(v.get("consumer_lag", 0.0) for (t, _), v in parts.items() if is_link_copy(t, code))
        heard = link.pop("last_heard", 0.0)
        link["heard_s"] = max(0.0, time.time() - heard) if heard > 0 else None
        out["links"].append(link)
    return out


#: the relay's link metrics the health page shows, by the name each is shown under
LINK_SAMPLES = {
    "launchrelay_link_last_heard_timestamp_seconds": "last_heard",
    "launchrelay_link_delay_seconds": "delay_s",
    "launchrelay_link_silent": "silent",
    "launchrelay_link_disagreements_total": "disagreements",
    "launchrelay_link_repeats_total": "repeats",
}


#: the decision log's metrics the health page shows, per log: the relay's (its last head, the leaves since) and
#: the publisher of proofs' (how far the log is proved to the parties); times are shown as ages
LOG_SAMPLES = {
    "launchrelay_log_head_timestamp_seconds": "head_s",
    "launchrelay_log_unheaded_leaves": "unheaded",
    "launchrelay_proofs_head_size": "proved_size",
    "launchrelay_proofs_head_timestamp_seconds": "proved_s",
}
#: the publisher's own check: heads it rebuilt from the leaves and found signed right, and logs that did not agree
PROOF_SAMPLES = {"launchrelay_proofs_heads_checked_total": "checked", "launchrelay_proofs_broken_logs": "broken"}


def is_link_copy(topic: str, code: str) -> bool:
    """Whether ``topic`` is MirrorMaker 2's copy, here, of the link topic ``code``'s centre writes for us."""
    return topic.startswith(f"{code}.") and ".link." in topic


TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))


def utc(value: str | datetime | None, seconds: bool = True) -> str:
    """A time as every page shows it: in UTC, and saying so (``2026-12-03 08:00:00 UTC``)."""
    if value is None or value == "":
        return "-"
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters["utc"] = utc


def text(value: bytes | None) -> str:
    """Bytes as text for a page: UTF-8, anything else shown as a replacement character (never raw)."""
    return (value or b"").decode("utf-8", errors="replace")


TEMPLATES.env.filters["text"] = text
_CSRF_REFUSED = "the form's CSRF token is missing or wrong: reload the page\n"

Handler = Callable[[Request], Awaitable[Response]]
Guarded = Callable[[Request, Account], Awaitable[Response]]


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def account(request: Request) -> Account | None:
    """The signed-in account: the cookie's session id names an open session of the console's, whose user the
    accounts file still gives the same role and password (console/sessions.py)."""
    sid = request.session.get("sid")
    if not isinstance(sid, str):
        return None
    known = getattr(request.state, "account", None)  # looked up once per request (the guard, then the page)
    if known is not None and known[0] == sid:
        found: Account | None = known[1]
        return found
    console = _console(request)
    found = console.sessions.get(sid, console.users())
    request.state.account = (sid, found)
    return found


def signed_in(*, fragment: bool = False) -> Callable[[Guarded], Handler]:
    """The one sign-in guard: the handler runs with the signed-in account, or the visitor is sent to sign in (a
    page) or refused 401 (a fragment or a stream, which a script fetches)."""

    def guard(handler: Guarded) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            who = account(request)
            if who is None:  # a page sends the visitor to sign in, and back here after; a fragment or a stream 401
                if fragment:
                    return PlainTextResponse("sign in\n", 401)
                return RedirectResponse(f"/login?{urlencode({'next': _here(request)})}", 303)
            return await handler(request, who)

        return guarded

    return guard


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of this console only (never another site: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or value.startswith("/login"):
        return "/"
    return value


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


async def form_with_csrf(request: Request) -> dict[str, str] | None:
    form = {k: str(v) for k, v in (await request.form()).items()}
    expected = request.session.get("csrf")
    if not expected or not secrets.compare_digest(form.get("csrf", ""), expected):
        who = account(request)
        log.warning("console.csrf_refused", path=request.url.path, user=who.name if who else None)
        return None
    return form


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    context |= {"account": account(request), "csrf": csrf_token(request)}
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status_code)


async def login(request: Request) -> Response:
    console = _console(request)
    if request.method == "GET":
        onward = _next(request.query_params.get("next"))
        if account(request) is not None:  # signed in already (a link from elsewhere): straight on
            return RedirectResponse(onward, 303)
        return page(request, "login.html", error=None, next=onward)
    address = request.client.host if request.client else "?"
    form = await form_with_csrf(request)
    if form is None:
        return PlainTextResponse(_CSRF_REFUSED, 403)
    name = form.get("name", "")
    onward = _next(form.get("next"))
    if console.brake.blocked(name, address):
        log.warning("console.login_refused", user=shown(name), address=address, why="too many failed attempts")
        return page(request, "login.html", 429, error="Too many failed attempts: wait a minute.", next=onward)
    if console.brake.busy():
        log.warning("console.login_refused", user=shown(name), address=address, why="too many sign-ins this second")
        return page(request, "login.html", 429, error="Too many sign-ins at once: try again in a moment.", next=onward)
    users, unreadable = {}, None
    try:
        users = load_users(console.config.users)
    except ConfigError as exc:
        unreadable = str(exc)
    if unreadable is not None:  # one line in the log, not a trace: the file is the operator's to mend
        log.error("console.users_unreadable", users=str(console.config.users), error=unreadable)
        return page(request, "login.html", 503, error="The accounts file cannot be read: see the console's log.",
                    next=onward)  # fmt: skip
    found = verify(users, name, form.get("password", ""))
    if found is None:
        console.brake.failed(name, address)
        log.warning("console.login_failed", user=shown(name), address=address)
        return page(request, "login.html", 401, error="Wrong user name or password.", next=onward)
    request.session.clear()
    sid = console.sessions.start(found, users[found.name][1])
    request.session.update(sid=sid, csrf=secrets.token_urlsafe(32))
    log.info("console.login", user=found.name, role=found.role.value, address=address)
    return RedirectResponse(onward, 303)


async def logout(request: Request) -> Response:
    if await form_with_csrf(request) is None:
        return PlainTextResponse(_CSRF_REFUSED, 403)
    who = account(request)
    _console(request).sessions.end(request.session.get("sid"))  # the cookie, if kept, opens nothing any more
    log.info("console.logout", user=who.name if who else None)
    request.session.clear()
    return RedirectResponse("/login", 303)


def board_rows(request: Request) -> status.Page:
    ledger = _console(request).ledger()
    if ledger is None:
        return status.Page([], more=False)
    q = request.query_params
    filters = status.Filters(party=q.get("party") or None, agreement=q.get("agreement") or None)
    now = datetime.now(UTC)
    wanted = q.get("state") or "open"
    text = (q.get("q") or "").strip()

    def where(r: dict[str, Any]) -> bool:
        if wanted == "open" and r["state"] not in OPEN_STATES:
            return False
        if wanted not in ("open", "all") and r["state"] != wanted:
            return False
        return not text or text in (r["id"] or "") or text in (r["launch_key"] or "")

    if wanted in ("open", *OPEN_STATES):  # overdue first, then the nearest deadline: the ledger's own order
        return status.open_rows(ledger, filters, now, BOARD_ROWS, where)
    return status.recent(ledger, filters, now, BOARD_ROWS, where)


def counts(console: Console, who: Account) -> dict[str, int] | None:
    """What the watch sees first: acknowledgements overdue and pending, messages rejected today (UTC), and those
    rejected (each a dead letter) since this user last opened the dead letters. None: no ledger yet."""
    ledger = console.ledger()
    if ledger is None:
        return None
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    owed = ledger.state_counts()
    rejected_today, new_dead_letters = ledger.rejected_since(today, console.last_looked.get(who.name, today))
    return {
        "overdue": owed.get("timed_out", 0),
        "pending": owed.get("pending", 0),
        "rejected_today": rejected_today,
        "new_dead_letters": new_dead_letters,
    }


def _fragment(name: str, **context: Any) -> Markup:
    """A fragment rendered on its own, to be placed in a page as it is: the templates escape every value they show
    (autoescape is on for .html; a test holds it), so the result is markup, not text a party wrote."""
    return Markup(TEMPLATES.env.get_template(name).render(**context))  # noqa: S704 - escaped by the template


def rows_html(request: Request) -> Markup:
    """The board's rows for this request's filters, rendered once for every request asking the same."""
    q = request.query_params
    key = ("rows", *(q.get(k) or "" for k in ("party", "agreement", "state", "q")))

    def make() -> Markup:
        shown = board_rows(request)
        return _fragment("rows.html", rows=shown.rows, more=shown.more)

    return _console(request).cached(key, make)


def counts_html(console: Console, who: Account) -> Markup:
    key = ("counts", console.last_looked.get(who.name))
    return console.cached(key, lambda: _fragment("counts.html", counts=counts(console, who)))


def _board(request: Request, who: Account) -> Response:
    console = _console(request)
    return page(request, "board.html", rows_html=rows_html(request), counts_html=counts_html(console, who),
                query=dict(request.query_params), ledger_found=console.ledger() is not None,
                ledger_problem=console.ledger_problem)  # fmt: skip


@signed_in()
async def board(request: Request, who: Account) -> Response:
    return await _console(request).work(_board, request, who)


@signed_in(fragment=True)
async def counts_fragment(request: Request, who: Account) -> Response:
    console = _console(request)
    return HTMLResponse(await console.work(counts_html, console, who))


@signed_in(fragment=True)
async def rows_fragment(request: Request, who: Account) -> Response:
    return HTMLResponse(await _console(request).work(rows_html, request))


@signed_in()
async def notification(request: Request, who: Account) -> Response:
    console = _console(request)
    config = console.config

    def story() -> dict[str, Any] | None:
        ledger = console.ledger()
        view = status.timeline(ledger, request.path_params["ident"], datetime.now(UTC)) if ledger else None
        if view is not None:
            view["map"] = map_of(view.get("notice"), config.agreements.get(view.get("agreement") or ""))
        return view

    view = await console.work(story)
    if view is None:
        return await console.work(functools.partial(page, request, "missing.html", ident=request.path_params["ident"]))
    found, problem = None, None
    if view.get("source") and config.bootstrap:
        try:
            ref = RecordRef.parse(view["source"])
            keys = config.party_keys.get(view["sender"] or "", {})
            found = await records.original(config.bootstrap, ref, keys, config.client_options)
            problem = None if found else "no longer on its out topic (retention)"
        except (LaunchRelayError, ValueError) as exc:
            problem = str(exc)
    return await console.work(functools.partial(page, request, "notification.html", view=view, original=found,
                                                original_problem=problem, map=view["map"]))  # fmt: skip


@signed_in(fragment=True)
async def events(request: Request, who: Account) -> Response:
    """Server-sent events: ``changed`` whenever another connection commits to the ledger."""
    config = _console(request).config

    async def stream() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        changes = LedgerChanges(config.ledger)
        try:
            while not await request.is_disconnected():
                changed = changes.changed()
                if changed is None:
                    yield b": waiting for the ledger\n\n"
                elif changed:
                    yield b"event: changed\ndata: ledger\n\n"
                await asyncio.sleep(config.poll_s)
        finally:
            changes.close()

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _page_number(text: str | None) -> int:
    return int(text) if text and text.isdigit() and len(text) < 7 else 0


@signed_in()
async def dead_letter_list(request: Request, who: Account) -> Response:
    """Dead letters newest first, a page at a time, from the console's index of them (their bytes are read only
    when one is opened)."""
    console = _console(request)
    q = request.query_params
    letters: list[deadletters.Brief] = []
    error, matched = None, 0
    number = _page_number(q.get("page"))
    index = console.dead_letters()
    if index is None:
        error = "No Kafka configured for the console (LAUNCHRELAY_BOOTSTRAP_SERVERS)."
    else:
        try:
            await index.refresh()
        except LaunchRelayError as exc:
            error = str(exc)
        letters, matched = index.page(number, DEAD_LETTERS_PER_PAGE, reason=q.get("reason") or None,
                                      sender=q.get("sender") or None)  # fmt: skip
    console.last_looked[who.name] = datetime.now(UTC)
    audit = await console.work(lambda: ledger.redrives()[:20] if (ledger := console.ledger()) else [])
    pages = max(1, -(-matched // DEAD_LETTERS_PER_PAGE))
    around = {k: v for k, v in q.items() if k in ("reason", "sender") and v}
    return page(request, "deadletters.html", letters=letters, query=dict(q), error=error, done=q.get("redriven"),
                audit=audit, number=number, pages=pages, matched=matched,
                forgotten=index.forgotten if index else 0,
                newer=urlencode({**around, "page": number - 1}) if number > 0 else None,
                older=urlencode({**around, "page": number + 1}) if number + 1 < pages else None)  # fmt: skip


@signed_in()
async def dead_letter_one(request: Request, who: Account) -> Response:
    """One dead letter with its original bytes and headers, read from the topic now."""
    console = _console(request)
    config, ref = console.config, request.path_params["ref"]
    if config.bootstrap is None:
        return PlainTextResponse("no Kafka configured for the console\n", 503)
    try:
        letter = await deadletters.read_dead_letter(config.bootstrap, console.topics, ref, config.client_options)
    except ValueError as exc:
        return PlainTextResponse(f"{exc}\n", 404)
    except LaunchRelayError as exc:
        return page(request, "deadletter.html", ref=ref, letter=None, error=str(exc), status_code=503)
    return page(request, "deadletter.html", ref=ref, letter=letter, error=None, status_code=200 if letter else 404,
                deadletter_topic=console.topics.deadletter)  # fmt: skip


@signed_in()
async def redrive_one(request: Request, who: Account) -> Response:
    console = _console(request)
    config, topics = console.config, console.topics
    ref = request.path_params["ref"]
    if who.role is not Role.OPERATOR:
        log.warning("console.redrive_refused", user=who.name, dead_letter=ref, why="not an operator")
        return PlainTextResponse("only an operator may redrive\n", 403)
    if request.method == "GET":  # the confirmation step
        return page(request, "redrive.html", ref=ref, deadletter_topic=topics.deadletter)
    if await form_with_csrf(request) is None:
        return PlainTextResponse(_CSRF_REFUSED, 403)
    if config.bootstrap is None:
        return PlainTextResponse("no Kafka configured for the console\n", 503)
    if config.operator_key is None:
        error = "the console has no operator key to sign redrives with (set LAUNCHRELAY_OPERATOR_KEY)"
        return page(request, "redrive.html", ref=ref, deadletter_topic=topics.deadletter, error=error)
    try:
        mark = (config.operator_key, f"console:{who.name}")
        (done,) = await deadletters.redrive(config.bootstrap, topics, [ref], config.client_options, mark)
    except LaunchRelayError as exc:
        return page(request, "redrive.html", ref=ref, deadletter_topic=topics.deadletter, error=str(exc))
    target = str(done.to)

    def record() -> None:
        ledger = console.ledger()
        if ledger is not None:
            ledger.record_redrive(datetime.now(UTC), who.name, f"{topics.deadletter}:{ref}", target)

    await console.work(record)
    log.info("console.redrive", user=who.name, dead_letter=f"{topics.deadletter}:{ref}", to=target)
    return RedirectResponse(f"/deadletters?redriven={ref}", 303)


@signed_in()
async def health(request: Request, who: Account) -> Response:
    console = _console(request)
    services = console.config.services
    found = await asyncio.gather(*(asyncio.to_thread(probe, n, u) for n, u in services.items()))
    views, views_error = console.view_checks(), None
    if views is not None:
        try:
            await views.refresh(fresh_s=console.config.views_fresh_s)
        except LaunchRelayError as exc:
            views_error = str(exc)
    return page(request, "health.html", services=found, views=views, views_error=views_error)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


ROUTES = [
    Route("/", board),
    Route("/board/rows", rows_fragment),
    Route("/board/counts", counts_fragment),
    Route("/events", events),
    Route("/n/{ident:path}", notification),
    Route("/deadletters", dead_letter_list),
    Route("/deadletters/{ref}", dead_letter_one),
    Route("/deadletters/{ref}/redrive", redrive_one, methods=["GET", "POST"]),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/health", health),
    Route("/healthz", healthz),
    Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
]


#: On every response: nothing but the console's own files may run, style or be fetched (no inline script or
#: style, which the templates have none of), no page may frame it (a framed redrive button cannot be clicked for
#: an operator), no type is guessed, no address leaks to another site.
PROTECTIVE_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
#: Over TLS: browsers keep to HTTPS for a year.
HSTS = "max-age=31536000"


class ProtectiveHeaders:
    """ASGI middleware: the headers above on every response; ``no-store`` on all but the static assets (a page
    about a notification must not sit in a shared cache); HSTS when served over TLS. Plain ASGI, so the live
    stream passes through unbuffered."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PROTECTIVE_HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["cache-control"] = "no-store"
                if self.tls:
                    headers["strict-transport-security"] = HSTS
            await send(message)

        await self.app(scope, receive, with_headers)


def build_app(config: ConsoleConfig) -> Starlette:
    """The console for ``config``: the routes above, the session middleware, and the application's state."""
    console = Console(config)
    middleware = [
        Middleware(ProtectiveHeaders, tls=config.secure_cookies),
        Middleware(
            SessionMiddleware,
            secret_key=config.session_key,
            session_cookie="launchrelay_console",
            # lax: a link from mail, chat or an alert opens the page signed in (a top-level GET carries the cookie);
            # other sites' forms and requests still do not, and every form needs the session's CSRF token
            same_site="lax",
            https_only=config.secure_cookies,
            max_age=int(config.session_lifetime_s),
        ),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        console.close()

    app = Starlette(routes=ROUTES, middleware=middleware, lifespan=lifespan)
    app.state.console = console
    return app
