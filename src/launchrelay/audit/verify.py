"""`launchrelay audit verify`: a party's check of the decision log, with the relay's public keys only.

It reads statements (docs/audit-log.md) from the party's own files and checks, in this order, reporting every
problem found (the first is the one to act on):

1. every tree head is signed by one of the relay's keys (``bad_signature``; an unsigned head proves nothing and
   takes no further part);
2. no two heads of one log have the same size and different roots (``split_view``: two histories were shown);
3. each head is consistent with the next larger one of its log, by a consistency proof (``not_consistent``: the
   history was rewritten; ``unproven``: no proof was given for the pair);
4. where the party holds leaves 0..n-1 of a log with a head of size n, they hash to its root and each leaf names
   its own log and place (``leaves_mismatch``: a leaf removed, altered, reordered or doubled);
5. each inclusion proof shows its leaf in a signed head of its size (``not_included``; ``no_head`` when no signed
   head of that size is known);
6. each receipt the party was given names a decision found in a leaf proven to be in the log (``missing``: the
   relay told the party of a decision its log does not hold).

The report is JSON: ``ok``, the counts checked, and the problems, each with its ``kind``, ``log`` and a sentence.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from launchrelay.audit import merkle
from launchrelay.audit.log import LEAF_FIELDS, LEAF_FORMAT, head_text
from launchrelay.signing import verify


@dataclass
class Report:
    problems: list[dict[str, Any]] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def problem(self, kind: str, log: str | None, text: str) -> None:
        self.problems.append({"kind": kind, "log": log, "detail": text})

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "checked": dict(self.checked), "problems": self.problems}


def _hex(value: Any) -> bytes | None:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return raw if raw is not None and len(raw) == merkle.HASH_SIZE else None


def _b64(value: Any) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except (binascii.Error, ValueError):
        return None


def _proof(value: Any) -> list[bytes] | None:
    if not isinstance(value, list):
        return None
    out = [_hex(p) for p in value]
    return None if any(p is None for p in out) else [p for p in out if p is not None]


def _leaf(raw: bytes) -> dict[str, Any] | None:
    """A leaf's fields, when it is a JSON object of a known format with every field a leaf carries."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested past what the parser takes
        return None
    if not isinstance(body, dict) or body.get("format") != LEAF_FORMAT or any(f not in body for f in LEAF_FIELDS):
        return None
    return body


