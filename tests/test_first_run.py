"""A first deployment made where it runs (`launchrelay init`), and the relay's public key given a home: published
in the config, checked against the private key at start, printed in the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness import bare_cli
from launchrelay.agreements.config import load_config
from launchrelay.signing import Signer

ROOT = Path(__file__).resolve().parent.parent


def test_init_makes_a_config_and_keys_that_load_and_keeps_them_on_a_second_run(tmp_path: Path) -> None:
    target = tmp_path / "etc"
    args = ("init", str(target), "--preset", "CN-RU-2009", "--relay-key-id", "relay-x",
            "--party", "CN=People's Republic of China", "--party", "RU=Russian Federation")  # fmt: skip
    first = bare_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    config = target / "launchrelay.toml"
    deployment = load_config(config)
    relay = Signer.from_file("relay-x", target / "keys" / "relay.pem")
    assert deployment.relay.keys == {"relay-x": relay.public_b64}
    assert deployment.parties["CN"].name == "People's Republic of China"
    assert deployment.parties["RU"].keys == {"ru-1": Signer.from_file("ru-1", target / "keys" / "ru.pem").public_b64}
    assert oct((target / "keys" / "relay.pem").stat().st_mode & 0o777) == "0o600"
    operator = Signer.from_file("operator", target / "keys" / "operator.pem")  # the watch's, for redrives
    assert deployment.relay.operator_keys == {"operator": operator.public_b64}
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    second = bare_cli(*args, cwd=tmp_path)
    assert second.returncode == 0 and "nothing changed" in second.stdout
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    checked = bare_cli("config", "check", str(config), cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.rstrip().endswith("config OK"), checked.stdout


def _deployment(tmp_path: Path, published: Signer) -> dict[str, str]:
    """A config publishing ``published`` as the relay's key; the environment of a relay that would use it."""
    cn = Signer.generate("cn-1")
    (tmp_path / "lr.toml").write_text(
        f'[relay]\npresets = ["CN-RU-2009"]\nkeys = {{ {published.key_id} = "{published.public_b64}" }}\n'
        f'[parties.CN]\nname = "CN"\nkeys = {{ cn-1 = "{cn.public_b64}" }}\n[parties.RU]\nname = "RU"\n'
        f'keys = {{ cn-1 = "{cn.public_b64}" }}\n'
    )
    return {"LAUNCHRELAY_CONFIG": str(tmp_path / "lr.toml"), "LAUNCHRELAY_RELAY_KEY": str(tmp_path / "relay.pem"),
            "LAUNCHRELAY_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # fmt: skip


def test_the_relay_refuses_a_key_its_config_does_not_publish(tmp_path: Path) -> None:
    """Checked before Kafka is touched: one line, exit 2, for a different key and for an unknown key id."""
    published = Signer.generate("relay-2026")
    env = _deployment(tmp_path, published)
    (tmp_path / "relay.pem").write_bytes(Signer.generate("relay-2026").to_pem())
    for command in ("relay", "tracker"):
        done = bare_cli(command, env=env | {"LAUNCHRELAY_RELAY_KEY_ID": "relay-2026"}, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "is not the key [relay] keys.relay-2026 publishes" in done.stderr
    done = bare_cli("relay", env=env | {"LAUNCHRELAY_RELAY_KEY_ID": "relay-old"}, cwd=tmp_path)
    assert done.returncode == 2 and "LAUNCHRELAY_RELAY_KEY_ID='relay-old' is not among [relay] keys" in done.stderr


def test_the_asyncapi_document_publishes_the_relay_keys(tmp_path: Path) -> None:
    published = Signer.generate("relay-2026")
    env = _deployment(tmp_path, published)
    done = bare_cli("asyncapi", "--config", env["LAUNCHRELAY_CONFIG"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["info"]["x-relay-keys"] == {"relay-2026": published.public_b64}


def test_keygen_says_where_the_public_key_goes(tmp_path: Path) -> None:
    done = bare_cli("keygen", "relay-2027", str(tmp_path / "r.pem"), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith('relay-2027 = "')
    assert "[relay] keys" in done.stderr and "[parties." in done.stderr
