"""Operations: logs are structured events with the ids, metrics move, health and readiness answer."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import structlog
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from harness import RelayProcess, cli, deploy_config, make_deploy, message
from launchrelay.clients.publisher import Publisher
from launchrelay.contract import encode
from launchrelay.provision.local import free_port
from launchrelay.relay.decide import InboundRecord, RelayContext, decide
from launchrelay.relay.metrics import RelayMetrics
from launchrelay.relay.observe import committed, observe
from launchrelay.relay.state import MemoryState
from launchrelay.runtime.logging import RepeatFilter, configure_logging
from launchrelay.signing import Signer


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def fetch(url: str, accept: str, encoding: str = "identity") -> tuple[str, bytes]:
    """Content type and body of ``url`` asked for in format ``accept`` (a gzipped body is unzipped)."""
    request = urllib.request.Request(url, headers={"Accept": accept, "Accept-Encoding": encoding})
    with urllib.request.urlopen(request, timeout=5) as resp:
        body = resp.read()
        zipped = resp.headers.get("Content-Encoding") == "gzip"
        return resp.headers["Content-Type"], gzip.decompress(body) if zipped else body


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return 0.0


@pytest.mark.kafka
async def test_relay_metrics_move_and_health_answers(kafka_bootstrap: str, tmp_path: Path) -> None:
    """/healthz and /readyz answer; forwards, rejections by reason and commit times show on /metrics."""
    deploy = await make_deploy(kafka_bootstrap, tmp_path)
    port = free_port()
    relay = RelayProcess(deploy, "relay-ops", extra_env={"LAUNCHRELAY_METRICS_PORT": str(port)}).start()
    base = f"http://127.0.0.1:{port}"
    try:
        await relay.wait("relay.partitions_assigned")
        assert await asyncio.to_thread(get, f"{base}/healthz") == (200, "ok\n")
        async with asyncio.timeout(30):
            while (answer := await asyncio.to_thread(get, f"{base}/readyz"))[0] != 200:
                await asyncio.sleep(0.3)
        assert "partitions assigned" in answer[1]
        _, before = await asyncio.to_thread(get, f"{base}/metrics")
        # created at start for the configured agreements: the first forward is an increase from 0
        assert 'launchrelay_forwarded_total{agreement="CN-RU-2009",recipient="RU",sender="CN"} 0.0' in before
        assert metric(before, "launchrelay_ready") == 1 and metric(before, "process_cpu_seconds_total") > 0
        openmetrics = await asyncio.to_thread(fetch, f"{base}/metrics", "application/openmetrics-text; version=1.0.0")
        assert openmetrics[0].startswith("application/openmetrics-text") and openmetrics[1].endswith(b"# EOF\n")
        plain = await asyncio.to_thread(fetch, f"{base}/metrics", "text/plain", "gzip")
        assert plain[0].startswith("text/plain; version=0.0.4") and b"launchrelay_ready 1.0" in plain[1]
        async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix) as cn:
            notice = message("CN", ["RU"])
            assert (await cn.publish_and_wait(notice, 45)).outcome == "forwarded"
            await cn.publish_raw(b"garbage", b"k", [])
            bad = message("CN", ["RU"])
            raw = encode(bad)
            sent = await cn.publish_raw(raw, bad.launch_key.encode(), deploy.signers["CN"].headers(raw + b"!"))
            await cn.wait_receipt(json.loads(raw)["message_id"], 45)
        assert sent.offset >= 0
        _, after = await asyncio.to_thread(get, f"{base}/metrics")
        fwd = dict(agreement="CN-RU-2009", sender="CN", recipient="RU")
        assert (
            metric(after, "launchrelay_forwarded_total", **fwd)
            == metric(before, "launchrelay_forwarded_total", **fwd) + 1
        )
        assert metric(after, "launchrelay_rejected_total", reason="NOT_JSON") == 1
        assert metric(after, "launchrelay_rejected_total", reason="SIGNATURE_INVALID", sender="CN") == 1
        assert metric(after, "launchrelay_messages_in_total", sender="CN") >= 3
        assert metric(after, "launchrelay_transaction_commit_seconds_count") >= 1
        assert "launchrelay_consumer_lag" in after
        assert (await asyncio.to_thread(get, f"{base}/nothing"))[0] == 404
        # the ops server does not take SIGTERM from the service: the relay finishes and exits 0
        assert relay.terminate() == 0
        assert any(e.get("event") == "relay.stopped" for e in relay.events()), "stopped in its own words"
    finally:
        relay.ensure_stopped()


async def test_relay_logs_one_event_per_outcome_with_the_ids(tmp_path: Path) -> None:
    """A forward and a rejection each log one event carrying message id, launch key, agreement, sender, reasons."""
    deploy = await make_deploy_offline(tmp_path)
    ctx = RelayContext.build(deploy)
    metrics = RelayMetrics()
    good = message("CN", ["RU"])
    raw = encode(good)
    now_ms = int(time.time() * 1000)
    record = InboundRecord(
        "launchrelay.CN.out", 0, 7, good.launch_key.encode(), raw, _signers["CN"].headers(raw), now_ms
    )
    late = InboundRecord("launchrelay.CN.out", 0, 8, b"k", b"{", [], now_ms)
    decisions = [decide(record, ctx, MemoryState()), decide(late, ctx, MemoryState())]
    with capture_logs() as logs:
        observe(decisions, "r1", metrics)
        committed(TopicPartition("launchrelay.CN.out", 0), decisions, "r1")
    forwarded, rejected, batch = logs
    # per record, a forward is told at DEBUG; the transaction's INFO line names every message id in it
    assert forwarded["event"] == "relay.forwarded" and forwarded["log_level"] == "debug"
    assert batch["event"] == "relay.committed" and batch["log_level"] == "info"
    assert batch["message_ids"] == [good.message_id] and batch["partition"] == "launchrelay.CN.out:0"
    assert (batch["first_offset"], batch["last_offset"], batch["forwarded"], batch["rejected"]) == (7, 8, 1, 1)
    assert forwarded["message_id"] == good.message_id and forwarded["launch_key"] == good.launch_key
    assert forwarded["agreement"] == "CN-RU-2009" and forwarded["sender"] == "CN" and forwarded["recipients"] == ["RU"]
    assert rejected["event"] == "relay.rejected" and rejected["log_level"] == "warning"
    assert rejected["reasons"] == ["NOT_JSON"] and rejected["source"] == "launchrelay.CN.out:0:8"
    assert metrics.rejected.labels("-", "CN", "NOT_JSON")._value.get() == 1
    assert metrics.forwarded.labels("CN-RU-2009", "CN", "RU")._value.get() == 1
    assert metrics.messages_in.labels("CN")._value.get() == 2


def test_json_logs_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """Production output is one JSON object per line, with level and UTC timestamp; the level filters."""
    configure_logging("WARNING", "json")
    try:
        log = structlog.get_logger("t")
        log.info("hidden.event")
        log.warning("relay.rejected", message_id="m1", reasons=["NOT_JSON"])
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
        assert [x["event"] for x in lines] == ["relay.rejected"]
        assert lines[0]["level"] == "warning" and lines[0]["message_id"] == "m1" and lines[0]["timestamp"].endswith("Z")
    finally:
        structlog.reset_defaults()


def test_library_records_are_json_and_repeats_are_summarised(capsys: pytest.CaptureFixture[str]) -> None:
    """aiokafka's warnings come out as JSON like ours; one per kind per window, then a count of those held back."""
    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    clock = [0.0]
    repeat = next(f for f in handler.filters if isinstance(f, RepeatFilter))
    repeat._clock = lambda: clock[0]
    try:
        conn = logging.getLogger("aiokafka.conn")
        for i in range(200):
            conn.warning("Unable connect to %r: %r", f"node-{i % 3}", "refused")
        logging.getLogger("aiokafka.consumer").error("Fetch failed: %s", "boom")
        clock[0] = 31.0
        conn.warning("Unable connect to %r: %r", "node-0", "refused")
        try:
            raise RuntimeError("inside the library")
        except RuntimeError:
            logging.getLogger("aiokafka.producer").exception("send failed")
        err = capsys.readouterr().err
        lines = [json.loads(x) for x in err.splitlines()]  # every line is JSON, or this raises
        assert [(x["logger"], x["level"]) for x in lines] == [
            ("aiokafka.conn", "warning"), ("aiokafka.consumer", "error"), ("aiokafka.conn", "warning"),
            ("aiokafka.producer", "error"),
        ]  # fmt: skip
        assert lines[0]["event"] == "Unable connect to 'node-0': 'refused'" and "repeated" not in lines[0]
        assert lines[2]["repeated"] == 199 and lines[2]["timestamp"].endswith("Z")
        assert "RuntimeError: inside the library" in lines[3]["exception"]
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()


