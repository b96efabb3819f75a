"""The console under load: `python -m bench.console_load [--rounds 2] [--loads 200] [--dead-letters 300]`.

The console runs as its own process (uvicorn, one worker, as `launchrelay console` serves it) over a ledger of
408 notifications (a fifth of them overdue) and a dead-letter topic of 300 dead letters of 150 KB each (45 MB)
on a local broker. Each round, at once: 200 board loads (each its own connection, signed in), 8 loads of the
dead-letters page, and a /healthz probe every 20 ms, as Kubernetes' liveness probe would ask while it happens.

Two variants alternate, round by round, in one run: the console as shipped (a rendered board shared by every
request for it while the ledger is unchanged, for at most a second) and the same console rendering every
request (`cache_s = 0`). Both render pages on one page thread, so /healthz is answered by the event loop
meanwhile. Figures: board and dead-letter load times (p50, p95, max), /healthz (p50, p95, max), the console's
peak resident memory (VmHWM), and the machine's load average. Targets (issue 26): board p95 under 1 s,
/healthz under 100 ms meanwhile, memory under 256 MiB. Results: bench/results/console_load.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiokafka import AIOKafkaProducer

from bench.measure import CpuWaited, percentiles, share_range, write_results
from launchrelay.contract.events import EventKind, StatusEvent
from launchrelay.kafka.admin import ensure_topics, topic_specs
from launchrelay.provision.local import free_port
from launchrelay.provision.provide import provide_broker
from launchrelay.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench console password"
PARTIES = ["CN", "RU"]


# --- the console's world ------------------------------------------------------------------------


def fill_ledger(path: Path, notifications: int) -> None:
    """``notifications`` forwarded notices over the last two hours, every fifth overdue."""
    from launchrelay.tracker.ledger import SqliteLedger

    now = datetime.now(UTC)
    events: list[StatusEvent] = []
    for i in range(notifications):
        common: dict[str, Any] = {"message_id": f"cn-{i:05d}", "message_type": "planned_launch",
                                  "agreement": "CN-RU-2009", "sender": "CN", "recipients": ["RU"],
                                  "launch_key": f"L-{i:05d}"}  # fmt: skip
        at = now - timedelta(minutes=i % 120)
        events.append(StatusEvent(event_id=f"f-{i}", kind=EventKind.FORWARDED, at=at, ack_deadline_s=3600, **common))
        if i % 5 == 0:
            events.append(StatusEvent(event_id=f"o-{i}", kind=EventKind.ACKNOWLEDGEMENT_OVERDUE, at=now, **common))
    with SqliteLedger(path) as ledger:
        ledger.apply(events, {("bench.status", 0): len(events)})


async def fill_dead_letters(bootstrap: str, topics: Topics, count: int, size: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=size + (1 << 16))
    await producer.start()
    try:
        for i in range(count):
            body = b'{"sender": "CN", "message_id": "cn-dl-%05d", "pad": "%s"}' % (i, b"x" * size)
            headers = [("lr-reasons", b"KEY_UNKNOWN"), ("lr-source-topic", topics.outbound("CN").encode()),
                       ("lr-source-partition", b"0"), ("lr-source-offset", str(i).encode())]  # fmt: skip
            await producer.send(topics.deadletter, body, key=b"CN", headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def serve(args: argparse.Namespace) -> None:
    """The console process (`python -m bench.console_load --serve ...`)."""
    import uvicorn

    from launchrelay.console.app import ConsoleConfig, build_app

    config = ConsoleConfig(ledger=Path(args.ledger), users=Path(args.users), bootstrap=args.bootstrap,
                           topic_prefix=args.prefix, cache_s=args.cache_s)  # fmt: skip
    uvicorn.run(build_app(config), host="127.0.0.1", port=args.port, log_config=None, access_log=False)


# --- a plain HTTP/1.1 client: one connection per request, as 200 browsers would open ------------------


async def http(
    port: int, method: str, path: str, cookie: str = "", body: bytes = b"", timeout_s: float = 120.0
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        if cookie:
            head.append(f"Cookie: {cookie}")
        if body:
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            raw = await reader.read(-1)
    finally:
        writer.close()
    top, _, content = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        content = _unchunk(content)
    return int(lines[0].split()[1]), headers, content


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def _cookie(headers: dict[str, str]) -> str:
    return headers.get("set-cookie", "").split(";")[0]


async def sign_in(port: int) -> str:
    _, headers, page = await http(port, "GET", "/login")
    cookie = _cookie(headers)
    token = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert token, "the sign-in form carries a CSRF token"
    form = urlencode({"name": "watch", "password": PASSWORD, "csrf": html.unescape(token.group(1).decode())})
    status, headers, _ = await http(port, "POST", "/login", cookie, form.encode())
    assert status == 303, f"sign-in answered {status}"
    return _cookie(headers) or cookie


async def timed(port: int, path: str, cookie: str, expect: bytes) -> float:
    start = time.perf_counter()
    status, _, body = await http(port, "GET", path, cookie)
    took = (time.perf_counter() - start) * 1000
    assert status == 200 and expect in body, f"{path} answered {status}"
    return took


async def one_round(port: int, loads: int, dead_letter_loads: int) -> dict[str, Any]:
    cookie = await sign_in(port)
    healthz: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            healthz.append(await timed(port, "/healthz", "", b"ok"))
            await asyncio.sleep(0.02)

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.1)
    boards = [timed(port, "/", cookie, b'data-id="cn-00000"') for _ in range(loads)]
    letters = [timed(port, "/deadletters", cookie, b"dead letters") for _ in range(dead_letter_loads)]
    results = await asyncio.gather(*boards, *letters)
    done.set()
    await prober
    return {
        "board_ms": percentiles(list(results[:loads])),
        "dead_letters_ms": percentiles(list(results[loads:])),
        "healthz_ms": percentiles(healthz),
        "healthz_probes": len(healthz),
    }


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the console exited with {proc.returncode}")
        try:
            status, _, _ = await http(port, "GET", "/healthz", timeout_s=2)
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("the console did not answer /healthz")


async def run_variant(
    name: str, cache_s: float, world: dict[str, Any], loads: int, dead_letter_loads: int
) -> dict[str, Any]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.console_load", "--serve", "--port", str(port), "--cache-s", str(cache_s),
            "--ledger", str(world["ledger"]), "--users", str(world["users"]), "--bootstrap", world["bootstrap"],
            "--prefix", world["prefix"]]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await wait_listening(port, proc)
        waited = CpuWaited()
        figures = await one_round(port, loads, dead_letter_loads)
        figures["cpu_waited"] = waited.share()
        figures["peak_rss_mib"] = peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    figures |= {"variant": name, "load_1m": round(os.getloadavg()[0], 2)}
    b, d, h = figures["board_ms"], figures["dead_letters_ms"], figures["healthz_ms"]
    print(f"{name:<14} board p50 {b['p50']:7.0f} p95 {b['p95']:7.0f} max {b['max']:7.0f} ms | dead letters p95 "
          f"{d['p95']:6.0f} ms | healthz p95 {h['p95']:5.1f} max {h['max']:6.1f} ms | peak {figures['peak_rss_mib']} "
          f"MiB | load {figures['load_1m']}")  # fmt: skip
    return figures


VARIANTS = {"shared render": 1.0, "render each": 0.0}


async def bench(
    rounds: int, loads: int, dead_letters: int, notifications: int, env_bootstrap: str | None, out: Path
) -> None:
    from launchrelay.console.accounts import Role, set_user

    work = Path(tempfile.mkdtemp(prefix="lr-console-load-"))
    topics = Topics("bench")
    with provide_broker(bootstrap=env_bootstrap, data_dir=work / "kafka", port=free_port(),
                        controller_port=free_port()) as bootstrap:  # fmt: skip
        await ensure_topics(bootstrap, topic_specs(topics, PARTIES, 3, 1))
        await fill_dead_letters(bootstrap, topics, dead_letters, 150_000)
        fill_ledger(work / "ledger.sqlite", notifications)
        set_user(work / "users.toml", "watch", Role.VIEWER, PASSWORD)
        world = {"ledger": work / "ledger.sqlite", "users": work / "users.toml", "bootstrap": bootstrap,
                 "prefix": topics.prefix}  # fmt: skip
        runs: list[dict[str, Any]] = []
        order = list(VARIANTS)
        for r in range(rounds):
            for name in order if r % 2 == 0 else list(reversed(order)):  # alternate which goes first
                runs.append({"round": r, **await run_variant(name, VARIANTS[name], world, loads, 8)})
    summary = {
        name: {
            "board_p95_ms": max(x["board_ms"]["p95"] for x in runs if x["variant"] == name),
            "healthz_max_ms": max(x["healthz_ms"]["max"] for x in runs if x["variant"] == name),
            "dead_letters_p95_ms": max(x["dead_letters_ms"]["p95"] for x in runs if x["variant"] == name),
            "peak_rss_mib": max(x["peak_rss_mib"] for x in runs if x["variant"] == name),
        }
        for name in VARIANTS
    }
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()  # fmt: skip
    setup = {"board_loads": loads, "dead_letter_loads": 8, "dead_letters": dead_letters,
             "dead_letter_bytes": 150_000, "notifications": notifications, "rounds": rounds}  # fmt: skip
    doc = {
        "when": datetime.now(UTC).isoformat(),
        "commit": commit,
        "machine": {"cpus": os.cpu_count(), "load_1m_start": runs[0]["load_1m"] if runs else None},
        "setup": setup,
        "targets": {"board_p95_ms": 1000, "healthz_ms": 100, "peak_rss_mib": 256},
        "summary": summary,
        "runs": runs,
    }
    table = [f"| {n} | {s['board_p95_ms']:.0f} | {s['dead_letters_p95_ms']:.0f} | {s['healthz_max_ms']:.1f} | "
             f"{s['peak_rss_mib']} |" for n, s in summary.items()]  # fmt: skip
    lines = [
        "# The console under load",
        "",
        f"{loads} board loads at once ({notifications} notifications) with 8 dead-letter page loads "
        f"({dead_letters} dead letters of 150 KB) and /healthz every 20 ms; {rounds} rounds, variants alternating. "
        f"Commit {doc['commit']}. Worst of the rounds:",
        "",
        "| variant | board p95 ms | dead letters p95 ms | /healthz max ms | peak memory MiB |",
        "|---|---|---|---|---|",
        *table,
        "",
        "Targets: board p95 under 1000 ms, /healthz under 100 ms, memory under 256 MiB. Each run: "
        + "; ".join(
            f"{x['variant']} round {x['round']} at load {x['load_1m']}, some task waiting for a CPU "
            f"{share_range([x.get('cpu_waited')])} of it"
            for x in runs
        ),
        "",
    ]
    write_results(out, "console_load", doc, "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--loads", type=int, default=200)
    parser.add_argument("--dead-letters", type=int, default=300)
    parser.add_argument("--notifications", type=int, default=408)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    for name in ("--port", "--cache-s", "--ledger", "--users", "--bootstrap", "--prefix"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        args.port, args.cache_s = int(args.port), float(args.cache_s)
        serve(args)
        return
    asyncio.run(bench(args.rounds, args.loads, args.dead_letters, args.notifications,
                      os.environ.get("LAUNCHRELAY_BOOTSTRAP_SERVERS"), args.out))  # fmt: skip


if __name__ == "__main__":
    main()
