"""The operators' console in process: accounts with argon2 hashes and roles, sign-in with a brake on guessing,
session cookies that scripts and other sites cannot use, CSRF tokens on every change, the board of open
notifications (overdue first) with filters and search, a notification's story, and the live feed that tells
the page when the ledger changed."""

from __future__ import annotations

import html
import http.cookiejar
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from harness import Deploy, RelayProcess, make_deploy, message, publish_refused, read_topic, served_in_thread
from launchrelay.clients.publisher import Publisher
from launchrelay.console.accounts import LoginBrake, Role, load_users, set_user, verify
from launchrelay.console.app import ConsoleConfig, build_app
from launchrelay.contract import encode
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.errors import ConfigError
from launchrelay.provision.local import free_port
from launchrelay.provision.tls import make_broker_tls
from launchrelay.signing import read_redrive
from launchrelay.tracker.ledger import SqliteLedger

PASSWORD = "correct horse battery"


def forwarded(message_id: str, minutes_ago: float, deadline_s: float = 3600) -> StatusEvent:
    return StatusEvent(
        event_id=f"e-{message_id}", kind=EventKind.FORWARDED, at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        message_id=message_id, message_type="planned_launch", agreement="CN-RU-2009", sender="CN",
        recipients=["RU"], launch_key=f"L-{message_id}", ack_deadline_s=deadline_s,
    )  # fmt: skip


def overdue(message_id: str) -> StatusEvent:
    """What the tracker writes when RU's acknowledgement deadline passes."""
    return StatusEvent(
        event_id=f"o-{message_id}", kind=EventKind.ACKNOWLEDGEMENT_OVERDUE, at=datetime.now(UTC),
        message_id=message_id, message_type="planned_launch", agreement="CN-RU-2009", sender="CN",
        recipients=["RU"], launch_key=f"L-{message_id}",
    )  # fmt: skip


def accounts(tmp_path: Path) -> Path:
    """A users file with olga, an operator, and victor, a viewer."""
    users = tmp_path / "users.toml"
    set_user(users, "olga", Role.OPERATOR, PASSWORD)
    set_user(users, "victor", Role.VIEWER, PASSWORD)
    return users


def dead_letter_console(deploy: Deploy, tmp_path: Path) -> ConsoleConfig:
    """A console over the deployment's dead letters: both accounts, an empty ledger, the operator's key."""
    SqliteLedger(tmp_path / "ledger.sqlite").close()
    return ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path), bootstrap=deploy.bootstrap,
                         topic_prefix=deploy.prefix, operator_key=deploy.operator_signer)  # fmt: skip


@pytest.fixture
def console(tmp_path: Path) -> TestClient:
    users = accounts(tmp_path)
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.apply([forwarded("cn-due", 5), forwarded("cn-late", 90), overdue("cn-late")], {("lr.status", 0): 3})
    ledger.close()
    return TestClient(build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=users, poll_s=0.05)))


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "every form carries a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, name: str = "olga", password: str = PASSWORD) -> int:
    token = csrf(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf": token},
                       follow_redirects=False).status_code  # fmt: skip


def test_accounts_are_stored_as_argon2_hashes_with_a_role(tmp_path: Path) -> None:
    users = tmp_path / "u.toml"
    set_user(users, "olga", Role.OPERATOR, PASSWORD)
    text = users.read_text()
    assert PASSWORD not in text and "$argon2id$" in text and oct(users.stat().st_mode & 0o777) == "0o600"
    loaded = load_users(users)
    assert verify(loaded, "olga", PASSWORD) is not None and verify(loaded, "olga", "wrong password!") is None
    assert verify(loaded, "nobody", PASSWORD) is None
    with pytest.raises(ConfigError, match="12 characters"):
        set_user(users, "short", Role.VIEWER, "short")


def test_pages_need_an_account_and_the_cookie_is_httponly_lax(console: TestClient) -> None:
    """SameSite=Lax, not Strict: a link from mail, chat or an alert must open the page it names signed in (issue 26:
    Strict sent the visit from another site to sign-in, and the anonymous cookie then replaced the signed-in one);
    other sites' forms and requests still carry no cookie, and every form needs the session's CSRF token."""
    assert console.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    assert console.get("/events").status_code == 401
    assert sign_in(console, password="not the password") == 401
    token = csrf(console.get("/login").text)
    done = console.post("/login", data={"name": "olga", "password": PASSWORD, "csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    cookie = done.headers["set-cookie"].lower()
    assert cookie.startswith("launchrelay_console=") and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie.split(";")[1:], "plain HTTP here; Secure when served over TLS"
    assert console.get("/").status_code == 200


def test_a_login_without_its_csrf_token_is_refused(console: TestClient) -> None:
    console.get("/login")
    done = console.post("/login", data={"name": "olga", "password": PASSWORD}, follow_redirects=False)
    assert done.status_code == 403


def test_failed_logins_are_braked_per_user_and_address(console: TestClient) -> None:
    codes = [sign_in(console, "olga", f"guess number {i}") for i in range(5)]
    assert codes == [401] * 5
    assert sign_in(console, "olga", PASSWORD) == 429, "from the same address the right password waits out the brake"
    clock = [0.0]
    brake = LoginBrake(attempts=2, per_address=3, window_s=60, clock=lambda: clock[0])
    brake.failed("a", "1.2.3.4")
    brake.failed("a", "1.2.3.4")
    assert brake.blocked("a", "1.2.3.4") and not brake.blocked("a", "5.6.7.8") and not brake.blocked("b", "1.2.3.4")
    brake.failed("b", "1.2.3.4")
    assert brake.blocked("c", "1.2.3.4"), "one address trying many names waits too"
    clock[0] = 61
    assert not brake.blocked("c", "1.2.3.4")


def test_an_attackers_typos_do_not_lock_the_user_out(tmp_path: Path) -> None:
    """Issue 26: five wrong passwords for a user from one address refused the user's right password from any
    address for a minute, again and again. Now the brake counts per (user, address): olga signs in from her own
    address while the attacker's is braked; an address trying many names is braked whatever the name."""
    app = build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path)))
    app.state.console.brake.per_second = 1000  # the rate per second is not what this test is about (a fast machine)
    attacker = TestClient(app, client=("203.0.113.9", 40000))
    olga = TestClient(app, client=("198.51.100.7", 40000))
    assert [sign_in(attacker, "olga", f"guess {i}") for i in range(6)] == [401] * 5 + [429]
    assert sign_in(olga, "olga", PASSWORD) == 303
    spray = [sign_in(attacker, f"user{i}", "a guess of twelve") for i in range(20)]
    assert spray[-1] == 429 and sign_in(attacker, "victor", PASSWORD) == 429


