"""No record can stop the relay: a hostile corpus from foreign clients, interleaved with valid notices, live.

Kafka's own Java producer (tests/java/CorpusProducer.java) writes every record
exactly as given, with any codec; one record whose header name is not UTF-8 is
written as raw bytes (tests/rawrecord.py), since only librdkafka-based clients
can make one. All go to one partition of CN's out topic, each hostile record
followed by a valid notice. The relay is a real process with the default size
limit (1 MiB); while the corpus drains, its /readyz is polled and must never
report a stall.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from harness import Deploy, RelayProcess, hdr, make_deploy, message, read_topic, source_of
from launchrelay.contract import encode
from launchrelay.provision.local import ensure_jars, free_port
from rawrecord import send_with_invalid_header_name

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 1 << 20  # the relay's default limit
STALL_AFTER_S = 30


@pytest.fixture(scope="module")
def deploy(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Deploy:
    return asyncio.run(make_deploy(kafka_bootstrap, tmp_path_factory.mktemp("hostile"), max_bytes=MAX_BYTES))


class Readiness:
    """Polls /readyz in the background and keeps every answer that was not 200."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/readyz"
        self.bad: list[tuple[int, str]] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as resp:
                    resp.read()
            except urllib.error.HTTPError as exc:
                self.bad.append((exc.code, exc.read().decode()))
            except OSError as exc:
                self.bad.append((0, repr(exc)))
            self.polls += 1

    def __enter__(self) -> Readiness:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def relay(deploy: Deploy) -> Iterator[tuple[RelayProcess, int]]:
    port = free_port()
    env = {"LAUNCHRELAY_METRICS_PORT": str(port), "LAUNCHRELAY_STALL_AFTER_S": str(STALL_AFTER_S)}
    proc = RelayProcess(deploy, "relay-hostile", extra_env=env).start()
    try:
        proc.wait_for("relay.partitions_assigned")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ready before the corpus goes in, so any 503 after is the corpus'
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5):
                    break
            except OSError:
                time.sleep(0.3)
        yield proc, port
    finally:
        proc.ensure_stopped()


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def java_produce(deploy: Deploy, corpus: list[dict[str, Any]], work: Path) -> list[int]:
    """Write the corpus with Kafka's Java producer; the offsets it reports, in order."""
    path = work / "corpus.jsonl"
    lines = []
    for r in corpus:
        lines.append(json.dumps({
            "topic": r.get("topic", deploy.topics.outbound("CN")), "partition": 0, "key": b64(r.get("key")),
            "value": b64(r.get("value")), "headers": [[k, b64(v)] for k, v in r.get("headers", [])],
            "compression": r.get("compression", "none"),
        }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        ["java", "-cp", f"{ensure_jars()}/*", str(ROOT / "tests/java/CorpusProducer.java"), deploy.bootstrap,
         str(path)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [int(line.split()[1]) for line in done.stdout.split("\n") if line.strip()]


def valid(deploy: Deploy, compression: str = "none", **extra: Any) -> dict[str, Any]:
    """A valid CN notice, keyed and signed as the contract says; all share one launch, so their order shows."""
    m = message("CN", ["RU"], launch_key="CN-ORDER")
    raw = encode(m)
    return {"value": raw, "key": m.launch_key.encode(), "headers": deploy.signers["CN"].headers(raw),
            "compression": compression, "id": m.message_id, **extra}  # fmt: skip


def signed(deploy: Deploy, raw: bytes | None, code: str, key: bytes | None = b"CN-hostile") -> dict[str, Any]:
    headers = deploy.signers["CN"].headers(raw) if raw is not None else []
    return {"value": raw, "key": key, "headers": headers, "code": code}


def text_of(m: Any) -> str:
    return encode(m).decode()


def hostile_corpus(deploy: Deploy) -> list[dict[str, Any]]:
    """The records the issue lists, each with the reason code it must be refused with (each its own message)."""

    def base() -> str:
        text = text_of(message("CN", ["RU"], launch_key="CN-HOSTILE"))
        assert '"range_km":9000.0' in text and '"lat":28.5' in text
        return text

    def changed(old: str, new: str) -> bytes:
        return base().replace(old, new, 1).encode()

    polygon = {"kind": "polygon", "points": [{"lat": 10 + i * 1e-4, "lon": 70 + (i % 7) * 1e-3} for i in range(27000)]}
    big_raw = json.dumps(json.loads(base()) | {"impact_areas": [polygon]}).encode()
    assert 800_000 < len(big_raw) < MAX_BYTES
    over = json.dumps(json.loads(base()) | {"notes": {"en": "x" * (MAX_BYTES + 1000)}}).encode()
    return [
        signed(deploy, b'{"message_id": "\xff\xfe"}', "NOT_UTF8"),
        signed(deploy, changed('"range_km":9000.0', '"range_km":NaN'), "JSON_NON_FINITE"),
        signed(deploy, changed('"range_km":9000.0', '"range_km":Infinity'), "JSON_NON_FINITE"),
        signed(deploy, changed('"range_km":9000.0', '"range_km":1500,"range_km":9000.0'), "JSON_DUPLICATE_KEY"),
        signed(deploy, changed('"range_km":9000.0', '"range_km":1' + "0" * 400), "NUMBER_OUT_OF_RANGE"),
        signed(deploy, changed('"lat":28.5', '"lat":"28.5"'), "SCHEMA_INVALID"),
        signed(deploy, b'["planned_launch", "CN", "RU"]', "SCHEMA_INVALID"),
        signed(deploy, b"", "NOT_JSON"),
        signed(deploy, None, "NOT_JSON"),
        signed(deploy, base().encode(), "KEY_MISMATCH", key=None),
        signed(deploy, base().encode(), "KEY_MISMATCH", key=b"CN-not-this-launch"),
        signed(deploy, b"[" * 1000 + b"]" * 1000, "JSON_TOO_DEEP"),
        signed(deploy, b"[" * 100_000 + b"]" * 100_000, "JSON_TOO_DEEP"),
        signed(deploy, big_raw, "SCHEMA_INVALID", key=b"CN-HOSTILE"),
        signed(deploy, over, "OVERSIZE"),
        {
            "value": base().encode(),
            "key": b"CN-HOSTILE",
            "code": "SIGNATURE_MISSING",
            "headers": [("lr-signature", None), ("lr-key-id", b"cn-k1")],
        },
    ]


def by_source(records: list[ConsumerRecord]) -> dict[tuple[str, int, int], list[ConsumerRecord]]:
    out: dict[tuple[str, int, int], list[ConsumerRecord]] = {}
    for r in records:
        src = source_of(r) if hdr(r, "lr-source-topic") else None
        if src is None:
            body = json.loads(r.value) if r.value and r.value.startswith(b"{") else {}
            s = body.get("source") or {}
            src = (s.get("topic"), s.get("partition"), s.get("offset")) if s else None
        if src is not None:
            out.setdefault(src, []).append(r)
    return out


async def test_every_codec_is_read(deploy: Deploy, relay: tuple[RelayProcess, int], tmp_path: Path) -> None:
    """One notice per Kafka codec (none, gzip, snappy, lz4, zstd) from the Java client: each is forwarded once."""
    notices = [valid(deploy, codec) for codec in ("none", "gzip", "snappy", "lz4", "zstd")]
    offsets = await asyncio.to_thread(java_produce, deploy, notices, tmp_path)
    ids = {n["id"] for n in notices}

    def forwarded(rs: list[ConsumerRecord]) -> list[str]:
        return [json.loads(r.value)["message_id"] for r in rs if json.loads(r.value).get("message_id") in ids]

    copies = forwarded(
        await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"), lambda rs: set(forwarded(rs)) == ids)
    )
    assert sorted(copies) == sorted(ids) and len(offsets) == 5


async def test_hostile_corpus_never_stops_the_partition(
    deploy: Deploy, relay: tuple[RelayProcess, int], tmp_path: Path
) -> None:
    """Every hostile record ends as a dead letter with a receipt naming its reason; every valid notice is forwarded
    once, in order; /readyz never reports a stall; the relay never restarts."""
    proc, port = relay
    hostile = hostile_corpus(deploy)
    corpus: list[dict[str, Any]] = []
    for record in hostile:
        corpus += [record, valid(deploy)]
    corpus.append(valid(deploy, "zstd"))
    corpus[-1]["headers"] = [*corpus[-1]["headers"], ("x-trace", None)]  # a null header value rides along
    topic = deploy.topics.outbound("CN")
    with Readiness(port) as readiness:
        offsets = await asyncio.to_thread(java_produce, deploy, corpus, tmp_path)
        # the one record only a raw client can write, then a valid notice behind it
        last = valid(deploy)
        unreadable = await send_with_invalid_header_name(
            deploy.bootstrap, topic, 0, last["key"], last["value"], list(last["headers"])
        )
        after = valid(deploy)
        offsets.append(await asyncio.to_thread(java_produce, deploy, [after], tmp_path) and unreadable + 1)
        corpus.append(after)
        valid_ids = [r["id"] for r in corpus if "id" in r]

        def in_ru(rs: list[ConsumerRecord]) -> list[str]:
            return [
                json.loads(r.value).get("message_id") for r in rs if json.loads(r.value).get("message_id") in valid_ids
            ]

        ru = await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"),
                              lambda rs: set(in_ru(rs)) >= set(valid_ids), timeout_s=120)  # fmt: skip
        n_hostile = len(hostile) + 1
        dead = await read_topic(deploy.bootstrap, deploy.topics.deadletter,
                                lambda rs: sum(source_of(r) is not None and source_of(r)[0] == topic for r in rs)
                                >= n_hostile, timeout_s=120)  # fmt: skip
        cn_in = await read_topic(deploy.bootstrap, deploy.topics.inbound("CN"),
                                 lambda rs: len(rs) >= len(corpus) + 1, timeout_s=60)  # fmt: skip
    # valid notices: each forwarded exactly once, in the order published
    got = in_ru(ru)
    assert got == valid_ids, "valid notices lost, doubled or reordered"
    (traced,) = [r for r in ru if json.loads(r.value)["message_id"] == corpus[len(hostile) * 2]["id"]]
    assert ("x-trace", None) in [(k, v) for k, v in traced.headers]
    # hostile records: a dead letter with the original bytes and a signed receipt naming the reason
    letters = by_source([r for r in dead if source_of(r) is not None and source_of(r)[0] == topic])
    receipts = by_source(cn_in)
    for record, offset in zip(corpus, offsets, strict=False):
        if "code" not in record:
            continue
        (letter,) = letters[(topic, 0, offset)]
        assert letter.value == (record["value"] or b""), record["code"]
        assert record["code"] in (hdr(letter, "lr-reasons") or b"").decode().split(","), (
            record["code"], hdr(letter, "lr-reasons"))  # fmt: skip
        (receipt,) = receipts[(topic, 0, offset)]
        body = json.loads(receipt.value)
        assert body["outcome"] == "rejected" and record["code"] in [x["code"] for x in body["reasons"]]
    # the record the client cannot read: set aside after its bounded retries, with the error named
    (letter,) = letters[(topic, 0, unreadable)]
    assert (hdr(letter, "lr-reasons") or b"").decode() == "RECORD_UNREADABLE"
    assert b"UnicodeDecodeError" in (hdr(letter, "lr-error") or b"")
    (receipt,) = receipts[(topic, 0, unreadable)]
    assert json.loads(receipt.value)["reasons"][0]["code"] == "RECORD_UNREADABLE"
    events = proc.events()
    failures = [e for e in events if e.get("event") == "relay.record_failed"]
    assert [e["attempt"] for e in failures if e.get("offset") == unreadable] == [1, 2]
    # no stall was ever reported, and the same process did it all
    assert readiness.polls > 0 and not [b for b in readiness.bad if "stalled" in b[1]], readiness.bad
    assert proc.proc is not None and proc.proc.poll() is None and proc.starts == 1
    assert not [e for e in events if e.get("event") == "relay.partition_stalled"]
