"""The benchmarks' parts that need no broker: the throughput anchor's records, the in-process CPU table."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord
from bench.cpu import context, run
from bench.measure import notice
from bench.same_work_pipe import outputs

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