def test_the_brake_holds_its_memory_and_its_log_whatever_the_names(tmp_path: Path) -> None:
    """Issue 26: 120 refusals of 1 MB names took the console from 102 to 218 MiB, never returned, and wrote 120 MB
    of log; and the brake forgot every count past 10,000 names. Now names are cut to 64 characters in its keys and
    the log, and past its bound it drops the oldest keys only."""
    import structlog

    app = build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path)))
    client = TestClient(app, client=("203.0.113.9", 40000))
    with structlog.testing.capture_logs() as logs:
        for i in range(4):
            assert sign_in(client, f"{i}" + "x" * 1_000_000, "a guess of twelve") == 401
    brake = app.state.console.brake
    assert all(len(k) < 200 for k in brake._failures)
    assert all(len(str(e.get("user", ""))) < 100 for e in logs), [len(str(e.get("user"))) for e in logs]
    bounded = LoginBrake(most=100)
    for i in range(1000):
        bounded.failed(f"name{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(bounded) <= 100
    bounded.failed("olga", "10.9.9.9")
    assert ("pair:olga\x0010.9.9.9") in bounded._failures, "the newest are kept"


def test_at_most_so_many_sign_ins_a_second_are_taken() -> None:
    clock = [5.2]
    brake = LoginBrake(per_second=3, clock=lambda: clock[0])
    assert [brake.busy() for _ in range(4)] == [False, False, False, True]
    clock[0] = 6.0
    assert brake.busy() is False


def test_the_board_shows_open_notifications_overdue_first_with_filters_and_search(console: TestClient) -> None:
    sign_in(console)
    page = console.get("/").text
    assert page.index("cn-late") < page.index("cn-due"), "overdue rows first"
    assert 'class="state-overdue" data-id="cn-late"' in page
    assert "cn-due" not in console.get("/?state=overdue").text
    assert "cn-due" in console.get("/?q=L-cn-due").text and "cn-late" not in console.get("/?q=L-cn-due").text
    assert "Nothing here" in console.get("/?agreement=HCOC").text
    story = console.get("/n/cn-late").text
    assert "forwarded" in story and "RU: overdue by" in story


def test_sign_out_needs_the_token_and_ends_the_session(console: TestClient) -> None:
    sign_in(console)
    assert console.post("/logout", data={}, follow_redirects=False).status_code == 403
    token = csrf(console.get("/").text)
    assert console.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert console.get("/", follow_redirects=False).status_code == 303


def test_the_live_feed_says_when_the_ledger_changes(console: TestClient, tmp_path: Path) -> None:
    """Another process (the tracker) writes to the ledger; the feed sends `changed` within a poll or two."""
    sign_in(console)

    def write_later() -> None:
        time.sleep(0.3)
        ledger = SqliteLedger(tmp_path / "ledger.sqlite")
        ledger.apply([forwarded("cn-new", 0)], {("lr.status", 0): 3})
        ledger.close()

    writer = threading.Thread(target=write_later)
    started = time.monotonic()
    writer.start()
    seen = ""
    with console.stream("GET", "/events") as feed:
        for line in feed.iter_lines():
            seen += line + "\n"
            if "event: changed" in line or time.monotonic() - started > 10:
                break
    writer.join()
    assert "event: changed" in seen and time.monotonic() - started < 2
    assert "cn-new" in console.get("/board/rows").text


@pytest.mark.kafka
async def test_dead_letters_show_their_reasons_and_only_an_operator_redrives(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A refused message is listed with the sentence of each reason; a viewer sees no redrive and is refused one;
    an operator confirms, needs the CSRF token, and the redrive goes back to the out topic, recorded in the
    ledger (who, when, which) and the log."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path / "deploy")
    relay = RelayProcess(deploy, "relay-console").start()
    config = dead_letter_console(deploy, tmp_path)
    try:
        await relay.wait("relay.partitions_assigned")
        await publish_refused(deploy)
        viewer = TestClient(build_app(config))
        sign_in(viewer, "victor")
        listing = viewer.get("/deadletters").text
        ref = re.search(r'data-ref="(\d+:\d+)"', listing)
        assert ref and "KEY_UNKNOWN" in listing and "is not registered for CN" in listing  # the reason's sentence
        assert "Redrive…" not in listing
        refused = viewer.post(f"/deadletters/{ref.group(1)}/redrive", data={"csrf": csrf(listing)})
        assert refused.status_code == 403

        operator = TestClient(build_app(config))
        sign_in(operator, "olga")
        confirm = operator.get(f"/deadletters/{ref.group(1)}/redrive")
        assert confirm.status_code == 200 and "Redrive dead letter" in confirm.text
        assert operator.post(f"/deadletters/{ref.group(1)}/redrive", data={}).status_code == 403
        unkeyed = TestClient(build_app(replace(config, operator_key=None)))  # a console with no key to sign with
        sign_in(unkeyed, "olga")
        page = unkeyed.get(f"/deadletters/{ref.group(1)}/redrive").text
        said = unkeyed.post(f"/deadletters/{ref.group(1)}/redrive", data={"csrf": csrf(page)}).text
        assert "no operator key" in said
        done = operator.post(f"/deadletters/{ref.group(1)}/redrive", data={"csrf": csrf(confirm.text)},
                             follow_redirects=False)  # fmt: skip
        assert done.status_code == 303 and done.headers["location"] == f"/deadletters?redriven={ref.group(1)}"
        ledger = SqliteLedger(tmp_path / "ledger.sqlite")
        try:
            (audit,) = ledger.redrives()
        finally:
            ledger.close()
        assert audit["user"] == "olga" and audit["dead_letter"] == f"{deploy.topics.deadletter}:{ref.group(1)}"
        out = await read_topic(deploy.bootstrap, deploy.topics.outbound("CN"), lambda rs: len(rs) >= 2)
        assert len(out) == 2  # the console without a key wrote nothing
        mark = read_redrive(
            out[-1].value, out[-1].headers, {"operator-test": deploy.operator_signer.private_key.public_key()}
        )
        assert mark is not None and mark.authentic and mark.operator == "console:olga (operator-test)"
        assert mark.dead_letter == f"{deploy.topics.deadletter}:{ref.group(1)}"
        assert audit["target"].endswith(f":{out[-1].offset}")
    finally:
        relay.ensure_stopped()


async def write_dead_letters(deploy: Deploy, count: int, size: int) -> None:
    """``count`` dead letters as the relay writes them, each ``size`` bytes; every third refused SCHEMA_INVALID,
    the rest KEY_UNKNOWN."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=deploy.bootstrap, acks="all", max_request_size=4 << 20)
    await producer.start()
    try:
        for i in range(count):
            body = b'{"sender": "CN", "message_id": "cn-dl-%04d", "pad": "%s"}' % (i, b"x" * size)
            reason = b"SCHEMA_INVALID" if i % 3 == 0 else b"KEY_UNKNOWN"
            headers = [("lr-reasons", reason), ("lr-source-topic", deploy.topics.outbound("CN").encode()),
                       ("lr-source-partition", b"0"), ("lr-source-offset", str(i).encode())]  # fmt: skip
            await producer.send(deploy.topics.deadletter, body, key=b"CN", partition=0, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.kafka
async def test_dead_letters_are_paged_and_their_bytes_read_only_when_one_is_opened(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Issue 26: the dead-letters page read every dead letter's bytes from offset 0 on every load, with no paging
    (eight loads of 339 dead letters peaked at 623 MiB). Now: 50 a page, newest first, filtered; the list keeps a
    brief of each (no bytes) and reads on from where it stopped; a dead letter's bytes are read when it is opened.
    Reading 40 MB of dead letters holds a few MB at a time and keeps well under 1 MB."""
    import tracemalloc

    from launchrelay.ops.deadletters import DeadLetterIndex

    deploy = await make_deploy(kafka_bootstrap, tmp_path / "deploy")
    await write_dead_letters(deploy, 400, 100_000)
    index = DeadLetterIndex(deploy.bootstrap, deploy.topics)
    tracemalloc.start()
    try:
        await index.refresh()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB while reading 40 MB"
    assert held < 1 << 20, f"{held / 2**20:.1f} MiB kept for 400 briefs"
    assert index.page(0, 400)[1] == 400

    client = TestClient(build_app(dead_letter_console(deploy, tmp_path)))
    sign_in(client, "victor")
    first = client.get("/deadletters").text
    refs = re.findall(r'data-ref="0:(\d+)"', first)
    assert [int(r) for r in refs] == list(range(399, 349, -1)), "50 a page, newest first"
    assert "Page 1 of 8" in first and "400 dead letters" in first and "?page=1" in first and "Newer" not in first
    last = client.get("/deadletters?page=7").text
    assert re.findall(r'data-ref="0:(\d+)"', last)[-1] == "0" and "Older" not in last and "page=6" in last
    schema = client.get("/deadletters?reason=SCHEMA_INVALID&page=2").text
    assert "134 dead letters" in schema and "Page 3 of 3" in schema and "reason=SCHEMA_INVALID" in schema
    assert all(int(r) % 3 == 0 for r in re.findall(r'data-ref="0:(\d+)"', schema))
    assert "xxxxxxxxxx" not in first, "the list shows no bytes"

    opened = client.get("/deadletters/0:7")
    assert opened.status_code == 200 and "cn-dl-0007" in opened.text and "x" * 99_000 in opened.text
    assert "KEY_UNKNOWN" in opened.text and "Redrive" not in opened.text  # a viewer
    assert client.get("/deadletters/0:4000").status_code == 404
    assert client.get("/deadletters/999:0").status_code == 404, "a partition the topic does not have"
    assert client.get("/deadletters/nothing").status_code == 404

    await write_dead_letters(deploy, 1, 10)  # read on: the new one comes first, the old ones are not read again
    time.sleep(0.6)
    again = client.get("/deadletters").text
    assert re.findall(r'data-ref="0:(\d+)"', again)[0] == "400" and "401 dead letters" in again


def test_the_console_serves_tls_itself_and_marks_its_cookie_secure(tmp_path: Path) -> None:
    """`launchrelay console` with LAUNCHRELAY_CONSOLE_TLS_CERT/KEY: HTTPS (a certificate from a CA of our own),
    and the session cookie is Secure."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    files = make_broker_tls(tmp_path / "tls", "tls-test-password")
    key, cert, _ = pkcs12.load_key_and_certificates(files.keystore.read_bytes(), files.password.encode())
    assert key is not None and cert is not None
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))  # fmt: skip
    set_user(tmp_path / "users.toml", "olga", Role.OPERATOR, PASSWORD)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHRELAY_")}
    env |= {"LAUNCHRELAY_CONSOLE_PORT": str(port), "LAUNCHRELAY_CONSOLE_USERS": str(tmp_path / "users.toml"),
            "LAUNCHRELAY_LEDGER": str(tmp_path / "ledger.sqlite"), "LAUNCHRELAY_CONFIG": str(tmp_path / "none.toml"),
            "LAUNCHRELAY_CONSOLE_TLS_CERT": str(tmp_path / "cert.pem"),
            "LAUNCHRELAY_CONSOLE_TLS_KEY": str(tmp_path / "key.pem"), "LAUNCHRELAY_LOG_FORMAT": "json"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "launchrelay", "console"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    context = ssl.create_default_context(cafile=str(files.ca))
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context),
                                         urllib.request.HTTPCookieProcessor(jar))  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = opener.open(f"https://127.0.0.1:{port}/login", timeout=5).read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and proc.poll() is None, "the console did not serve HTTPS"
                time.sleep(0.3)
        form = urllib.parse.urlencode({"name": "olga", "password": PASSWORD, "csrf": csrf(page)}).encode()
        opener.open(f"https://127.0.0.1:{port}/login", data=form, timeout=5)
        (session,) = [c for c in jar if c.name == "launchrelay_console"]
        assert session.secure, "served over TLS: the cookie is Secure"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_health_page_shows_readiness_lag_and_the_last_broker_contact(console: TestClient) -> None:
    """From each service's own /readyz and /metrics (here a relay's ops endpoint with known figures, and one
    that does not answer)."""
    from launchrelay.relay.metrics import RelayMetrics
    from launchrelay.runtime.health import ops_app

    metrics = RelayMetrics()
    metrics.on_partition("lr.CN.out", 2, 17, 42.5)
    metrics.on_contact(time.time() - 3)
    app = ops_app(metrics.registry, lambda: (False, "stalled: lr.CN.out:2 has waited 43s with 17 behind"))
    with served_in_thread(app) as base:
        console.app.state.console.config.services = {"relay": base, "tracker": f"http://127.0.0.1:{free_port()}"}
        sign_in(console)
        page = console.get("/health").text
    relay = page.split('data-service="relay"')[1].split("</section>")[0]
    assert "not ready" in relay and "stalled: lr.CN.out:2" in relay
    assert "<td>lr.CN.out:2</td><td>17</td><td>42.5 s</td>" in relay
    assert re.search(r"last broker contact: [34] s ago", relay)
    tracker = page.split('data-service="tracker"')[1].split("</section>")[0]
    assert "unreachable" in tracker and "no answer" in tracker


def test_the_health_page_has_a_links_panel_from_the_relays_link_metrics(console: TestClient) -> None:
    """Two-centre mode: per link, silent or heard, when last heard, the beacon's delay, what waits on the mirrored
    topic, what the other side refused and the repeats absorbed; a link never heard from says so."""
    from launchrelay.relay.metrics import RelayMetrics
    from launchrelay.runtime.health import ops_app

    metrics = RelayMetrics()
    metrics.on_partition("RU.lr.link.CN", 0, 12, 3.0)
    metrics.on_partition("lr.CN.out", 0, 5, 1.0)  # not the link's: not counted as waiting on it
    metrics.link_last_heard.labels("RU").set(time.time() - 7)
    metrics.link_delay.labels("RU").set(0.25)
    metrics.link_silent.labels("RU").set(0)
    metrics.link_disagreements.labels("RU").inc(2)
    metrics.link_repeats.labels("RU").inc(3)
    metrics.link_silent.labels("IN").set(1)
    app = ops_app(metrics.registry, lambda: (True, "ready; link from IN silent for 300s"))
    with served_in_thread(app) as base:
        console.app.state.console.config.services = {"relay": base}
        sign_in(console)
        page = console.get("/health").text
    ru = page.split('data-link="RU"')[1].split("</tr>")[0]
    assert "heard" in ru and "silent" not in ru
    assert re.search(r"<td>[78] s ago</td><td>0.25 s</td><td>12</td><td>2</td><td>3</td>", ru), ru
    ind = page.split('data-link="IN"')[1].split("</tr>")[0]
    assert "silent" in ind and "never" in ind


def test_the_health_page_has_a_decision_log_panel(console: TestClient) -> None:
    """Issue 29: per log, when the relay last signed a head and the leaves since (the relay's metrics), how far the
    publisher has proved it to the parties; and the publisher's own check, red when a log's heads and leaves
    disagree."""
    from launchrelay.relay.metrics import ProofMetrics, RelayMetrics
    from launchrelay.runtime.health import ops_app

    relay, proofs = RelayMetrics(), ProofMetrics()
    relay.log_head_time.labels("lr.CN.out:0").set(time.time() - 4)
    relay.log_unheaded.labels("lr.CN.out:0").set(7)
    proofs.head_size.labels("lr.CN.out:0").set(120)
    proofs.head_time.labels("lr.CN.out:0").set(time.time() - 14)
    proofs.checked.inc(9)
    with served_in_thread(ops_app(relay.registry, lambda: (True, "ready"))) as relay_base, served_in_thread(
        ops_app(proofs.registry, lambda: (True, "proving heads"))
    ) as proofs_base:  # fmt: skip
        console.app.state.console.config.services = {"relay": relay_base, "proofs": proofs_base}
        sign_in(console)
        page = console.get("/health").text
        proofs.broken.set(1)
        broken = console.get("/health").text
    row = page.split('data-service="relay"')[1].split('data-log="lr.CN.out:0"')[1].split("</tr>")[0]
    assert re.search(r"<td>[45] s ago</td><td>7</td><td>-</td>", row), row
    proved = page.split('data-service="proofs"')[1].split('data-log="lr.CN.out:0"')[1].split("</tr>")[0]
    assert re.search(r"<td>120 leaves</td><td>1[45] s ago</td>", proved), proved
    assert 'data-broken="0"' in page and "every head agrees with its leaves" in page and "9 heads rebuilt" in page
    assert 'data-broken="1"' in broken and "1 log(s) whose heads and leaves disagree" in broken


@pytest.mark.kafka
async def test_a_notifications_page_shows_the_original_bytes_and_whether_they_verify(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The original record, read from its out topic where the ledger says it came from, byte for byte, with its
    signature checked against the sender's registered key: valid for a good one, not verifying for a tampered one."""
    from launchrelay.contract.messages import RecordRef

    deploy = await make_deploy(kafka_bootstrap, tmp_path / "deploy")
    good, bad = message("CN", ["RU"]), message("CN", ["RU"])
    raw_good, raw_bad = encode(good), encode(bad)
    async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix,
                         watch_receipts=False) as cn:  # fmt: skip
        at_good = await cn.publish(good)
        at_bad = await cn.publish_raw(raw_bad, bad.launch_key.encode(), deploy.signers["CN"].headers(raw_bad + b"!"))
    events = [
        forwarded(good.message_id, 1).model_copy(update={
            "source": RecordRef(topic=at_good.topic, partition=at_good.partition, offset=at_good.offset)}),
        forwarded(bad.message_id, 1).model_copy(update={
            "source": RecordRef(topic=at_bad.topic, partition=at_bad.partition, offset=at_bad.offset)}),
    ]  # fmt: skip
    with SqliteLedger(tmp_path / "ledger.sqlite") as db:
        db.apply(events, {("lr.status", 0): 2})
    users = tmp_path / "users.toml"
    set_user(users, "victor", Role.VIEWER, PASSWORD)
    keys = {"CN": {deploy.signers["CN"].key_id: deploy.signers["CN"].public_b64}}
    client = TestClient(build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=users,
                                                bootstrap=deploy.bootstrap, topic_prefix=deploy.prefix,
                                                party_keys=keys)))  # fmt: skip
    sign_in(client, "victor")
    page = client.get(f"/n/{good.message_id}").text
    assert "Signature: <strong>valid</strong>" in page and f"(key {deploy.signers['CN'].key_id})" in page
    shown = re.search(r'<pre class="original">(.*?)</pre>', page, re.DOTALL)
    assert shown and html.unescape(shown.group(1)) == raw_good.decode(), "the exact bytes, as published"
    assert "does not verify over these bytes" in client.get(f"/n/{bad.message_id}").text