def read_statements(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Statements, one JSON object per line (blank lines skipped); ValueError names a line that is not one."""
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"line {number}: not JSON ({type(exc).__name__})") from exc
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError(f"line {number}: not a statement (a JSON object with a type)")  # noqa: TRY004
        out.append(item)
    return out


#: what a receipt statement may name of a decision, each compared with the leaf's field of that name
_TOLD = ("sender", "message_id", "outcome", "sha256")


def _plain(value: Any) -> bool:
    """A value a receipt may name: a string, or null."""
    return value is None or isinstance(value, str)


def verify_statements(statements: list[dict[str, Any]], keys: Mapping[str, Ed25519PublicKey]) -> Report:
    """Every check above over ``statements``, with the relay's keys (key id -> public key)."""
    report = Report()
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in statements:
        by_type[s["type"]].append(s)

    # 1. signed heads: log -> size -> the roots shown for it
    roots: dict[str, dict[int, set[bytes]]] = defaultdict(lambda: defaultdict(set))
    for h in by_type["tree_head"]:
        report.checked["tree_heads"] += 1
        log, size, root, key = h.get("log"), h.get("size"), _hex(h.get("root")), keys.get(str(h.get("key_id")))
        signature = h.get("signature")
        well_formed = isinstance(log, str) and isinstance(size, int) and size >= 0 and root is not None
        signed = (well_formed and key is not None and isinstance(signature, str) and isinstance(h.get("at"), str)
                  and verify(key, head_text(log, size, h["root"], h["at"]), signature.encode()))  # type: ignore[arg-type]  # fmt: skip
        if not signed:
            report.problem("bad_signature", log if isinstance(log, str) else None,
                           f"tree head of size {size} is not signed by a relay key ({h.get('key_id')})")  # fmt: skip
            continue
        assert isinstance(log, str) and isinstance(size, int) and root is not None
        roots[log][size].add(root)

    # 2. split views
    for log in sorted(roots):
        for size in sorted(roots[log]):
            if len(roots[log][size]) > 1:
                report.problem("split_view", log, f"{len(roots[log][size])} different signed roots for size {size}")

    # the leaves the party holds (a whole log, where it has every one up to a size)
    leaves: dict[str, dict[int, bytes]] = defaultdict(dict)
    doubled: list[tuple[str, int]] = []
    for s in by_type["leaf"]:
        raw = _b64(s.get("leaf"))
        well_formed = isinstance(s.get("log"), str) and isinstance(s.get("index"), int)
        if well_formed and raw is not None and leaves[s["log"]].setdefault(s["index"], raw) != raw:
            doubled.append((s["log"], s["index"]))

    def held_root(log: str, size: int) -> bytes | None:
        held = leaves.get(log, {})
        if any(i not in held for i in range(size)):
            return None
        return merkle.root([merkle.leaf_hash(held[i]) for i in range(size)])

    # 3. consistency between each head and the next larger one
    proofs: dict[tuple[str, int, int], list[list[bytes]]] = defaultdict(list)
    for c in by_type["consistency"]:
        proof = _proof(c.get("proof"))
        if (
            isinstance(c.get("log"), str)
            and isinstance(c.get("from"), int)
            and isinstance(c.get("to"), int)
            and proof is not None
        ):
            proofs[c["log"], c["from"], c["to"]].append(proof)
    for log in sorted(roots):
        sizes = sorted(roots[log])
        for first, second in itertools.pairwise(sizes):
            report.checked["consistency"] += 1
            if first == 0:
                continue  # the empty tree is a prefix of any
            given = proofs.get((log, first, second), [])
            if not given:
                # the party's own copy of the log proves it: both roots are of prefixes of the same leaves
                if held_root(log, first) in roots[log][first] and held_root(log, second) in roots[log][second]:
                    continue
                report.problem("unproven", log, f"no consistency proof from size {first} to {second}")
                continue
            pairs = [(a, b) for a in roots[log][first] for b in roots[log][second]]
            if not all(any(merkle.verify_consistency(first, second, a, b, p) for p in given) for a, b in pairs):
                report.problem(
                    "not_consistent", log, f"the head of size {second} does not extend the head of size {first}"
                )

    # 4. whole logs the party holds
    whole: list[dict[str, Any]] = []
    for where, place in doubled:
        report.problem("leaves_mismatch", where, f"two different leaves at index {place}")
    for log in sorted(leaves):
        held = leaves[log]
        for size in sorted(roots.get(log, {})):
            if size == 0 or any(i not in held for i in range(size)):
                continue
            report.checked["whole_logs"] += 1
            misplaced = [i for i in range(size) if (b := _leaf(held[i])) is None or b["log"] != log or b["index"] != i]
            computed = merkle.root([merkle.leaf_hash(held[i]) for i in range(size)])
            if misplaced:
                report.problem("leaves_mismatch", log, f"leaf {misplaced[0]} does not name its own log and place")
            elif computed not in roots[log][size]:
                report.problem("leaves_mismatch", log, f"the leaves 0..{size - 1} do not hash to the signed root")
            else:  # a whole log matching a signed root: each of its leaves is proven
                whole += [b for i in range(size) if (b := _leaf(held[i])) is not None]

    # 5. inclusion proofs against signed heads
    proven: list[dict[str, Any]] = []
    for s in by_type["inclusion"]:
        report.checked["inclusion"] += 1
        log, index, size = s.get("log"), s.get("index"), s.get("size")
        raw, proof = _b64(s.get("leaf")), _proof(s.get("proof"))
        if (
            not (isinstance(log, str) and isinstance(index, int) and isinstance(size, int))
            or raw is None
            or proof is None
        ):
            report.problem("not_included", log if isinstance(log, str) else None, "an inclusion statement is malformed")
            continue
        known = roots.get(log, {}).get(size)
        if not known:
            report.problem("no_head", log, f"no signed head of size {size} to prove leaf {index} against")
            continue
        body = _leaf(raw)
        ok = body is not None and body["log"] == log and body["index"] == index
        if not ok or not all(merkle.verify_inclusion(index, size, merkle.leaf_hash(raw), proof, r) for r in known):
            report.problem("not_included", log, f"leaf {index} is not in the signed head of size {size}")
            continue
        assert body is not None
        proven.append(body)
    proven += whole

    # 6. what the party was told is in the log
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for b in proven:
        if _plain(b.get("message_id")):
            by_id.setdefault(b.get("message_id"), []).append(b)
    for r in by_type["receipt"]:
        report.checked["receipts"] += 1
        # message_id and outcome always; sender and sha256 when the party holds them
        want = {k: r[k] for k in _TOLD if k in r}
        named = {"message_id", "outcome"} <= want.keys() and all(_plain(v) for v in want.values())
        candidates = by_id.get(r.get("message_id"), []) if named else []
        if not any(all(b.get(k) == v for k, v in want.items()) for b in candidates):
            report.problem("missing", None, f"{r.get('sender', 'its sender')}'s {r.get('message_id')} "
                                            f"({r.get('outcome')}) is in no leaf proven to be in the log")  # fmt: skip
    return report
