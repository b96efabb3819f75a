"""The console in a real browser: Playwright driving Debian's chromium, headless, against the console served by
uvicorn. Sign in, watch a notice appear and turn overdue without reloading, open its story, be refused a form
without its CSRF token, sign out. With LAUNCHRELAY_SCREENSHOTS=DIR the board and a story are saved there
(docs/console-*.png were made so)."""

from __future__ import annotations

import asyncio
import math
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


def _bearing_and_angle(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """On the sphere, as d3-geo works: the initial bearing from ``a`` to ``b`` and the angle between them, radians
    (computed here, not by the page, so the test does not grade the page's arithmetic with itself)."""
    lon1, lat1, lon2, lat2 = (math.radians(v) for v in (*a, *b))
    dlon = lon2 - lon1
    north = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    bearing = math.atan2(math.sin(dlon) * math.cos(lat2), north)
    cosine = math.sin(lat1) * math.sin(lat2) + math.cos(lat1) * math.cos(lat2) * math.cos(dlon)
    angle = math.acos(max(-1.0, min(1.0, cosine)))
    return bearing, angle


def test_a_notifications_map_draws_each_area_where_it_is(tmp_path: Path, page: Page) -> None:
    """Issue 26: a watch would rather look at a map than read coordinates. Each story draws its launch area,
    impact areas and direction (and for IN-PK the boundary with the distances the rules measured), from the
    console's own files only. Each impact area is found where it should be: at its true bearing and distance from
    the launch area in the page's projection (centred on the launch, distances true from it), worked out here
    from the coordinates; across the antimeridian and over the pole as anywhere else, never smeared across the
    world."""
    from harness import deploy_config
    from launchrelay.agreements.config import load_config
    from test_console_map import circle, notice

    cases = {
        "cn-map": (
            "CN-RU-2009",
            notice(circle(100.29, 40.96, 20), circle(110.3, 45.2, 40), direction={"azimuth_deg": 60}),
        ),
        "cn-dateline": (
            "CN-RU-2009",
            notice(circle(179.2, 52.0, 30), circle(-179.6, 53.5, 60), direction={"sector": "NE"}),
        ),
        "cn-pole": ("CN-RU-2009", notice(circle(20.0, 88.5, 25), circle(-160.0, 87.5, 40))),
        "in-map": ("IN-PK-2005", notice(circle(74.6, 26.0, 5), circle(72.0, 25.0, 30), direction={"sector": "W"})),
    }
    users = tmp_path / "users.toml"
    set_user(users, "olga", Role.OPERATOR, PASSWORD)
    with SqliteLedger(tmp_path / "ledger.sqlite") as db:
        db.apply([forwarded(ident, 5).model_copy(update={"agreement": agreement, "notice": body})
                  for ident, (agreement, body) in cases.items()], {("lr.status", 0): len(cases)})  # fmt: skip
    agreements = dict(load_config(deploy_config("127.0.0.1:1", tmp_path / "deploy").config).agreements)
    refused_by_policy: list[str] = []
    page.on("console", lambda m: refused_by_policy.append(m.text) if "Content Security Policy" in m.text else None)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith("http://127.0.0.1") else None)
    config = ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=users, agreements=agreements)
    with served_in_thread(build_app(config)) as base:
        sign_in(page, base, "olga")
        for ident, (_, body) in cases.items():
            page.goto(f"{base}/n/CN/{ident}")
            expect(page.locator("#map")).to_have_attribute("data-drawn", "land", timeout=10_000)
            drawn = page.evaluate("""() => {
                const svg = document.getElementById("map");
                const box = (p) => { const b = p.getBBox(); return [b.x + b.width / 2, b.y + b.height / 2, b.width]; };
                return {scale: +svg.dataset.scale, translate: svg.dataset.translate.split(",").map(Number),
                        paths: [...svg.querySelectorAll("path[data-role]")].map((p) => [p.dataset.role, box(p)]),
                        land: svg.querySelector("path.land").getAttribute("d").length};
            }""")
            centres = {role: box for role, box in drawn["paths"] if role in ("launch", "impact")}
            tx, ty = drawn["translate"]
            launch, impact = body["launch_area"]["centre"], body["impact_areas"][0]["centre"]
            bearing, angle = _bearing_and_angle((launch["lon"], launch["lat"]), (impact["lon"], impact["lat"]))
            want = (tx + drawn["scale"] * angle * math.sin(bearing), ty - drawn["scale"] * angle * math.cos(bearing))
            got = centres["impact"]
            slack = 3 + 0.03 * drawn["scale"] * angle
            assert abs(got[0] - want[0]) < slack and abs(got[1] - want[1]) < slack, (ident, got, want)
            assert abs(centres["launch"][0] - tx) < 3 and abs(centres["launch"][1] - ty) < 3, ident
            assert got[2] < 720 / 3, f"{ident}: the impact area is drawn {got[2]:.0f} px wide (smeared?)"
            assert "direction" in dict(drawn["paths"]) or "direction" not in body, ident
            assert drawn["land"] > 1000, "Natural Earth's land is drawn"
        # IN-PK: the boundary (75 E, east of the site) and the measured distances, the short one in red
        boundary = next(box for role, box in drawn["paths"] if role == "boundary")
        assert boundary[0] > drawn["translate"][0]
        assert [r for r, _ in drawn["paths"]].count("distance") == 2
        expect(page.locator("ul.measures li.short").first).to_contain_text("launch area: ")
        expect(page.locator("#map text").first).to_be_visible()
        shot(page, "console-map.png")
    assert refused_by_policy == [] and outside == []