def test_a_broken_accounts_file_or_ledger_is_said_not_thrown(console: TestClient, tmp_path: Path) -> None:
    """A user mistake in the accounts file is a clear 503 at sign-in, not a traceback; a corrupt ledger is named
    on the board (the tracker rebuilds it), not a 500."""
    users = tmp_path / "users.toml"
    good = users.read_text()
    users.write_text("[users.olga\\nrole = ")
    token = csrf(console.get("/login").text)
    broken = console.post("/login", data={"name": "olga", "password": PASSWORD, "csrf": token})
    assert broken.status_code == 503 and "accounts file cannot be read" in broken.text
    users.write_text(good)
    assert sign_in(console) == 303
    (tmp_path / "ledger.sqlite").write_bytes(b"\\xde\\xad" * 4096)
    board = console.get("/")
    assert board.status_code == 200 and "is corrupt" in board.text and "rebuilds it" in board.text


def test_every_route_but_sign_in_and_liveness_is_behind_the_one_guard() -> None:
    """Issue 28: the sign-in check is written once (signed_in) and every route a signed-in user sees goes through
    it; only the sign-in pages, the static assets and /healthz are open."""
    from starlette.routing import Route

    from launchrelay.console import app as console_app

    open_routes = {"/login", "/logout", "/healthz"}
    for route in console_app.ROUTES:
        if not isinstance(route, Route) or route.path in open_routes:
            continue
        assert getattr(route.endpoint, "__wrapped__", None) is not None, route.path  # functools.wraps of the guard


