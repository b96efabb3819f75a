"""The benchmarks' parts that need no broker: the throughput anchor's records, the in-process CPU table, the
two-centre report."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.structs import ConsumerRecord
from bench.cpu import context, run
from bench.failover import markdown as failover_markdown
from bench.measure import CpuWaited, cpu_stalled_s, notice, share_range
from bench.same_work_pipe import outputs
from bench.tracker_scale import markdown as tracker_scale_markdown
from bench.two_centres import BARE, BARE_MIRROR, FLOOR_LINK, markdown, summarise

from launchrelay.provision.mirror import ClusterAccess, LocalMirror, mirror_properties
from launchrelay.relay.decide import InboundRecord, decide
from launchrelay.relay.outputs import plan
from launchrelay.relay.state import MemoryState
from launchrelay.signing import Signer

#: the members that hold the time of writing: the pipe and the relay write them a moment apart
_WRITTEN_AT = {"created_at", "at"}


def _without_times(value: bytes) -> object:
    try:
        data = json.loads(value)
    except ValueError:
        return value  # not JSON: compared as bytes
    return {k: v for k, v in data.items() if k not in _WRITTEN_AT} if isinstance(data, dict) else data


def test_same_work_pipe_writes_the_relays_records() -> None:
    """Forward, receipt, status event (with the notice) and state record: same topics, keys, headers and
    content as the relay's for the same input record, apart from the time each was written and the receipt's
    signature over it. A pipe that wrote less would flatter the relay's throughput ratio's denominator."""
    signers = {p: Signer.generate(f"{p.lower()}-anchor") for p in ("CN", "RU", "IN", "PK", "relay")}
    ctx = context(signers)
    key, value, headers = notice(signers["CN"], 7)
    now_ms = int(time.time() * 1000)
    topic = ctx.topics.outbound("CN")
    pipe = outputs(ctx, signers["relay"], ConsumerRecord(topic, 2, 41, now_ms, 1, key, value, None, len(key),
                                                         len(value), headers))  # fmt: skip
    decision = decide(InboundRecord(topic, 2, 41, key, value, headers, now_ms), ctx, MemoryState())
    assert decision.kind == "forwarded", decision.reasons
    relay = plan(decision, ctx.topics, signers["relay"], "same-work", datetime.now(UTC))
    assert [(o.topic, o.key) for o in pipe] == [(o.topic, o.key) for o in relay]
    assert [[n for n, _ in o.headers] for o in pipe] == [[n for n, _ in o.headers] for o in relay]
    assert [_without_times(o.value) for o in pipe] == [_without_times(o.value) for o in relay]
    status = json.loads(pipe[2].value)
    assert status["notice"] == json.loads(decision.notice_text or "null") and status["expires_at"]


def test_cpu_bench_times_every_part() -> None:
    """`bench.cpu` times each part of a notice's work in process, the encoders beside the models, and reports
    the median and range of each (a figure per row; speed itself is never asserted)."""
    figures = run(n=50, rounds=2)
    assert {"CN-RU decide + plan", "IN-PK decide + plan", "Ed25519 verify", "receipt: build the model (validated)",
            "receipt: encode its values (pydantic-core to_json)"} <= set(figures)  # fmt: skip
    for row in figures.values():
        assert 0 < row["min_us"] <= row["median_us"] <= row["max_us"]


def _round(variant: str, rate: int, p99: float, jit: dict[str, float], pressure: float | None) -> dict[str, object]:
    row: dict[str, object] = {"variant": variant, "rate": rate, "round": 1, "load_1m": 1.0, "sent": rate,
                              "arrived": rate, "p50": 5.0, "p95": 9.0, "p99": p99, "max": p99, "n": rate,
                              "cpu_cores": {"CN broker": 0.2}, "jit_s": jit, "cpu_waited": pressure}  # fmt: skip
    if variant == "relay path":
        row["stages"] = {s: {"p50": 1.0, "p99": 2.0} for s in ("CN relay", "mirror", "RU relay")}
    if variant == "floor path":
        row["stages"] = {s: {"p50": 0.5, "p99": 1.5} for s in ("CN pipe", "mirror", "RU pipe")}
    return row


def test_two_centre_tables_say_how_warm_and_how_busy_each_round_was() -> None:
    """The two-centre report names its warm-up, its JVM options, and each round's JIT seconds and CPU pressure:
    what tells a round measured against JVMs still compiling, or a machine with no CPU to spare, from the rest."""
    rounds = [_round("relay path", 10, 30.0, {"CN broker": 1.25, "RU broker": 0.5}, 0.42),
              _round("bare hop", 10, 20.0, {"CN broker": 0.25}, 0.1),
              _round("relay path", 100, 90.0, {}, None), _round("bare hop", 100, 30.0, {}, None)]  # fmt: skip
    doc = {"rounds": rounds, "summary": summarise(rounds), "warm_s": 120.0, "date": "today",
           "jvm_options": "-XX:TieredStopAtLevel=1",
           "backlog": {"cut_s": 60, "notices": 600, "delivered": 600, "drained_s": 0.5, "load_1m": 1.0}}  # fmt: skip
    text = markdown(doc)
    assert "carried 120 s of traffic before the rounds" in text
    assert "the JVMs ran with `-XX:TieredStopAtLevel=1`" in text
    assert "| relay path | 10 | 1 | 10 | 10 | 5.0 | 9.0 | 30.0 | 30.0 | 1.0 | 1.75 | 0.42 |" in text
    assert "| bare hop | 100 | 1 | 100 | 100 | 5.0 | 9.0 | 30.0 | 30.0 | 1.0 | 0 |  |" in text
    assert doc["summary"]["10"]["p99_ratio"] == 1.5 and doc["summary"]["100"]["p99_ratio"] == 3.0


def test_two_centre_tables_set_the_floor_path_beside_the_relay_path_where_the_run_had_one() -> None:
    """The floor path (two transactional pipes that check nothing, and the same mirror) gets its own p50, p99 and
    ratio to the bare hop, and its stages; a report of a run without it reads as before."""
    rounds = [_round(v, rate, p99, {}, None) for rate in (10, 100)
              for v, p99 in (("relay path", 60.0), ("floor path", 45.0), ("bare hop", 20.0))]  # fmt: skip
    doc = {"rounds": rounds, "summary": summarise(rounds), "warm_s": 120.0, "date": "today",
           "backlog": {"cut_s": 60, "notices": 600, "delivered": 600, "drained_s": 0.5, "load_1m": 1.0}}  # fmt: skip
    assert doc["summary"]["10"]["floor_p99_ratio"] == 2.25 and doc["summary"]["10"]["p99_ratio"] == 3.0
    text = markdown(doc)
    assert "| 10 | 5.0 | 60.0 | 5.0 | 20.0 | 3.0 | 5.0 | 45.0 | 2.25 |" in text
    assert "| floor path | 100 | 1 | 0.5 | 1.5 | 0.5 | 1.5 | 0.5 | 1.5 |" in text
    assert "| relay path | 10 | 1 | 1.0 | 2.0 | 1.0 | 2.0 | 1.0 | 2.0 |" in text
    without = [r for r in rounds if r["variant"] != "floor path"]
    old = markdown({**doc, "rounds": without, "summary": summarise(without)})
    assert "floor" not in old and "| 10 | 5.0 | 60.0 | 5.0 | 20.0 | 3.0 |\n" in old


def test_the_bare_mirror_reads_no_topic_of_the_centres_mirrors_as_heartbeats(tmp_path: Path) -> None:
    """The bench's bare mirror runs beside the centres' mirrors between the same clusters; with their separator
    MirrorMaker 2 would take each other's heartbeats topics back and forth until a name outgrew Kafka's limit and
    the mirrors died. Its own separator keeps the two apart; the rest of its flow is the centres' own."""
    bare = LocalMirror(tmp_path, ClusterAccess("CNB", "127.0.0.1:1"), ClusterAccess("RUB", "127.0.0.1:2"), BARE,
                       also=(FLOOR_LINK,), extra=BARE_MIRROR)  # fmt: skip
    props = bare.properties()
    assert props["replication.policy.separator"] == "_"
    assert props["CNB->RUB.topics"] == r"bare\.hop|floor\.link"
    centre = mirror_properties(ClusterAccess("CN", "127.0.0.1:1"), ClusterAccess("RU", "127.0.0.1:2"), "lr.link.RU")
    assert "replication.policy.separator" not in centre