# --- helpers for the offline test ---------------------------------------------------------------
_signers: dict = {}


async def make_deploy_offline(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The test deployment's config, without touching a broker."""
    from launchrelay.agreements.config import parse_config
    from launchrelay.signing import Signer

    for p in ("CN", "RU", "relay"):
        _signers[p] = Signer.generate(f"{p.lower()}-k1")
    data = {
        "relay": {"presets": ["CN-RU-2009"]},
        "parties": {p: {"name": p, "keys": {_signers[p].key_id: _signers[p].public_b64}} for p in ("CN", "RU")},
    }
    return parse_config(data)


def test_the_sdk_holds_the_kafka_clients_repeats_without_touching_the_root_logger() -> None:
    """A program using Publisher or Inbox without this package's logging set-up still gets one line per kind of
    aiokafka record per window, not one per reconnect attempt (35 a second were seen in a broker outage)."""
    import logging

    from launchrelay.runtime.logging import quiet_library_logs

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    conn = logging.getLogger("aiokafka.conn.sdk-test")
    keep = Keep()
    conn.addHandler(keep)
    conn.propagate = False
    try:
        root_filters = list(logging.getLogger().filters)
        quiet_library_logs()
        quiet_library_logs()  # twice is once
        for i in range(200):
            conn.warning("Unable connect to %r: %r", f"node-{i % 3}", "refused")
        assert len(seen) == 1 and len(conn.filters) == 2  # a repeat filter and a transient one
        assert logging.getLogger().filters == root_filters
    finally:
        conn.removeHandler(keep)
        conn.filters.clear()


def test_the_kafka_clients_retry_warnings_stay_out_of_sight_unless_they_persist() -> None:
    """aiokafka's "…, retrying" warnings (NotEnoughReplicas for a moment after a single broker restarts) are held
    while the condition is younger than 15 s; one that persists passes once per 15 s with its age and the count
    held; another error, or a condition seen again after a quiet spell, starts afresh; other records pass."""
    import logging

    from launchrelay.runtime.logging import TransientFilter

    now = [0.0]
    f = TransientFilter(persist_s=15, quiet_s=5, clock=lambda: now[0])

    def rec(error: str, msg: str = "Got error produce response on topic-partition %s, retrying. Error: %s",
            level: int = logging.WARNING) -> logging.LogRecord:  # fmt: skip
        return logging.LogRecord("aiokafka.producer.sender", level, __file__, 1, msg, ("t-0", error), None)

    passed = []
    for _ in range(10):  # 9 s of a routine retry: nothing shown
        passed.append(f.filter(rec("NotEnoughReplicasError")))
        now[0] += 1
    assert not any(passed)
    now[0] += 10  # quiet for 10 s: seen again, it starts afresh
    assert not f.filter(rec("NotEnoughReplicasError"))
    for _ in range(20):  # persists: shown once it has lasted 15 s
        now[0] += 1
        if f.filter(shown := rec("NotEnoughReplicasError")):
            break
    assert shown.persisted_s == 15 and shown.repeated == 15  # type: ignore[attr-defined]
    assert not f.filter(rec("NotEnoughReplicasError"))  # the next window starts now
    assert not f.filter(rec("NotLeaderForPartitionError"))  # another kind
    assert f.filter(rec("x", msg="Unable connect to node %s: %s"))  # not a retry warning: the repeat filter's job
    assert f.filter(rec("x", level=logging.ERROR))


@pytest.mark.parametrize("problem", ["no key", "unregistered key"])
def test_redrive_needs_a_registered_operator_key(problem: str, tmp_path: Path) -> None:
    """`launchrelay redrive` signs its mark: with no operator key, or one the config does not register, it says so
    (exit 2) before touching Kafka."""
    deploy = deploy_config("127.0.0.1:1", tmp_path, "lr")
    env = deploy.env("ops")
    if problem == "no key":
        del env["LAUNCHRELAY_OPERATOR_KEY"]
    else:
        (tmp_path / "other.pem").write_bytes(Signer.generate("x").to_pem())
        env["LAUNCHRELAY_OPERATOR_KEY"] = str(tmp_path / "other.pem")
    done = cli(env, "redrive", "0:0")
    assert done.returncode == 2, done.stderr
    assert ("LAUNCHRELAY_OPERATOR_KEY" if problem == "no key" else "not registered in [relay] operator_keys") in (
        done.stderr
    )