def _every_get(client: TestClient) -> dict[str, Any]:
    """A response of every GET route, signed in or not (the stream's first bytes only; a dead letter's redrive
    page for a made-up reference)."""
    from starlette.routing import Route

    from launchrelay.console import app as console_app

    paths = {"/n/{ident:path}": "/n/cn-due", "/deadletters/{ref}/redrive": "/deadletters/0-1/redrive"}
    out: dict[str, Any] = {}
    for route in console_app.ROUTES:
        if isinstance(route, Route) and "GET" in (route.methods or set()):
            path = paths.get(route.path, route.path)
            if path == "/events":
                with client.stream("GET", path) as streamed:
                    out[path] = streamed
                continue
            out[path] = client.get(path, follow_redirects=False)
    out["/static/console.js"] = client.get("/static/console.js")
    return out


def test_every_response_carries_the_protective_headers(console: TestClient, tmp_path: Path) -> None:
    """Issue 26: a strict CSP (no inline script), no framing, nosniff, no referrer on every response, signed in or
    not; no-store on everything but the static assets; HSTS only when served over TLS."""
    from launchrelay.console.app import PROTECTIVE_HEADERS

    for signed in (False, True):
        if signed:
            assert sign_in(console) == 303
        for path, response in _every_get(console).items():
            for name, value in PROTECTIVE_HEADERS.items():
                assert response.headers.get(name) == value, (path, name, signed)
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert "'unsafe-inline'" not in response.headers["content-security-policy"]
            no_store = response.headers.get("cache-control") == "no-store"
            assert no_store != path.startswith("/static/"), (path, response.headers.get("cache-control"))
            assert "strict-transport-security" not in response.headers, path
    over_tls = TestClient(build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path),
                                                  secure_cookies=True)), base_url="https://testserver")  # fmt: skip
    assert over_tls.get("/login").headers["strict-transport-security"] == "max-age=31536000"


