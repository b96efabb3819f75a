"""The relay keeps the decision log (issue 29, ``[relay] decision_log``): one leaf per decision in the decision's own
transaction, signed tree heads, the tree's frontier committed with the input offset. Real broker, real relay
processes, real SIGKILLs: every input has exactly one leaf, each log's leaves are numbered 0..n-1 without a gap or
a repeat, and a party's verifier (over the log topic as exported, with the receipts it was given) finds nothing
wrong; the same log with one leaf changed is caught."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from exactly_once import Source, assert_exactly_once, mixed_inputs, outcomes, publish_through_kills
from harness import RelayProcess, cli, make_deploy, message
from launchrelay.audit.log import receipt_statement
from launchrelay.audit.verify import verify_statements
from launchrelay.kafka.consume import committed_with_metadata
from launchrelay.ops.auditlog import read_log, read_party
from launchrelay.signing import public_key_from_b64

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]


def keep_the_log(config: Path) -> None:
    text = config.read_text()
    config.write_text(text.replace("[relay]\n", "[relay]\ndecision_log = true\nlog_head_every = 40\n"
                                   "log_head_interval = \"PT1S\"\n", 1))  # fmt: skip


async def full_log(deploy: Any, leaves: int, timeout_s: float = 120) -> list[dict[str, Any]]:
    """The exported log once it holds ``leaves`` leaves and every log has a head over all of its own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        statements = await read_log(deploy.bootstrap, deploy.topics)
        got = [s for s in statements if s["type"] == "leaf"]
        sizes: dict[str, int] = Counter(s["log"] for s in got)
        heads = defaultdict(int)
        for s in statements:
            if s["type"] == "tree_head":
                heads[s["log"]] = max(heads[s["log"]], s["size"])
        if len(got) >= leaves and all(heads[log] >= n for log, n in sizes.items()):
            return statements
        assert loop.time() < deadline, f"{len(got)} of {leaves} leaves, heads {dict(heads)} for {dict(sizes)}"
        await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def relay_and_publisher(deploy: Any, name: str) -> AsyncIterator[tuple[RelayProcess, RelayProcess]]:
    """A relay keeping the log and the publisher of proofs, both started (the publisher once the relay holds its
    partitions) and both stopped after."""
    relay = RelayProcess(deploy, f"relay-{name}").start()
    proofs = RelayProcess(deploy, f"proofs-{name}", command="audit publish")
    try:
        await relay.wait("relay.partitions_assigned")
        proofs.start()
        await proofs.wait("proofs.started")
        yield relay, proofs
    finally:
        relay.ensure_stopped()
        proofs.ensure_stopped()


