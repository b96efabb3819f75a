"""The decision log (issue 29): RFC 9162's Merkle tree against the reference test vectors, and the verifier the
parties run, tried by a log that cheats in each way the issue names; a second verifier written in Go from
docs/audit-log.md alone must agree with it on every input.

The vectors are those of RFC 6962's reference implementations (the eight leaves, their roots, and the inclusion
and consistency proofs used by Certificate Transparency's and transparency-dev/merkle's tests); RFC 9162 keeps
RFC 6962's hashing, so they hold unchanged."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from launchrelay.audit import merkle
from launchrelay.audit.log import AuditLog, leaf_bytes, leaf_statement, receipt_statement
from launchrelay.audit.verify import read_statements, verify_statements
from launchrelay.audit.views import LogBroken, Views
from launchrelay.signing import Signer

ROOT = Path(__file__).resolve().parent.parent
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H = {
    "96a2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f08": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "bc1a": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca85": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37e": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "fac5": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "6e34": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0ebc": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b086": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
#: (leaf index from 0, tree size, audit path)
INCLUSION = [(0, 8, ["96a2", "5f08", "6b47"]), (5, 8, ["bc1a", "ca85", "d37e"]), (2, 3, ["fac5"]),
             (1, 5, ["6e34", "5f08", "bc1a"]), (0, 1, [])]  # fmt: skip
#: (first size, second size, proof)
CONSISTENCY = [(1, 8, ["96a2", "5f08", "6b47"]), (6, 8, ["0ebc", "ca85", "d37e"]), (2, 5, ["5f08", "bc1a"]),
               (6, 7, ["0ebc", "b086", "d37e"]), (1, 1, [])]  # fmt: skip


def hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(leaf) for leaf in LEAVES[:n]]


def test_roots_match_the_vectors() -> None:
    for n, want in enumerate(ROOTS):
        assert merkle.root(hashes(n)).hex() == want, n


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_vectors_and_verify(index: int, size: int, path: list[str]) -> None:
    proof = merkle.inclusion_proof(hashes(size), index)
    assert [p.hex() for p in proof] == [H[p] for p in path]
    leaf, root = hashes(size)[index], bytes.fromhex(ROOTS[size])
    assert merkle.verify_inclusion(index, size, leaf, proof, root)
    # the vectors' corruptions: wrong index, size, leaf, root; garbage before, after or inside
    wrong = [(index + 1, size, leaf, proof, root), (index, size * 2, leaf, proof, root),
             (index, size, merkle.leaf_hash(b"WrongLeaf"), proof, root), (index, size, leaf, proof, merkle.EMPTY_ROOT),
             (index, size, leaf, [*proof, root], root), (index, size, leaf, [root, *proof], root)]  # fmt: skip
    if index > 0:
        wrong.append((index - 1, size, leaf, proof, root))
    for i in range(len(proof)):
        flipped = [bytes([p[0] ^ 8]) + p[1:] if j == i else p for j, p in enumerate(proof)]
        wrong.append((index, size, leaf, flipped, root))
    if proof:
        wrong.append((index, size, leaf, proof[:-1], root))
    for case in wrong:
        assert not merkle.verify_inclusion(*case), case[:2]


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors_and_verify(first: int, second: int, path: list[str]) -> None:
    proof = merkle.consistency_proof(hashes(second), first)
    assert [p.hex() for p in proof] == [H[p] for p in path]
    r1, r2 = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert merkle.verify_consistency(first, second, r1, r2, proof)
    if first == second:
        assert not merkle.verify_consistency(first, second, r1, merkle.EMPTY_ROOT, proof)
        return
    wrong = [(first + 1, second, r1, r2, proof), (first, second * 2, r1, r2, proof), (first, second, r2, r1, proof),
             (first, second, r1, r2, []), (first, second, r1, r2, [*proof, r1]), (first, second, r1, r2, [r2, *proof]),
             (first, second, r1, r2, proof[:-1])]  # fmt: skip
    for i in range(len(proof)):
        flipped = [bytes([p[0] ^ 16]) + p[1:] if j == i else p for j, p in enumerate(proof)]
        wrong.append((first, second, r1, r2, flipped))
    for case in wrong:
        assert not merkle.verify_consistency(*case), case[:2]
    assert not merkle.verify_consistency(0, second, merkle.EMPTY_ROOT, r2, proof), "nothing is proved from empty"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.data())
def test_every_proof_verifies_and_any_flipped_bit_fails(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    index, first = data.draw(st.integers(0, n - 1)), data.draw(st.integers(1, n))
    root, proof = merkle.root(leaves), merkle.inclusion_proof(leaves, index)
    assert merkle.verify_inclusion(index, n, leaves[index], proof, root)
    sub, cons = merkle.root(leaves[:first]), merkle.consistency_proof(leaves, first)
    assert merkle.verify_consistency(first, n, sub, root, cons)
    if proof:
        i, bit = data.draw(st.integers(0, len(proof) - 1)), data.draw(st.integers(0, 255))
        bad = [bytes([p[bit // 8] ^ (1 << bit % 8)]).join([p[: bit // 8], p[bit // 8 + 1 :]]) if j == i else p
               for j, p in enumerate(proof)]  # fmt: skip
        assert not merkle.verify_inclusion(index, n, leaves[index], bad, root)
    if cons:
        i = data.draw(st.integers(0, len(cons) - 1))
        bad = [bytes([p[0] ^ 1]) + p[1:] if j == i else p for j, p in enumerate(cons)]
        assert not merkle.verify_consistency(first, n, sub, root, bad)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 70), st.data())
def test_proofs_from_a_frontier_and_the_leaves_after_it_are_the_whole_trees(n: int, data: st.DataObject) -> None:
    """What a publisher of proofs keeps between two heads (the frontier at the first, the leaves since) proves
    exactly what the whole tree proves: every later leaf's audit path and the consistency of the two heads."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    base = data.draw(st.integers(0, n))
    frontier = merkle.Frontier()
    for h in leaves[:base]:
        frontier.append(h)
    span = merkle.Span(frontier, leaves[base:])
    assert span.root() == merkle.root(leaves)
    for i in range(base, n):
        assert span.inclusion(i) == merkle.inclusion_proof(leaves, i)
    assert span.consistency() == (merkle.consistency_proof(leaves, base) if base else [])
    if base > 1:
        with pytest.raises(ValueError, match="provable"):
            span.inclusion(base - 1)  # before the frontier: its leaves are not kept


