"""Coverage-guided fuzzing of the relay's decide() and plan(): `make fuzz FUZZ_SECONDS=600`.

libFuzzer (through atheris) mutates inputs to reach new code in launchrelay.
Each input chooses a mode, a record key and headers; the rest is either the
record's value as it is, or text spliced into a valid notice that is then
signed by the topic's owner, so mutations reach the rules and the reference
checks and not only the parser. An exception from decide() or plan(), or a
refusal without a reason, is a crash: the run stops and libFuzzer saves the
input (crash-*). At the end the harness prints its figures.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["launchrelay"]):
    from launchrelay.agreements.config import load_config
    from launchrelay.relay.decide import InboundRecord, RelayContext, decide
    from launchrelay.relay.outputs import plan
    from launchrelay.relay.state import MemoryState, SeenMessage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from harness import deploy_config  # noqa: E402 - the tests' deployment of every preset, offline

DEPLOY = deploy_config("unused:9092", Path(tempfile.mkdtemp(prefix="fuzz")), "lr")
CTX = RelayContext.build(load_config(DEPLOY.config))
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BASE = (ROOT / "docs/examples/valid/planned_launch_icbm_cn_ru.json").read_text()
LAUNCH_KEY = json.loads(BASE)["launch_key"].encode()
STATE = MemoryState()
STATE.apply(SeenMessage("CN", "cn-seen", "0" * 64, "planned_launch", "CN-RU-2009", LAUNCH_KEY.decode(), ("RU",),
                        "forwarded"))  # fmt: skip
RUNS = {"inputs": 0, "forwarded": 0, "rejected": 0, "duplicate": 0, "crashes": 0}
STARTED = time.monotonic()
#: how long to run (libFuzzer's own exit skips Python's, so the harness keeps time and reports itself)
SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))


def record_of(data: bytes) -> InboundRecord:
    fdp = atheris.FuzzedDataProvider(data)
    signed = fdp.ConsumeBool()
    key = LAUNCH_KEY if fdp.ConsumeBool() else (None if fdp.ConsumeBool() else fdp.ConsumeBytes(20))
    headers: list[tuple[str, bytes | None]] = [
        (fdp.ConsumeUnicodeNoSurrogates(8), None if fdp.ConsumeBool() else fdp.ConsumeBytes(16))
        for _ in range(fdp.ConsumeIntInRange(0, 2))
    ]
    at = fdp.ConsumeIntInRange(0, len(BASE))
    cut = fdp.ConsumeIntInRange(0, 40)
    rest = fdp.ConsumeBytes(fdp.remaining_bytes())
    if signed:  # splice the fuzzer's bytes into a valid notice, replacing a few characters, and sign it
        value = BASE.encode()[:at] + rest + BASE.encode()[at + cut :]
        headers = [*DEPLOY.signers["CN"].headers(value), *headers]
    else:
        value = rest
    return InboundRecord(DEPLOY.topics.outbound("CN"), 0, 1, key, value, headers, int(NOW.timestamp() * 1000))


def one_input(data: bytes) -> None:
    record = record_of(data)
    try:
        decision = decide(record, CTX, STATE)
        if decision.kind != "forwarded" and not decision.reasons:
            raise AssertionError(f"a {decision.kind} without reasons")
        plan(decision, CTX.topics, DEPLOY.relay_signer, "fuzz", NOW)
    except BaseException:
        RUNS["crashes"] += 1
        raise
    RUNS["inputs"] += 1
    RUNS[decision.kind] += 1
    if time.monotonic() - STARTED > SECONDS:
        report()
        os._exit(0)


def report() -> None:
    took = time.monotonic() - STARTED
    print(
        f"fuzz: {RUNS['inputs']} inputs in {took:.0f} s ({RUNS['inputs'] / max(took, 1e-9):.0f}/s): "
        f"{RUNS['forwarded']} forwarded, {RUNS['rejected']} rejected, {RUNS['duplicate']} duplicates; "
        f"crashes: {RUNS['crashes']}",
        flush=True,
    )


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
