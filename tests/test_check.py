"""`launchrelay check`: the relay's decision offline, on every example, as a planning pipeline would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from launchrelay.signing import Signer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
CONFIG = EXAMPLES / "launchrelay.toml"
NOTICE = "valid/planned_launch_icbm_cn_ru.json"
#: example -> the earlier examples it refers to (in order); each is judged a minute after its own created_at
AFTER = {
    "valid/acknowledgement.json": [NOTICE],
    "valid/amendment_postponement.json": [NOTICE],
    "valid/cancellation.json": [NOTICE],
    "valid/completed_launch.json": [NOTICE, "valid/amendment_postponement.json"],
    "valid/completed_launch_not_launched.json": ["valid/planned_launch_space_cn_ru.json"],
}
#: the one valid document the relay refuses on an out topic: receipts are its own
REFUSED = {"valid/receipt_rejected.json": "NOT_A_PARTY_MESSAGE"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "launchrelay", "check", *args], cwd=EXAMPLES, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip


def _received(path: Path) -> str:
    created = json.loads(path.read_text()).get("created_at", "2026-11-28T09:00:00Z")
    return (datetime.fromisoformat(created) + timedelta(minutes=1)).isoformat()


@pytest.mark.parametrize("name", sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/*.json")))
def test_every_example_is_checked(name: str) -> None:
    """Valid examples are forwarded (exit 0), invalid ones refused with their reasons (exit 1)."""
    path = EXAMPLES / name
    done = run(name, "--config", str(CONFIG), "--received-at", _received(path), "--json", "--after",
               *AFTER.get(name, []))  # fmt: skip
    verdict = json.loads(done.stdout)
    if name.startswith("valid/") and name not in REFUSED:
        assert (done.returncode, verdict["outcome"], verdict["reasons"]) == (0, "forward", []), done.stdout
        assert all(e["outcome"] == "forward" for e in verdict["earlier"])
    else:
        assert done.returncode == 1 and verdict["outcome"] == "reject" and verdict["reasons"], done.stdout
        if name in REFUSED:
            assert REFUSED[name] in [r["code"] for r in verdict["reasons"]]


def test_amendment_shows_the_notice_as_it_stands() -> None:
    """An amendment is judged (and shown) with every change applied: the postponed window, the rest unchanged."""
    done = run("valid/amendment_postponement.json", "--config", str(CONFIG), "--received-at", "2026-11-29T09:01:00Z",
               "--json", "--after", NOTICE)  # fmt: skip
    verdict = json.loads(done.stdout)
    assert verdict["changed"] == ["window"] and verdict["notice"]["window"]["start"] == "2026-12-07T00:00:00Z"
    assert verdict["notice"]["vehicle"]["generic_class"] == "DF-41"


def test_the_message_and_after_go_in_any_order() -> None:
    """`check --after NOTICE MESSAGE` as `check MESSAGE --after NOTICE`: the last file named is the message."""
    common = ("--config", str(CONFIG), "--received-at", "2026-11-29T09:01:00Z", "--json")
    first = run("valid/amendment_postponement.json", *common, "--after", NOTICE)
    second = run(*common, "--after", NOTICE, "valid/amendment_postponement.json")
    assert first.returncode == second.returncode == 0, second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    neither = run(*common)
    assert neither.returncode == 2 and "needs the message file" in neither.stderr


def test_text_output_names_each_reason(tmp_path: Path) -> None:
    """Without --json: the verdict, then one line per reason with its code and field."""
    late = json.loads((EXAMPLES / NOTICE).read_text())
    (tmp_path / "late.json").write_text(json.dumps(late))
    done = run(str(tmp_path / "late.json"), "--config", str(CONFIG), "--received-at", "2026-12-04T12:00:00Z")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "reject" and "LEAD_TIME_TOO_SHORT (window.start)" in done.stdout


def test_signature_is_checked_when_given(tmp_path: Path) -> None:
    """With --signature and --key-id the signature is verified against the config's key for the sender."""
    signer = Signer.generate("cn-2026")
    config = tmp_path / "launchrelay.toml"
    keyed = f'name = "PRC"\nkeys = {{ cn-2026 = "{signer.public_b64}" }}'
    config.write_text(CONFIG.read_text().replace('name = "People\'s Republic of China"', keyed))
    raw = (EXAMPLES / NOTICE).read_bytes()
    sig = dict(signer.headers(raw))["lr-signature"].decode()  # type: ignore[union-attr]
    common = [str(EXAMPLES / NOTICE), "--config", str(config), "--received-at", "2026-11-28T09:01:00Z"]
    assert run(*common, "--signature", sig, "--key-id", "cn-2026").returncode == 0
    bad = run(*common, "--signature", sig, "--key-id", "cn-other")
    assert bad.returncode == 1 and "KEY_UNKNOWN" in bad.stdout
    half = run(*common, "--signature", sig)
    assert half.returncode == 2 and "together" in half.stderr