def test_a_frontier_knows_the_root_of_every_size_with_at_most_64_hashes() -> None:
    """What the relay will keep per log (in its state, beside the decisions) instead of every leaf: appending to
    it gives the root RFC 9162 gives for every size, and it survives its own bytes."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    frontier = merkle.Frontier()
    assert frontier.root() == merkle.EMPTY_ROOT
    for n, leaf in enumerate(leaves, 1):
        frontier.append(leaf)
        assert frontier.root() == merkle.root(leaves[:n]) and len(frontier.hashes) == n.bit_count()
        again = merkle.Frontier.from_bytes(frontier.to_bytes())
        assert (again.size, again.hashes) == (frontier.size, frontier.hashes)
    for n in range(9):
        vector = merkle.Frontier()
        for leaf in hashes(n):
            vector.append(leaf)
        assert vector.root().hex() == ROOTS[n]
    with pytest.raises(ValueError, match="holds 2 hashes"):
        merkle.Frontier(3, [leaves[0]])


# --- the verifier against a log that cheats ------------------------------------------------------

RELAY = Signer.generate("relay-audit")
T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
LOG = "launchrelay.CN.out:0"


def decision(index: int, log: str = LOG, outcome: str = "forwarded") -> bytes:
    return leaf_bytes(log, index, T0 + timedelta(seconds=index), outcome=outcome, message_id=f"cn-{index:04d}",
                      sender="CN", recipients=["RU"], reasons=[] if outcome == "forwarded" else ["KEY_UNKNOWN"],
                      sha256=f"{index:064x}", source=f"{log}:{index}")  # fmt: skip


def honest(n: int = 12) -> tuple[AuditLog, list[bytes], list[dict[str, Any]]]:
    """A log of ``n`` decisions with heads at 5, 9 and n, the proofs between them, every leaf, a receipt for
    each decision and an inclusion proof for each against the last head."""
    log, leaves = AuditLog(LOG), [decision(i) for i in range(n)]
    statements: list[dict[str, Any]] = []
    for i, leaf in enumerate(leaves):
        log.append(leaf)
        if i + 1 in (5, 9):
            statements.append(log.head(RELAY, T0 + timedelta(seconds=i)))
    statements += [log.head(RELAY, T0 + timedelta(minutes=1)), log.consistency(5, 9), log.consistency(9, n)]
    statements += [leaf_statement(LOG, i, leaf) for i, leaf in enumerate(leaves)]
    statements += [log.inclusion(i, leaf) for i, leaf in enumerate(leaves)]
    statements += [receipt_statement(f"cn-{i:04d}", "CN", "forwarded", f"{i:064x}") for i in range(n)]
    return log, leaves, statements


def kinds(statements: list[dict[str, Any]]) -> list[str]:
    report = verify_statements(statements, {RELAY.key_id: RELAY.private_key.public_key()})
    return sorted({p["kind"] for p in report.problems})


def rebuilt(leaves: list[bytes], n: int | None = None) -> list[dict[str, Any]]:
    """What a relay that changed its leaves would publish: a head over them, and the leaves themselves."""
    log = AuditLog(LOG)
    for leaf in leaves:
        log.append(leaf)
    return [log.head(RELAY, T0 + timedelta(minutes=2), n), *(leaf_statement(LOG, i, x) for i, x in enumerate(leaves))]


def test_an_honest_log_passes() -> None:
    _, _, statements = honest()
    report = verify_statements(statements, {RELAY.key_id: RELAY.private_key.public_key()})
    assert report.problems == [] and report.checked["tree_heads"] == 3 and report.checked["receipts"] == 12
    assert report.checked["consistency"] == 2 and report.checked["whole_logs"] == 3


def only(statements: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [s for s in statements if s["type"] in types]


@pytest.mark.parametrize("cheat", ["removed", "altered", "reordered", "doubled"])
def test_a_changed_leaf_is_caught(cheat: str) -> None:
    """The relay shows a party a log whose leaves changed after it was signed: the leaves no longer hash to the
    signed root, or a leaf names another place; re-signing the changed log breaks consistency with the heads the
    party already holds."""
    _, leaves, statements = honest()
    changed = list(leaves)
    if cheat == "removed":
        del changed[3]
    elif cheat == "altered":
        changed[3] = decision(3, outcome="rejected")
    elif cheat == "reordered":
        changed[3], changed[4] = changed[4], changed[3]
    else:
        changed.insert(4, changed[3])
    kept = only(statements, "tree_head", "consistency", "receipt")
    shown = [leaf_statement(LOG, i, x) for i, x in enumerate(changed)]
    assert "leaves_mismatch" in kinds(kept + shown)
    # the same change, signed anew: a head the party holds is not extended by it
    log, _, _ = honest()
    resigned = rebuilt(changed, 12)
    path = merkle.consistency_proof([merkle.leaf_hash(x) for x in changed[:12]], 9)
    proof = {"type": "consistency", "log": LOG, "from": 9, "to": 12, "proof": [p.hex() for p in path]}
    assert {"not_consistent", "split_view"} & set(kinds([*only(statements, "tree_head")[:2], resigned[0], proof]))
    assert log.hashes  # (the honest log itself is untouched)


def test_two_heads_for_one_size_are_a_split_view() -> None:
    """CN is shown one history and RU another: put together, two signed roots for one size."""
    _, leaves, statements = honest()
    other = list(leaves)
    other[7] = decision(7, outcome="rejected")
    for_ru = rebuilt(other, 12)[0]
    # (the second root for size 12 is not what the proof from size 9 leads to, either)
    assert kinds([*only(statements, "tree_head", "consistency"), for_ru]) == ["not_consistent", "split_view"]


def test_a_receipt_whose_decision_is_missing_from_the_log_is_caught() -> None:
    _, _, statements = honest()
    told = receipt_statement("cn-9999", "CN", "forwarded", "ab" * 32)
    assert kinds([*statements, told]) == ["missing"]
    # and a receipt that says forwarded where the log says something else
    changed = receipt_statement("cn-0003", "CN", "rejected", f"{3:064x}")
    assert kinds([*only(statements, "tree_head", "consistency", "inclusion"), changed]) == ["missing"]


def test_a_forged_head_a_missing_proof_and_a_bad_inclusion_are_caught() -> None:
    log, leaves, statements = honest()
    forger = Signer.generate(RELAY.key_id)  # the relay's key id, another key
    assert kinds([*statements, AuditLog(LOG, list(log.hashes)).head(forger, T0)]) == ["bad_signature"]
    unproven = [s for s in statements if not (s["type"] == "consistency" and s["from"] == 5)]
    assert kinds([s for s in unproven if s["type"] != "leaf"]) == ["unproven"]
    assert kinds(unproven) == [], "a party holding the whole log needs no proof: both heads are of its leaves"
    bad = log.inclusion(2, leaves[3])  # leaf 3's bytes claimed at index 2
    assert kinds([*only(statements, "tree_head", "consistency"), bad]) == ["not_included"]
    early = log.inclusion(2, leaves[2], size=7)  # against a size no head was signed for
    assert kinds([*only(statements, "tree_head", "consistency"), early]) == ["no_head"]


# --- what each party is sent -----------------------------------------------------------------------


def fed(views: Views, leaves: list[bytes], heads_at: tuple[int, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The log topic as the relay writes it (a head after the leaves it covers), fed to ``views``."""
    log, out = AuditLog(LOG), []
    for i, leaf in enumerate(leaves):
        log.append(leaf)
        views.leaf(LOG, i, leaf)
        if i + 1 in heads_at:
            out += views.head(log.head(RELAY, T0 + timedelta(seconds=i)))
    return out