def _replay(cookies: Any, tmp_path: Path, app: Any) -> TestClient:
    """Another client holding the same cookie (an attacker who kept it, or the old tab)."""
    other = TestClient(app)
    for name, value in cookies.items():
        other.cookies.set(name, value)
    return other


def test_sign_out_ends_the_session_whatever_the_cookie(tmp_path: Path) -> None:
    """Issue 26: after "Sign out" the old cookie opened the board and the live rows for 12 hours. Now the cookie
    names a session the console holds, and signing out ends it: replayed, it opens nothing."""
    app = build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path)))
    client = TestClient(app)
    assert sign_in(client) == 303
    kept = dict(client.cookies.items())
    assert client.get("/", follow_redirects=False).status_code == 200
    token = csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    replayed = _replay(kept, tmp_path, app)
    assert replayed.get("/", follow_redirects=False).headers["location"].startswith("/login?")
    assert replayed.get("/board/rows").status_code == 401
    assert replayed.get("/events").status_code == 401


def test_a_changed_role_or_password_ends_every_session_of_that_user(tmp_path: Path) -> None:
    """Issue 26: an operator demoted to viewer, with a new password, kept operator rights in the session they had
    and a redrive went through. Now the account file is checked on every request: both of olga's sessions end at
    once (the redrive is refused, back to sign-in), victor's goes on."""
    users = accounts(tmp_path)
    app = build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=users, bootstrap="127.0.0.1:1"))
    first, second, viewer = TestClient(app), TestClient(app), TestClient(app)
    assert sign_in(first) == sign_in(second) == sign_in(viewer, "victor") == 303
    token = csrf(first.get("/deadletters/launchrelay.deadletter-0-1/redrive").text)
    set_user(users, "olga", Role.VIEWER, "a new password of olga's")
    refused = first.post("/deadletters/launchrelay.deadletter-0-1/redrive", data={"csrf": token},
                         follow_redirects=False)  # fmt: skip
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login?")
    assert second.get("/", follow_redirects=False).headers["location"].startswith("/login?")
    assert viewer.get("/", follow_redirects=False).status_code == 200
    assert sign_in(first, password=PASSWORD) == 401  # the old password is gone too
    assert sign_in(first, password="a new password of olga's") == 303
    assert first.get("/deadletters/0-1/redrive").status_code == 403  # a viewer now


