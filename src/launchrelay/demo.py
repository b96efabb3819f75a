"""The main job for a newcomer: a real broker, the topics of two parties, and what is running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launchrelay.agreements.config import Deployment, parse_config
from launchrelay.broker.admin import ensure_topics, topic_specs
from launchrelay.broker.provide import provide_broker
from launchrelay.settings import Settings
from launchrelay.signing import Signer
from launchrelay.topics import Topics

DEMO_PARTIES = {"CN": "People's Republic of China", "RU": "Russian Federation"}


def demo_keys(keys_dir: Path) -> dict[str, Signer]:
    """One signing key per demo party, made on first use and kept under the data dir."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    signers = {}
    for code in [*DEMO_PARTIES, "relay"]:
        path = keys_dir / f"{code.lower()}.pem"
        key_id = f"{code.lower()}-demo"
        if path.exists():
            signers[code] = Signer.from_file(key_id, path)
        else:
            signers[code] = Signer.generate(key_id)
            path.write_bytes(signers[code].to_pem())
            path.chmod(0o600)
    return signers


def demo_deployment(signers: dict[str, Signer], prefix: str = "launchrelay") -> Deployment:
    """The CN-RU 2009 preset with the two demo parties and their public keys."""
    data: dict[str, Any] = {
        "relay": {"topic_prefix": prefix, "presets": ["CN-RU-2009"]},
        "parties": {
            code: {"name": name, "keys": {signers[code].key_id: signers[code].public_b64}}
            for code, name in DEMO_PARTIES.items()
        },
    }
    return parse_config(data, origin="demo")


async def run_demo(settings: Settings) -> int:
    """Start (or use) a broker, create the topics for CN and RU, and print what is running."""
    signers = demo_keys(settings.data_dir / "demo" / "keys")
    deployment = demo_deployment(signers)
    topics = Topics(deployment.relay.topic_prefix)
    with provide_broker(
        bootstrap=settings.bootstrap_servers,
        data_dir=settings.data_dir / "broker",
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap_mb=settings.broker_heap_mb,
        cache_dir=settings.cache_dir,
    ) as bootstrap:
        specs = topic_specs(topics, list(deployment.parties), deployment.relay.partitions)
        await ensure_topics(bootstrap, specs)
        print(f"\nKafka: {bootstrap}")
        for agreement in deployment.agreements.values():
            print(f"Agreement {agreement.id}: {agreement.title}")
        print("Topics:")
        for spec in specs:
            print(f"  {spec.name}  ({spec.num_partitions} partitions)")
    return 0