def mixed(n: int) -> list[bytes]:
    """CN's notices forwarded to RU, and every fourth refused (only CN is told)."""
    return [leaf_bytes(LOG, i, T0, outcome="rejected" if i % 4 == 3 else "forwarded", message_id=f"cn-{i:04d}",
                       sender="CN", recipients=[] if i % 4 == 3 else ["RU"], reasons=[], sha256=f"{i:064x}")
            for i in range(n)]  # fmt: skip


def test_each_party_is_sent_every_head_the_consistency_between_them_and_proofs_of_its_own_leaves() -> None:
    leaves = mixed(13)
    sent = fed(Views(["CN", "RU", "US"], owner=lambda log: "CN"), leaves, (5, 9, 13))
    view = {p: [s for q, s in sent if q == p] for p in ("CN", "RU", "US")}
    for party in view:
        assert [s["size"] for s in view[party] if s["type"] == "tree_head"] == [5, 9, 13]
        assert [(s["from"], s["to"]) for s in view[party] if s["type"] == "consistency"] == [(5, 9), (9, 13)]
    assert [s["index"] for s in view["CN"] if s["type"] == "inclusion"] == list(range(13))
    assert [s["index"] for s in view["RU"] if s["type"] == "inclusion"] == [i for i in range(13) if i % 4 != 3]
    assert not [s for s in view["US"] if s["type"] == "inclusion"], "a party not concerned sees no leaf"
    keys = {RELAY.key_id: RELAY.private_key.public_key()}
    # CN holds its receipts (no digest: it has its own bytes, not the receipt's); RU the bytes forwarded to it
    cn_told = [receipt_statement(f"cn-{i:04d}", None, "rejected" if i % 4 == 3 else "forwarded", None)
               for i in range(13)]  # fmt: skip
    ru_told = [receipt_statement(f"cn-{i:04d}", "CN", "forwarded", f"{i:064x}") for i in range(13) if i % 4 != 3]
    for party, told in (("CN", cn_told), ("RU", ru_told), ("US", [])):
        report = verify_statements(view[party] + told, keys)
        assert report.problems == [], party
        assert report.checked["consistency"] == 2 and report.checked.get("receipts", 0) == len(told)
    # what the parties were told, against the log: a refusal RU was never told of, or a digest that differs
    assert kinds([*view["RU"], receipt_statement("cn-0003", "CN", "forwarded", f"{3:064x}")]) == ["missing"]
    assert kinds([*view["RU"], receipt_statement("cn-0001", "CN", "forwarded", "ab" * 32)]) == ["missing"]
    assert kinds([*view["CN"], receipt_statement("cn-0003", None, "forwarded", None)]) == ["missing"]
    assert kinds([*view["CN"], receipt_statement("cn-0003", "RU", "rejected", None)]) == ["missing"]


