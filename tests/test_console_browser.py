"""The console in a real browser: Playwright driving Debian's chromium, headless, against the console served by
uvicorn. Sign in, watch a notice appear and turn overdue without reloading, open its story, be refused a form
without its CSRF token, sign out. With LAUNCHRELAY_SCREENSHOTS=DIR the board and a story are saved there
(docs/console-*.png were made so)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from launchrelay.broker.local import free_port
from launchrelay.console.accounts import Role, set_user
from launchrelay.console.app import ConsoleConfig, build_app
from launchrelay.tracker.ledger import SqliteLedger
from test_console import PASSWORD, forwarded, overdue

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
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(ConsoleConfig(ledger=ledger, users=users, poll_s=0.2)),
                                           host="127.0.0.1", port=port, log_config=None, access_log=False))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", ledger
    finally:
        server.should_exit = True
        thread.join(10)


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


def shot(page: Page, name: str) -> None:
    where = os.environ.get("LAUNCHRELAY_SCREENSHOTS")
    if where:
        page.screenshot(path=str(Path(where) / name), full_page=True)


def test_sign_in_watch_live_open_a_story_and_sign_out(served: tuple[str, Path], page: Page) -> None:
    base, ledger = served
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")
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
    assert page.evaluate("() => window.__same_page") is True, "the page was not reloaded"
    shot(page, "console-board.png")

    page.click('a[href="/n/cn-0003"]')
    expect(page.locator("h1")).to_contain_text("cn-0003")
    expect(page.locator("ol.timeline")).to_contain_text("timed_out")
    expect(page.locator("body")).to_contain_text("RU: overdue by")
    shot(page, "console-timeline.png")

    refused = page.request.post(f"{base}/logout", form={"csrf": "forged"})
    assert refused.status == 403, "a form without the session's CSRF token is refused"
    page.click("text=Sign out")
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")
