"""The console in a real browser: Playwright driving Debian's chromium, headless, against the console served by
uvicorn. Sign in, watch a notice appear and turn overdue without reloading, open its story, be refused a form
without its CSRF token, sign out. With LAUNCHRELAY_SCREENSHOTS=DIR the board and a story are saved there
(docs/console-*.png were made so)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from harness import RelayProcess, make_deploy, publish_refused, served_in_thread
from launchrelay.console.accounts import Role, set_user
from launchrelay.console.app import ConsoleConfig, build_app
from launchrelay.tracker.ledger import SqliteLedger
from test_console import PASSWORD, dead_letter_console, forwarded, overdue

T = TypeVar("T")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: as the machine's notes say: no background traffic (the network is closed), no first-run work
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    users = tmp_path / "users.toml"
    set_user(users, "olga", Role.OPERATOR, PASSWORD)
    ledger = tmp_path / "ledger.sqlite"
    with SqliteLedger(ledger) as db:
        db.apply([forwarded("cn-0001", 10), forwarded("cn-0002", 90), overdue("cn-0002")], {("lr.status", 0): 3})
    with served_in_thread(build_app(ConsoleConfig(ledger=ledger, users=users, poll_s=0.2))) as base:
        yield base, ledger


@pytest.fixture
def page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is missing: Debian's chromium package provides it (make test installs it as root)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 720})
        finally:
            browser.close()


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")


def shot(page: Page, name: str) -> None:
    where = os.environ.get("LAUNCHRELAY_SCREENSHOTS")
    if where:
        page.screenshot(path=str(Path(where) / name), full_page=True)


def test_sign_in_watch_live_open_a_story_and_sign_out(served: tuple[str, Path], page: Page) -> None:
    base, ledger = served
    refused_by_policy: list[str] = []  # the protective headers' CSP must refuse nothing the console itself does
    page.on("console", lambda m: refused_by_policy.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=%2F")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    page.fill("input[name=name]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")
    overdue_row = page.locator('tr[data-id="cn-0002"]')
    expect(overdue_row).to_have_class("state-overdue")
    assert page.locator("tbody tr").first.get_attribute("data-id") == "cn-0002", "overdue first"

    # the tracker writes: a new notice appears, then turns overdue, without a reload (within 2 s each)
    marker = page.evaluate("() => (window.__same_page = true)")
    assert marker is True
    with SqliteLedger(ledger) as db:
        db.apply([forwarded("cn-0003", 61)], {("lr.status", 0): 4})
    expect(page.locator('tr[data-id="cn-0003"]')).to_have_class("state-pending", timeout=2000)
    with SqliteLedger(ledger) as db:
        db.apply([overdue("cn-0003")], {("lr.status", 0): 5})
    expect(page.locator('tr[data-id="cn-0003"]')).to_have_class("state-overdue", timeout=2000)
    expect(page.locator("#counts")).to_contain_text("2 acknowledgements overdue", timeout=2000)  # counts live too
    assert page.evaluate("() => window.__same_page") is True, "the page was not reloaded"
    shot(page, "console-board.png")

    page.click('a[href="/n/CN/cn-0003"]')
    expect(page.locator("h1")).to_contain_text("cn-0003")
    expect(page.locator("ol.timeline")).to_contain_text("timed_out")
    expect(page.locator("body")).to_contain_text("RU: overdue by")
    shot(page, "console-timeline.png")

    refused = page.request.post(f"{base}/logout", form={"csrf": "forged"})
    assert refused.status == 403, "a form without the session's CSRF token is refused"
    page.click("text=Sign out")
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login?next=%2F")
    assert refused_by_policy == []


@pytest.mark.kafka
def test_a_viewer_cannot_redrive_and_an_operator_can(kafka_bootstrap: str, tmp_path: Path, page: Page) -> None:
    """In the browser: a refused message in the dead letters with its reason's sentence; the viewer has no redrive
    and a forged one is refused; the operator confirms and the dead letter goes back, recorded by name."""
    deploy = elsewhere(make_deploy(kafka_bootstrap, tmp_path / "deploy"))
    relay = RelayProcess(deploy, "relay-browser").start()
    config = dead_letter_console(deploy, tmp_path)
    try:
        relay.wait_for("relay.partitions_assigned")
        bad = elsewhere(publish_refused(deploy))
        with served_in_thread(build_app(config)) as base:
            browse(page, base, bad.message_id)
    finally:
        relay.ensure_stopped()


def elsewhere(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end on a thread of its own (Playwright's sync API holds this thread's event loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


def browse(page: Page, base: str, message_id: str) -> None:
    sign_in(page, base, "victor")
    page.click("text=Dead letters")
    row = page.locator("tr[data-ref]").filter(has_text=message_id)
    expect(row).to_contain_text("KEY_UNKNOWN")
    ref = row.get_attribute("data-ref")
    assert ref
    expect(row.locator("text=Redrive…")).to_have_count(0)
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    assert page.request.post(f"{base}/deadletters/{ref}/redrive", form={"csrf": token or ""}).status == 403
    page.click("text=Sign out")

    sign_in(page, base, "olga")
    page.goto(f"{base}/deadletters")
    page.locator("tr[data-ref]").filter(has_text=message_id).locator("text=Redrive…").click()
    expect(page.locator("h1")).to_contain_text(f"Redrive dead letter {ref}?")
    page.click("button:has-text('Redrive')")
    expect(page).to_have_url(f"{base}/deadletters?redriven={ref}")
    expect(page.get_by_role("status")).to_contain_text(f"Dead letter {ref} sent back")
    expect(page.locator("body")).to_contain_text(f":{ref} → ")  # the audit: who, which, where to
    expect(page.locator("body")).to_contain_text("olga: ")


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Another site: a page served from ``localhost`` (the console is on 127.0.0.1, so a different site to the
    browser), as a link in mail, chat or an alert would be."""
    import functools
    import http.server
    import threading

    root = tmp_path / "elsewhere"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_a_link_from_another_site_opens_the_page_it_names(
    served: tuple[str, Path], other_site: tuple[str, Path], page: Page
) -> None:
    """Issue 26: a link from elsewhere to a notification's page landed on sign-in (and replaced the signed-in
    cookie), and after signing in the operator was on the board. Now: signed in, the link opens the story; signed
    out (a new browser), it opens sign-in and then the story."""
    base, _ = served
    elsewhere, root = other_site
    (root / "alert.html").write_text(f'<a id="go" href="{base}/n/cn-0002">cn-0002 is overdue</a>')
    sign_in(page, base, "olga")
    page.goto(f"{elsewhere}/alert.html")
    page.click("#go")
    expect(page).to_have_url(f"{base}/n/cn-0002")
    expect(page.locator("h1")).to_contain_text("cn-0002")
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/")  # still signed in: the visit replaced nothing

    fresh = page.context.browser.new_page()  # type: ignore[union-attr]
    fresh.goto(f"{elsewhere}/alert.html")
    fresh.click("#go")
    expect(fresh).to_have_url(f"{base}/login?next=%2Fn%2Fcn-0002")
    fresh.fill("input[name=name]", "olga")
    fresh.fill("input[name=password]", PASSWORD)
    fresh.click("button[type=submit]")
    expect(fresh).to_have_url(f"{base}/n/cn-0002")