def test_a_log_topic_that_does_not_read_as_one_log_is_named_and_proves_nothing_more() -> None:
    leaves = mixed(6)
    views = Views(["CN", "RU"])
    fed(views, leaves[:3], (3,))
    with pytest.raises(LogBroken, match="leaf 4 where leaf 3 was due"):
        views.leaf(LOG, 4, leaves[4])
    views.leaf(LOG, 5, leaves[5])  # a broken log is ignored from then on
    assert views.broken == {LOG}
    other = Views(["CN"])
    with pytest.raises(LogBroken, match="does not sign the root"):
        fed(other, [leaves[0]], ())
        other.head(AuditLog(LOG, [merkle.leaf_hash(leaves[1])]).head(RELAY, T0))


# --- the second implementation -----------------------------------------------------------------------


def go_verify(statements: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    """The Go verifier (tests/go/auditverify, written from docs/audit-log.md) on the same statements."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is missing: the machine's Go toolchain builds the second verifier")
    path = tmp_path / "statements.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in statements) + "\n")
    key = RELAY.public_b64
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    done = subprocess.run([go, "run", ".", "--key", f"{RELAY.key_id}={key}", str(path)],
                          cwd=ROOT / "tests/go/auditverify", capture_output=True, text=True, env=env, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["ok"] == (done.returncode == 0)
    return report


def test_a_verifier_written_in_go_from_the_docs_agrees(tmp_path: Path) -> None:
    """Each input above, honest and cheating: the Go verifier finds the same kinds of problem, with the same counts
    checked, as the Python one."""
    _, leaves, statements = honest()
    altered = list(leaves)
    altered[3] = decision(3, outcome="rejected")
    inputs = {
        "honest": statements,
        "altered leaf": only(statements, "tree_head", "consistency", "receipt")
        + [leaf_statement(LOG, i, x) for i, x in enumerate(altered)],
        "split view": [*only(statements, "tree_head", "consistency"), rebuilt(altered, 12)[0]],
        "missing": [*statements, receipt_statement("cn-9999", "CN", "forwarded", "ab" * 32)],
        "unproven": [
            s for s in statements if not (s["type"] == "consistency" and s["from"] == 5) and s["type"] != "leaf"
        ],
        "proven by the leaves": [s for s in statements if not (s["type"] == "consistency" and s["from"] == 5)],
        "receipts without digests": [
            *statements,
            receipt_statement("cn-0004", "CN", "forwarded", None),
            receipt_statement("cn-0004", "CN", "rejected", None),
        ],
        "a party's view": [
            s for p, s in fed(Views(["CN", "RU"], owner=lambda log: "CN"), mixed(13), (5, 9, 13)) if p == "RU"
        ],
    }
    keys = {RELAY.key_id: RELAY.private_key.public_key()}
    for name, given_statements in inputs.items():
        python = verify_statements(given_statements, keys).as_dict()
        go = go_verify(given_statements, tmp_path)
        assert sorted(p["kind"] for p in go["problems"]) == sorted(p["kind"] for p in python["problems"]), name
        assert go["checked"] == python["checked"], name
    assert verify_statements(statements, keys).problems == []


def test_statements_are_read_one_per_line_and_a_bad_line_is_named() -> None:
    _, _, statements = honest()
    text = "\n".join(json.dumps(s) for s in statements) + "\n\n"
    assert read_statements(text.splitlines()) == statements
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_statements(['{"type": "leaf"}', "{not json"])
    with pytest.raises(ValueError, match="line 1: not a statement"):
        read_statements(["[1, 2]"])
    with pytest.raises(ValueError, match="line 1: not JSON"):
        read_statements(["[" * 100_000])
    # a leaf nested past what a parser takes is a leaf that does not pass, not a crash
    hostile = leaf_statement(LOG, 0, b"[" * 100_000)
    assert kinds([*only(statements, "tree_head", "consistency"), hostile]) == []  # no head covers it: nothing to say
    log = AuditLog(LOG)
    log.append(b"[" * 100_000)
    assert kinds([log.head(RELAY, T0), leaf_statement(LOG, 0, b"[" * 100_000)]) == ["leaves_mismatch"]


def test_the_command_checks_a_partys_files(tmp_path: Path) -> None:
    """`launchrelay audit verify`: exit 0 and "ok" for an honest log; exit 1 naming the problem for a split view;
    the relay's keys from the command line (or the config)."""
    import sys

    _, leaves, statements = honest()
    altered = list(leaves)
    altered[3] = decision(3, outcome="rejected")
    files = {"honest": statements, "split": [*statements, rebuilt(altered, 12)[0]]}
    for name, content in files.items():
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(s) for s in content) + "\n")
    key = f"{RELAY.key_id}={RELAY.public_b64}"

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "launchrelay", "audit", "verify", "--key", key,
                               str(tmp_path / f"{name}.jsonl")], capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip

    ok, bad = run("honest"), run("split")
    assert ok.returncode == 0 and ok.stdout.startswith("ok: checked 3 tree heads"), ok.stdout + ok.stderr
    assert bad.returncode == 1 and "split_view (launchrelay.CN.out:0)" in bad.stdout, bad.stdout + bad.stderr