def test_a_session_ends_when_idle_and_at_its_lifetime(tmp_path: Path) -> None:
    """Session lifetime and idle timeout are settings (LAUNCHRELAY_CONSOLE_SESSION_LIFETIME_S, _IDLE_S): here
    60 s and 10 s on the console's clock."""
    now = [1000.0]
    config = ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path), session_lifetime_s=60,
                           session_idle_s=10, clock=lambda: now[0])  # fmt: skip
    client = TestClient(build_app(config))
    assert sign_in(client) == 303
    now[0] += 9
    assert client.get("/", follow_redirects=False).status_code == 200
    now[0] += 11  # idle past 10 s
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login?")
    assert sign_in(client) == 303
    for _ in range(6):  # busy, but 60 s after sign-in it ends all the same
        now[0] += 9
        assert client.get("/", follow_redirects=False).status_code == 200
    now[0] += 9
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login?")


def test_sessions_held_are_bounded() -> None:
    from launchrelay.console.accounts import Account
    from launchrelay.console.sessions import Sessions

    sessions = Sessions(most=3)
    sids = [sessions.start(Account(f"u{i}", Role.VIEWER), "h") for i in range(5)]
    assert len(sessions) == 3
    users = {f"u{i}": (Role.VIEWER, "h") for i in range(5)}
    assert [sessions.get(s, users) is not None for s in sids] == [False, False, True, True, True]