def test_cpu_pressure_is_read_from_the_kernel_where_it_has_it() -> None:
    before = cpu_stalled_s()
    if not Path("/proc/pressure/cpu").exists():
        assert before is None
        return
    assert before is not None and before >= 0
    waited = CpuWaited()
    time.sleep(0.2)
    after = cpu_stalled_s()
    assert after is not None and after >= before  # a running total, in seconds
    share = waited.share()
    assert share is not None and 0 <= share <= 1.01  # of the time since it was made (rounded)
    lapped = waited.lap()  # and afresh from here
    assert lapped is not None and 0 <= lapped <= 1.01


def test_cpu_pressure_reads_as_a_range_of_percentages() -> None:
    assert share_range([0.12, None, 0.4]) == "12%–40%"
    assert share_range([0.3]) == share_range([0.3, 0.3]) == "30%"
    assert share_range([None]) == share_range([]) == "n/a"  # a kernel without pressure stall information


def test_failover_and_tracker_scale_tables_show_the_cpu_pressure_beside_the_load() -> None:
    kill = {"kind": "broker", "node": 1, "at": 0.0, "load_1m": 2.5, "pause_s": 3.1, "cpu_waited": 0.45}
    doc = {"date": "today", "rate_per_s": 100, "kills": [kill, {**kill, "kind": "controller", "cpu_waited": None}],
           "summary": {"broker": {"kills": 1, "median_s": 3.1, "worst_s": 3.1}}}  # fmt: skip
    table = failover_markdown(doc)
    assert "| 1 | broker | 1 | 3.1 | 2.5 | 45% |" in table and "| 2 | controller | 1 | 3.1 | 2.5 | n/a |" in table
    level = {"pending": 3000, "ready_s": 1.2, "rss_mb": 80.0, "lateness_ms": {"p50": 5, "p99": 9, "max": 10},
             "idle_cpu_pct_of_core": 1.0, "cpu_ms_per_event": 0.5, "ledger_mb": 1.0, "loadavg_1m": [1.0, 2.0],
             "cpu_waited": 0.25}  # fmt: skip
    doc = {"date": "today", "levels": [level], "flatness": {"cpu_per_event": 1.0, "rss": 1.0}}
    assert "| 1.0 → 2.0 | 25% |" in tracker_scale_markdown(doc)