def test_the_publisher_proves_each_head_once_counts_it_and_names_a_broken_log(tmp_path: Path) -> None:
    """The publisher's handling of one log topic record at a time (no broker): statements to the proofs topics of
    the parties concerned, the head's size and time as metrics, and a log whose head does not sign its leaves
    named (a log line, the broken-logs gauge, readiness) while the others go on."""
    from types import SimpleNamespace

    from harness import deploy_config
    from launchrelay.agreements.config import load_config
    from launchrelay.relay.proofs import ProofPublisher

    deploy = deploy_config("unused:9092", tmp_path, "lr")
    publisher = ProofPublisher("unused:9092", load_config(deploy.config))
    log = f"{deploy.topics.outbound('CN')}:0"

    def record(kind: str, value: bytes, index: int | None = None) -> Any:
        headers = [("lr-log-kind", kind.encode())] + ([("lr-log-index", str(index).encode())] if kind == "leaf" else [])
        return SimpleNamespace(key=log.encode(), value=value, headers=headers, offset=0, partition=0)

    tree = AuditLog(log)
    leaves = [leaf_bytes(log, i, T0, outcome="forwarded", message_id=f"cn-{i}", sender="CN", recipients=["RU"],
                         reasons=[], sha256="00" * 32) for i in range(3)]  # fmt: skip
    for i, leaf in enumerate(leaves):
        tree.append(leaf)
        assert publisher.statements(record("leaf", leaf, i)) == []
    head = tree.head(RELAY, T0)
    sent = publisher.statements(record("head", json.dumps(head).encode()))
    topics = Counter(r.topic for _, r in sent)
    assert topics[deploy.topics.proofs("CN")] == 4 == topics[deploy.topics.proofs("RU")]  # the head, 3 proofs
    assert topics[deploy.topics.proofs("US")] == 1  # the head only
    assert publisher.metrics.head_size.labels(log)._value.get() == 3
    assert publisher.metrics.head_time.labels(log)._value.get() == T0.timestamp()
    forged = AuditLog(log, [merkle.leaf_hash(b"other")] * 4).head(RELAY, T0)
    publisher.statements(record("leaf", decision(3, log), 3))
    assert publisher.statements(record("head", json.dumps(forged).encode())) == []
    publisher.started = True  # (run() sets it once it reads the log topic)
    assert publisher.metrics.broken._value.get() == 1 and log in publisher.ready()[1]
    # hostile records of the log topic name a log broken or are passed over; none stops the publisher
    other = f"{deploy.topics.outbound('RU')}:0"
    nested = SimpleNamespace(key=other.encode(), value=b"[" * 100_000, headers=[("lr-log-kind", b"head")], offset=9,
                             partition=0)  # fmt: skip
    assert publisher.statements(nested) == [] and other in publisher.views.broken
    odd = SimpleNamespace(key=log.encode(), value=b"x", headers=[("lr-log-kind", b"leaf"), ("lr-log-index", b"1e3")],
                          offset=10, partition=0)  # fmt: skip
    assert publisher.statements(odd) == []
    # and the operator's export reads them as statements its verifier does not take for anything
    from launchrelay.ops.auditlog import _log_statement

    assert _log_statement(nested) == [{"type": "unreadable"}] and _log_statement(odd) == []