def test_signing_in_returns_to_the_page_the_link_named_and_never_elsewhere(console: TestClient) -> None:
    """Issue 26: a link to a notification's page lands on sign-in and, signed in, on that page (not the board); a
    signed-in visitor sent to /login goes straight on. Only this console's paths: no open redirect."""
    first = console.get("/n/cn-late?tab=timeline", follow_redirects=False)
    assert first.headers["location"] == "/login?next=%2Fn%2Fcn-late%3Ftab%3Dtimeline"
    form = console.get(first.headers["location"]).text
    assert 'name="next" value="/n/cn-late?tab=timeline"' in form
    done = console.post("/login", data={"name": "olga", "password": PASSWORD, "csrf": csrf(form),
                                        "next": "/n/cn-late?tab=timeline"}, follow_redirects=False)  # fmt: skip
    assert done.headers["location"] == "/n/cn-late?tab=timeline"
    assert console.get("/login?next=/deadletters", follow_redirects=False).headers["location"] == "/deadletters"
    for elsewhere in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "/login"):
        assert console.get("/login", params={"next": elsewhere}, follow_redirects=False).headers["location"] == "/"


def test_a_partys_own_redrive_mark_is_shown_as_unauthenticated() -> None:
    """Issue 26: a party's garbage with a forged ``lr-redrive`` header was listed as "redrive of …". The relay
    refuses a mark no operator key verifies (REDRIVE_UNAUTHENTICATED among the reasons); the console's list and
    the CLI's table say so, and only an operator's mark reads as a redrive."""
    from datetime import UTC, datetime

    from launchrelay.console.accounts import Account
    from launchrelay.ops.deadletters import DeadLetter, render_table
    from launchrelay.topics import Topics

    def letter(offset: int, reasons: str) -> DeadLetter:
        headers = [("lr-reasons", reasons.encode()), ("lr-redrive", b"launchrelay.deadletter:0:1"),
                   ("lr-source-topic", b"launchrelay.CN.out"), ("lr-source-partition", b"0"),
                   ("lr-source-offset", str(offset).encode())]  # fmt: skip
        return DeadLetter(0, offset, datetime(2026, 12, 3, tzinfo=UTC), b"k", b"junk", headers)

    forged, real = letter(7, "NOT_JSON,REDRIVE_UNAUTHENTICATED"), letter(8, "NOT_JSON")
    assert (forged.redrive_authenticated, real.redrive_authenticated) == (False, True)
    table = render_table([forged.as_dict(), real.as_dict()], Topics("launchrelay"))
    assert "UNAUTHENTICATED mark, claims redrive of launchrelay.deadletter:0:1" in table.splitlines()[1]
    assert "(redrive of launchrelay.deadletter:0:1)" in table.splitlines()[2]
    from launchrelay.console.app import TEMPLATES

    who = Account("olga", Role.OPERATOR)
    context = {"letters": [forged, real], "query": {}, "error": None, "done": None, "audit": [], "account": who}
    shown = TEMPLATES.env.get_template("deadletters.html").render(**context, csrf="x")
    assert shown.count("unauthenticated redrive mark") == 1 and shown.count("<small>redrive of") == 1