async def party_view(deploy: Any, party: str, log: list[dict[str, Any]], timeout_s: float = 60) -> list[dict[str, Any]]:
    """What ``party`` holds (``read_party``) once its proofs topic has every head the log topic has."""
    heads = {(s["log"], s["size"], s["root"]) for s in log if s["type"] == "tree_head"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        held = await read_party(deploy.bootstrap, deploy.topics, party)
        got = {(s["log"], s["size"], s["root"]) for s in held if s["type"] == "tree_head"}
        if heads <= got:
            return held
        assert loop.time() < deadline, f"{party} was sent {len(got)} of {len(heads)} heads"
        await asyncio.sleep(1)


async def test_every_decision_is_one_leaf_through_kills_and_the_parties_verify_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    rng = random.Random(2029)
    deploy = await make_deploy(kafka_bootstrap, tmp_path)
    keep_the_log(deploy.config)
    inputs = mixed_inputs(deploy, 600, rng)
    sent: dict[Source, str | None] = {}
    async with relay_and_publisher(deploy, "log") as (relay, proofs):

        async def kill_the_publisher() -> None:  # as it proves heads: what it sent but had not committed comes again
            for _ in range(2):
                await asyncio.sleep(rng.uniform(1.0, 2.5))
                proofs.kill()
                proofs.start()
                await proofs.wait("proofs.started", 90)

        killing = asyncio.create_task(kill_the_publisher())
        await publish_through_kills(deploy, relay, inputs, 150, sent, 2, rng, pause_s=(1.5, 3.0))
        await killing
        forwards, deads, kind, receipts, events = await outcomes(deploy, len(sent))
        assert_exactly_once(sent, forwards, deads, kind, receipts, events)
        statements = await full_log(deploy, len(sent))
        views = {party: await party_view(deploy, party, statements) for party in ("CN", "RU")}

    leaves = [s for s in statements if s["type"] == "leaf"]
    bodies = [json.loads(base64.b64decode(s["leaf"])) for s in leaves]
    # one leaf per input, read where the relay read it; in each log, indices 0..n-1 once each
    sources = Counter(b["source"] for b in bodies)
    assert sources == Counter(f"{t}:{p}:{o}" for t, p, o in sent), "one leaf per input, none lost, none twice"
    by_log: dict[str, list[int]] = defaultdict(list)
    for s in leaves:
        by_log[s["log"]].append(s["index"])
    for log, indices in by_log.items():
        assert sorted(indices) == list(range(len(indices))), log
    # the verdict each input was meant to get (an acknowledgement's depends on timing: None)
    expected = {f"{t}:{p}:{o}": {"forward": "forwarded", "reject": "rejected"}[e] for (t, p, o), e in sent.items()
                if e is not None}  # fmt: skip
    wrong = [(b["source"], b["outcome"]) for b in bodies if expected.get(b["source"], b["outcome"]) != b["outcome"]]
    assert wrong == []

    # what CN and RU were told: a receipt for each of their forwarded notices, with the bytes they sent
    told = []
    for party, _key, raw, _headers, outcome in inputs:
        if outcome == "forward":
            body = json.loads(raw)
            told.append(receipt_statement(body["message_id"], party, "forwarded", hashlib.sha256(raw).hexdigest()))
    keys = {deploy.relay_signer.key_id: public_key_from_b64(deploy.relay_signer.public_b64)}
    report = verify_statements([*statements, *told], keys)
    assert report.problems == [] and report.checked["receipts"] == len(told) > 300
    assert report.checked["whole_logs"] >= len(by_log)

    # the log with one leaf changed after it was signed: caught
    changed = [dict(s) for s in statements]
    victim = next(s for s in changed if s["type"] == "leaf" and s["index"] == 3)
    body = json.loads(base64.b64decode(victim["leaf"]))
    body["outcome"] = "rejected" if body["outcome"] == "forwarded" else "forwarded"
    victim["leaf"] = base64.b64encode(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).decode()
    kinds = {p["kind"] for p in verify_statements([*changed, *told], keys).problems}
    assert "leaves_mismatch" in kinds

    # the frontier is committed with each input offset: its size is the log's leaves so far
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from launchrelay.relay.auditlog import frontier_from

    consumer = AIOKafkaConsumer(bootstrap_servers=deploy.bootstrap, group_id=f"{deploy.prefix}.relay",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        for log, indices in by_log.items():
            topic, partition = log.rsplit(":", 1)
            _, metadata = await committed_with_metadata(consumer, TopicPartition(topic, int(partition)))
            assert frontier_from(metadata).size == len(indices), log
    finally:
        await consumer.stop()

    # the command a party runs: export (the operator's), then verify with the relay's key from the config
    exported = cli(deploy.env("x"), "audit", "export", "--config", str(deploy.config))
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "log.jsonl").write_text(exported.stdout)
    checked = cli(deploy.env("x"), "audit", "verify", "--config", str(deploy.config), str(tmp_path / "log.jsonl"))
    assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked.stdout + checked.stderr

    # each party was sent its view (the publisher SIGKILLed twice on the way): every head, and one inclusion proof
    # for each leaf that concerns it, no more; with what its in topic told it, its own verifier finds it all
    bodies_at = {(s["log"], s["index"]): json.loads(base64.b64decode(s["leaf"])) for s in leaves}
    for party, view in views.items():
        proved = Counter((s["log"], s["index"]) for s in view if s["type"] == "inclusion")
        assert set(proved.values()) == {1}, f"{party}: a leaf proved twice"
        mine = {
            k
            for k, b in bodies_at.items()
            if k[0].startswith(deploy.topics.outbound(party)) or party in b["recipients"]
        }
        assert set(proved) == mine, party
        report = verify_statements(view, keys)
        assert report.problems == [] and report.checked["receipts"] > 100, (party, report.as_dict())
        assert report.checked["inclusion"] == len(mine) and report.checked["consistency"] > 0
    # CN and RU put what they hold together: one history (every head of a size has one root), every proof checks
    together = verify_statements([*views["CN"], *views["RU"]], keys)
    assert together.problems == [] and together.checked["tree_heads"] >= 2 * len(by_log)
    fetched = cli(deploy.env("x"), "audit", "fetch", "--party", "RU", "--config", str(deploy.config))
    assert fetched.returncode == 0, fetched.stderr
    (tmp_path / "ru.jsonl").write_text(fetched.stdout)
    checked = cli(deploy.env("x"), "audit", "verify", "--config", str(deploy.config), str(tmp_path / "ru.jsonl"))
    assert checked.returncode == 0 and checked.stdout.startswith("ok: "), checked.stdout + checked.stderr
    # RU's view with a refusal of CN's it was never told of claimed as forwarded to it: caught
    refused = next(b for (log, _), b in bodies_at.items() if b["outcome"] == "rejected" and "CN." in log)
    claimed = receipt_statement(refused["message_id"], "CN", "forwarded", refused["sha256"])
    assert {p["kind"] for p in verify_statements([*views["RU"], claimed], keys).problems} == {"missing"}


async def test_the_console_checks_what_each_party_is_sent_and_shows_a_forged_head(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Issue 29's watch: the health page checks each party's proofs topic with the relay's key as the party's
    verifier would, says each party's view agrees and shows the latest head of each log; a head forged onto
    RU's topic (another key under the relay's key id) turns RU's row to a problem, and CN's stays as it was."""
    from starlette.testclient import TestClient

    from launchrelay.audit.log import signed_head
    from launchrelay.clients.publisher import Publisher
    from launchrelay.console.app import ConsoleConfig, build_app
    from launchrelay.signing import Signer
    from test_console import accounts, sign_in

    deploy = await make_deploy(kafka_bootstrap, tmp_path / "deploy")
    keep_the_log(deploy.config)
    async with relay_and_publisher(deploy, "views"):
        async with Publisher(deploy.bootstrap, "CN", deploy.signers["CN"], topic_prefix=deploy.prefix,
                             watch_receipts=False) as cn:  # fmt: skip
            for _ in range(5):
                await cn.publish(message("CN", ["RU"]))
        statements = await full_log(deploy, 5)
        for party in ("CN", "RU"):
            await party_view(deploy, party, statements)
    signer = deploy.relay_signer
    client = TestClient(build_app(ConsoleConfig(
        ledger=tmp_path / "ledger.sqlite", users=accounts(tmp_path), bootstrap=deploy.bootstrap,
        topic_prefix=deploy.prefix, party_keys={p: {s.key_id: s.public_b64} for p, s in deploy.signers.items()},
        relay_keys={signer.key_id: signer.public_b64}, views_fresh_s=0,
    )))  # fmt: skip
    sign_in(client)
    page = client.get("/health").text
    for party in ("CN", "RU"):
        row = page.split(f'data-party="{party}"')[1].split("</tr>")[0]
        assert "agrees" in row, row
        heads, _, inclusion = (int(x) for x in re.findall(r"<td>(\d+)</td>", row)[:3])
        assert heads > 0 and inclusion == 5, row
    logs = {s["log"] for s in statements if s["type"] == "tree_head"}
    assert all(f'data-log="{log}"' in page for log in logs)

    forged = signed_head(sorted(logs)[0], 1000, b"\x07" * 32, Signer.generate(signer.key_id), datetime.now(UTC))
    producer = AIOKafkaProducer(bootstrap_servers=deploy.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(deploy.topics.proofs("RU"), json.dumps(forged).encode(), key=b"x")
    finally:
        await producer.stop()
    page = client.get("/health").text
    ru = page.split('data-party="RU"')[1].split("</tr>")[0]
    assert "problem(s)" in ru and "bad_signature" in ru, ru
    assert "agrees" in page.split('data-party="CN"')[1].split("</tr>")[0]