async def test_the_publisher_outlasts_a_broker_it_cannot_reach(tmp_path: Path) -> None:
    """No broker answers (nothing listens at the address): the publisher does not end; it says why at WARNING,
    counts each new start, is not ready meanwhile and says why, waits longer each time, and ends cleanly when
    told to stop."""
    from harness import deploy_config
    from launchrelay.agreements.config import load_config
    from launchrelay.provision.local import free_port
    from launchrelay.relay.proofs import ProofPublisher

    nowhere = f"127.0.0.1:{free_port()}"
    deploy = deploy_config(nowhere, tmp_path, "lr")
    publisher = ProofPublisher(nowhere, load_config(deploy.config))
    stop = asyncio.Event()
    with structlog.testing.capture_logs() as lines:
        serving = asyncio.create_task(publisher.serve(stop, backoff_s=0.2, max_backoff_s=0.4))
        for _ in range(100):
            if publisher.metrics.restarts._value.get() >= 3:
                break
            await asyncio.sleep(0.1)
        ready, why = publisher.ready()
        assert not serving.done(), "the publisher must not end while the broker is away"
        stop.set()
        assert await asyncio.wait_for(serving, 10) == 0
    assert publisher.metrics.restarts._value.get() >= 3
    assert not ready and why.startswith("starting again after losing the broker: ")
    restarting = [e for e in lines if e["event"] == "proofs.restarting"]
    assert len(restarting) >= 3 and all(e["log_level"] == "warning" for e in restarting)
    assert [e["retry_in_s"] for e in restarting[:3]] == [0.2, 0.4, 0.4]