def test_two_parties_with_the_same_message_id_have_a_story_each(tmp_path: Path) -> None:
    """Issue 26: CN and RU may both send a message "m-1"; the board showed both rows but both linked to one story,
    so CN's could not be reached. Each row links to its sender's story (SENDER/ID)."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    cn = forwarded("m-1", 5)
    ru = cn.model_copy(update={"event_id": "e-ru", "sender": "RU", "recipients": ["CN"], "launch_key": "L-ru"})
    ledger.apply([cn, ru], {("lr.status", 0): 2})
    ledger.close()
    client = TestClient(build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path))))
    sign_in(client)
    board = client.get("/?state=all").text
    assert 'href="/n/CN/m-1"' in board and 'href="/n/RU/m-1"' in board
    for sender, other in (("CN", "RU"), ("RU", "CN")):
        story = client.get(f"/n/{sender}/m-1").text
        assert f"<dt>Route</dt><dd>{sender} → {other}</dd>" in story


def test_every_time_shown_says_it_is_utc(console: TestClient) -> None:
    """Issue 26: times carried no zone on some pages. On the board, a story and the filter's rows, every time shown
    is followed by UTC; the original message wraps rather than run off the screen."""
    from launchrelay.console.app import utc

    assert utc("2026-12-03T08:00:00+00:00") == "2026-12-03 08:00:00 UTC" == utc("2026-12-03T11:00:00+03:00")
    assert utc("2026-12-03T08:00:00Z", seconds=False) == "2026-12-03 08:00 UTC" and utc(None) == "-"
    sign_in(console)
    for path in ("/?state=all", "/board/rows?state=all", "/n/CN/cn-late"):
        text = console.get(path).text
        times = re.findall(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?:Z|[+-]\d\d:\d\d| UTC)?", text)
        assert times or not path.startswith("/n/"), path  # a story's timeline has times; these rows no window
        assert all(t.endswith(" UTC") for t in times), (path, [t for t in times if not t.endswith(" UTC")])
    css = console.get("/static/console.css").text
    assert re.search(r"pre\.original \{[^}]*white-space: pre-wrap", css)


def test_redrive_is_offered_only_where_it_could_change_the_outcome() -> None:
    """Issue 26: redrive was offered on dead letters that can only be refused again (not JSON, schema, lead time).
    A dead letter with a reason no config change undoes (reasons.FINAL) says "refused for good" instead; one that a
    registered key or a changed agreement could let through keeps its redrive."""
    from datetime import UTC, datetime

    from launchrelay.console.accounts import Account
    from launchrelay.console.app import TEMPLATES
    from launchrelay.ops.deadletters import DeadLetter
    from launchrelay.reasons import FINAL, ReasonCode

    assert {ReasonCode.NOT_JSON, ReasonCode.SCHEMA_INVALID, ReasonCode.LEAD_TIME_TOO_SHORT} <= FINAL
    assert not {ReasonCode.KEY_UNKNOWN, ReasonCode.AGREEMENT_UNKNOWN, ReasonCode.LEAD_TIME_TOO_LONG} & FINAL

    def letter(offset: int, reasons: str) -> DeadLetter:
        return DeadLetter(0, offset, datetime(2026, 12, 3, tzinfo=UTC), b"k", b"{}", [("lr-reasons", reasons.encode())])

    final, open_ = letter(1, "NOT_JSON"), letter(2, "KEY_UNKNOWN,AGREEMENT_UNKNOWN")
    assert (final.final, open_.final) == (["NOT_JSON"], [])
    assert (final.as_dict()["redrivable"], open_.as_dict()["redrivable"]) == (False, True)
    context = {"letters": [final, open_], "query": {}, "error": None, "done": None, "audit": [],
               "account": Account("olga", Role.OPERATOR)}  # fmt: skip
    shown = TEMPLATES.env.get_template("deadletters.html").render(**context, csrf="x")
    assert shown.count("Redrive…") == 1 and 'href="/deadletters/0:2/redrive"' in shown
    assert shown.count("refused for good") == 1


def test_the_board_counts_what_the_watch_must_see_first(tmp_path: Path) -> None:
    """Issue 26: overdue was visible, but rejections were not on the default board and nothing signalled new dead
    letters. Counts at the top, each a link: acknowledgements overdue and pending, rejected today (UTC), and new dead
    letters since this user last looked; an overdue row says whom the tracker alerted and when."""

    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    refused = StatusEvent(event_id="r-1", kind=EventKind.REJECTED, at=datetime.now(UTC), message_id="cn-bad",
                          message_type="planned_launch", agreement="CN-RU-2009", sender="CN", recipients=["RU"],
                          launch_key="L-bad", received_at=datetime.now(UTC))  # fmt: skip
    ledger.apply([forwarded("cn-due", 5), forwarded("cn-late", 90), overdue("cn-late"), refused],
                 {("lr.status", 0): 4})  # fmt: skip
    ledger.close()
    app = build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path)))
    client = TestClient(app)
    sign_in(client)
    board = client.get("/").text
    said = {label: int(n) for n, label in re.findall(r"<strong>(\d+)</strong> ([a-z ()A-Z]+)</a>", board)}
    assert said == {"acknowledgements overdue": 1, "pending": 1, "rejected today (UTC)": 1,
                    "new dead letters since your last look": 1}  # fmt: skip
    assert 'href="/?state=rejected"' in board and "cn-bad" in client.get("/?state=rejected").text
    app.state.console.last_looked["olga"] = datetime.now(UTC) + timedelta(seconds=1)  # as if just looked
    assert "<strong>0</strong> new dead letters" in client.get("/").text
    story = client.get("/n/CN/cn-late").text
    assert re.search(r"RU: overdue by [^;]+; CN alerted \d\d:\d\d UTC", story)


def test_pages_render_off_the_event_loop_so_healthz_answers_meanwhile(tmp_path: Path) -> None:
    """Issue 26: 200 board loads took /healthz to 19 s (Kubernetes' liveness probe gives 1 s), the pages being
    rendered on the event loop. They render on the console's page thread now: with that thread held, /healthz
    still answers, and a board load waits for the thread (it is not answered some other way)."""
    from concurrent.futures import ThreadPoolExecutor

    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.apply([forwarded("cn-held", 5)], {("lr.status", 0): 1})
    ledger.close()
    app = build_app(ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path)))
    gate = threading.Event()
    with served_in_thread(app) as base, ThreadPoolExecutor(1) as pool:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = {"name": "olga", "password": PASSWORD, "csrf": csrf(opener.open(f"{base}/login").read().decode())}
        opener.open(f"{base}/login", data=urllib.parse.urlencode(form).encode(), timeout=10)
        held = app.state.console._worker.submit(gate.wait, 60)  # the page thread busy, as under load
        board = pool.submit(lambda: opener.open(f"{base}/", timeout=60).read().decode())
        try:
            for _ in range(5):
                assert urllib.request.urlopen(f"{base}/healthz", timeout=10).read() == b"ok\n"
            assert not board.done(), "the board is rendered on the page thread, which is held"
        finally:
            gate.set()
        assert held.result(10) is True and 'data-id="cn-held"' in board.result(10)


def test_a_shared_board_is_never_older_than_the_ledger(tmp_path: Path) -> None:
    """The rendered board is shared by every request for it (the load figures depend on it), but only while the
    ledger is unchanged: a row the tracker commits shows on the very next load, as does the console's own write."""
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.apply([forwarded("cn-first", 5)], {("lr.status", 0): 1})
    config = ConsoleConfig(ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path), cache_s=3600)
    client = TestClient(build_app(config))
    sign_in(client)
    assert 'data-id="cn-first"' in client.get("/").text and "cn-second" not in client.get("/board/rows").text
    ledger.apply([forwarded("cn-second", 4)], {("lr.status", 0): 2})  # the tracker, another connection
    ledger.close()
    assert 'data-id="cn-second"' in client.get("/").text and 'data-id="cn-second"' in client.get("/board/rows").text
    assert "<strong>2</strong> pending" in client.get("/board/counts").text
