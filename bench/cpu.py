"""CPU per notice inside the relay, without Kafka: `python -m bench.cpu [--n N]`.

Times the relay's per-record work in process (decide: size, strict JSON, schema,
signature, rules, references; plan: receipt, status event, state record and their
signatures) for a CN-RU notice and for an IN-PK notice against a boundary of
realistic size, and the irreducible parts on their own (Ed25519 verify and sign,
schema validation). Figures are medians of rounds, with the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_json

from bench.measure import notice
from bench.workloads import PARTY_SIDES, boundary, in_pk_notice
from launchrelay.agreements.config import parse_config
from launchrelay.contract import decode
from launchrelay.contract.codec import encode_fast
from launchrelay.contract.messages import Receipt, ReceiptOutcome
from launchrelay.relay.decide import InboundRecord, RelayContext, decide
from launchrelay.relay.outputs import plan
from launchrelay.relay.state import MemoryState
from launchrelay.signing import Signer, public_key_from_b64, verify

ROOT = Path(__file__).resolve().parent.parent


def context(signers: dict[str, Signer]) -> RelayContext:
    parties = {p: {"name": p, "keys": {s.key_id: s.public_b64}} for p, s in signers.items() if p != "relay"}
    data = {
        "relay": {"presets": ["CN-RU-2009", "IN-PK-2005"]},
        "parties": parties,
        "agreements": {"IN-PK-2005": {"geometry": {"boundary": boundary(), "party_sides": PARTY_SIDES}}},
    }
    return RelayContext.build(parse_config(data))


def _per_call_us(fn: Callable[[int], Any], n: int, rounds: int) -> dict[str, float]:
    """Median and range over ``rounds`` of the mean time per call of ``fn(i)`` over ``n`` calls, in µs.

    Each round takes its own ``n`` inputs, so no round is served from what an earlier one cached."""
    means = []
    for r in range(rounds):
        start = time.process_time()
        for i in range(r * n, (r + 1) * n):
            fn(i)
        means.append((time.process_time() - start) / n * 1e6)
    return {"median_us": round(statistics.median(means), 1), "min_us": round(min(means), 1),
            "max_us": round(max(means), 1)}  # fmt: skip


def _receipt_fields(decision: Any) -> dict[str, Any]:
    """The fields of a forward's receipt, as the relay fills them."""
    m = decision.message
    return {"message_id": "rcpt-0", "issued_by": "relay-cpu", "recipient": m.sender,
            "outcome": ReceiptOutcome.FORWARDED, "created_at": datetime.now(UTC), "refers_to": m.message_id,
            "agreement": m.agreement, "launch_key": m.launch_key, "forwarded_to": list(m.recipients),
            "source": decision.record.ref}  # fmt: skip


def run(n: int, rounds: int) -> dict[str, Any]:
    signers = {p: Signer.generate(f"{p.lower()}-cpu") for p in ("CN", "RU", "IN", "PK", "relay")}
    ctx = context(signers)
    topics = ctx.topics
    cn = [notice(signers["CN"], i) for i in range(n * rounds)]
    inpk = [in_pk_notice(signers["IN"], i) for i in range(n * rounds)]
    now_ms = int(time.time() * 1000)

    def record(items: list[Any], sender: str, i: int) -> InboundRecord:
        key, value, headers = items[i]
        return InboundRecord(topics.outbound(sender), 0, i, key, value, headers, now_ms)

    def full(items: list[Any], sender: str) -> Callable[[int], Any]:
        def one(i: int) -> Any:
            state = MemoryState()  # each notice alone: no duplicate of an earlier round
            d = decide(record(items, sender, i), ctx, state)
            assert d.kind == "forwarded", d.reasons
            return plan(d, topics, signers["relay"], "relay-cpu", datetime.now(UTC))

        return one

    def decide_only(items: list[Any], sender: str) -> Callable[[int], Any]:
        return lambda i: decide(record(items, sender, i), ctx, MemoryState())

    fields = _receipt_fields(decide(record(cn, "CN", 0), ctx, MemoryState()))
    receipt = Receipt(**fields)
    receipt_values = receipt.model_dump()
    raw = cn[0][1]
    sig = signers["CN"]
    public = public_key_from_b64(sig.public_b64)
    signature = dict(cn[0][2])["lr-signature"]
    cases: dict[str, Callable[[int], Any]] = {
        "CN-RU decide + plan": full(cn, "CN"),
        "CN-RU decide": decide_only(cn, "CN"),
        "IN-PK decide + plan": full(inpk, "IN"),
        "IN-PK decide": decide_only(inpk, "IN"),
        "Ed25519 verify": lambda i: verify(public, raw, signature),
        "Ed25519 sign": lambda i: sig.sign(raw),
        "schema (pydantic)": lambda i: decode(cn[i][1]),
        # the encoder is not where a record's time goes: building the model is (see README, Performance)
        "receipt: build the model (validated)": lambda i: Receipt(**fields),
        "receipt: encode the model (pydantic)": lambda i: encode_fast(receipt),
        "receipt: encode its values (pydantic-core to_json)": lambda i: to_json(receipt_values),
    }  # fmt: skip
    return {name: _per_call_us(fn, n, rounds) for name, fn in cases.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = run(args.n, args.rounds)
    load_after = os.getloadavg()
    doc = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "n": args.n, "rounds": args.rounds,
           "loadavg_1m": [round(load_before[0], 2), round(load_after[0], 2)], "cpu_per_call": results}  # fmt: skip
    lines = ["# CPU per call, in process (no Kafka)", "",
             f"{args.n} calls × {args.rounds} rounds; process CPU time; load average (1 min) "
             f"{load_before[0]:.2f} → {load_after[0]:.2f}; {doc['date']}.", "",
             "| work | median µs | range µs |", "| --- | ---: | ---: |"]  # fmt: skip
    for name, r in results.items():
        lines.append(f"| {name} | {r['median_us']} | {r['min_us']}–{r['max_us']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpu.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