async def test_the_publisher_stops_on_a_refusal_of_its_rights_and_on_a_newer_instance(tmp_path: Path) -> None:
    """What ends the publisher rather than starting it again: the broker refusing its principal (raised, whether
    aiokafka's own error or the topic creation's wrapping of it) and a newer instance fencing it (exit status 1)."""
    from aiokafka.errors import ProducerFenced, TopicAuthorizationFailedError

    from harness import deploy_config
    from launchrelay.agreements.config import load_config
    from launchrelay.errors import KafkaRequestFailed
    from launchrelay.relay.proofs import ProofPublisher

    deploy = deploy_config("unused:9092", tmp_path, "lr")
    wrapped = KafkaRequestFailed("topic lr.log does not exist and this principal may not create it")
    wrapped.__cause__ = TopicAuthorizationFailedError()
    for ending in (TopicAuthorizationFailedError(), wrapped, ProducerFenced()):
        publisher = ProofPublisher("unused:9092", load_config(deploy.config))

        async def run(stop: asyncio.Event, ending: BaseException = ending) -> None:
            raise ending

        publisher.run = run  # type: ignore[method-assign]
        if isinstance(ending, ProducerFenced):
            assert await publisher.serve(asyncio.Event(), backoff_s=0.01) == 1
        else:
            with pytest.raises(type(ending)):
                await publisher.serve(asyncio.Event(), backoff_s=0.01)
        assert publisher.metrics.restarts._value.get() == 0
