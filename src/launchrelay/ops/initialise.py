"""`launchrelay init DIR`: a first deployment's keys and config, made where it will run (a container included).

Writes ``DIR/launchrelay.toml`` and one Ed25519 key per party, for the relay and for the watch's operator
(redrives) under ``DIR/keys/``. What exists is kept: run again, it adds nothing and changes nothing, so a
compose file can run it before every start. The parties' keys are for trying the deployment out; a real party
registers its own public key (from its own ``launchrelay keygen``) in the config instead.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from launchrelay.agreements.config import load_config, parse_config
from launchrelay.errors import ConfigError
from launchrelay.signing import Signer


@dataclass(frozen=True)
class Initialised:
    config: Path
    written: list[Path]
    relay_public: str


def _key(path: Path, key_id: str, written: list[Path]) -> Signer:
    if path.exists():
        return Signer.from_file(key_id, path)
    signer = Signer.generate(key_id)
    path.write_bytes(signer.to_pem())
    path.chmod(0o600)
    written.append(path)
    return signer


def _toml_text(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def initialise(
    directory: Path,
    parties: dict[str, str],
    presets: list[str],
    relay_key_id: str = "relay",
    topic_prefix: str = "launchrelay",
    partitions: int = 3,
) -> Initialised:
    """Keys and a config for ``parties`` (code -> name) under ``presets``, in ``directory``; existing files kept."""
    keys = directory / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    config = directory / "launchrelay.toml"
    written: list[Path] = []
    relay = _key(keys / "relay.pem", relay_key_id, written)
    if config.exists():
        deployment = load_config(config)  # an existing config must still load, and publish this relay key
        if deployment.relay.keys.get(relay_key_id) != relay.public_b64:
            raise ConfigError(f"{config} exists but does not publish {keys / 'relay.pem'} as [relay] keys."
                              f"{relay_key_id}: fix one of them")  # fmt: skip
        return Initialised(config, written, relay.public_b64)
    operator = _key(keys / "operator.pem", "operator", written)  # the watch's: LAUNCHRELAY_OPERATOR_KEY
    lines = [
        "# Made by `launchrelay init`. The parties' keys here are for trying the deployment out: register each",
        "# party's own public key (printed by its `launchrelay keygen`) before real use.",
        "[relay]",
        f"topic_prefix = {_toml_text(topic_prefix)}",
        f"presets = [{', '.join(_toml_text(p) for p in presets)}]",
        f"partitions = {partitions}",
        f"keys = {{ {relay_key_id} = {_toml_text(relay.public_b64)} }}  # counterparts verify receipts with this",
        f"operator_keys = {{ {operator.key_id} = {_toml_text(operator.public_b64)} }}  # redrives are signed with it",
        "",
    ]
    for code, name in parties.items():
        signer = _key(keys / f"{code.lower()}.pem", f"{code.lower()}-1", written)
        lines += [f"[parties.{code}]", f"name = {_toml_text(name)}",
                  f"keys = {{ {signer.key_id} = {_toml_text(signer.public_b64)} }}", ""]  # fmt: skip
    text = "\n".join(lines)
    parse_config(tomllib.loads(text), origin=str(config))  # refuse to write what would not load
    config.write_text(text)
    written.append(config)
    return Initialised(config, written, relay.public_b64)
