"""Shared fixtures: one real Kafka broker per session, unique topics per test, message factories."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from harness import Deploy, deploy_config
from launchrelay.agreements.config import load_config
from launchrelay.provision.local import free_port
from launchrelay.provision.provide import provide_broker
from launchrelay.relay.decide import RelayContext
from launchrelay.settings import Settings

# CI runs the property tests on fixed examples (a red build always reproduces); elsewhere they
# explore afresh each run, and `make fuzz` explores for as long as it is given.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The brokers and mirrors the tests start live a minute or two: their JVMs skip the JIT's second tier, which
# costs more CPU than it saves in that time (settings.jvm_options). Set it to "" to run them as production does.
os.environ.setdefault("LAUNCHRELAY_JVM_OPTIONS", "-XX:TieredStopAtLevel=1")

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _collected_after_each_kafka_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Collect garbage as each Kafka test ends, so a client it left open warns in it (warnings are errors here).

    Left to the collector's own timing, an unclosed connection fails whichever test the collector happens to run
    in next, often another file's on the same worker. Only Kafka tests open clients; a collection takes ~0.1 s."""
    yield
    if request.node.get_closest_marker("kafka") is not None:
        gc.collect()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real broker: LAUNCHRELAY_BOOTSTRAP_SERVERS, else Docker, else one built from Maven jars."""
    settings = Settings()
    with provide_broker(
        bootstrap=settings.bootstrap_servers,
        data_dir=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
        cache_dir=settings.cache_dir,
        use_docker=settings.use_docker,
    ) as bootstrap:
        yield bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so every test has its own topics."""
    return f"t{uuid.uuid4().hex[:10]}"


def planned_data(**overrides: Any) -> dict[str, Any]:
    """A valid CN -> RU planned-launch notification as JSON data, received at NOW."""
    data: dict[str, Any] = {
        "message_type": "planned_launch",
        "message_id": f"cn-{uuid.uuid4().hex[:12]}",
        "agreement": "CN-RU-2009",
        "sender": "CN",
        "recipients": ["RU"],
        "launch_key": "CN-2026-0042",
        "created_at": "2026-11-28T11:59:00Z",
        "vehicle": {"category": "icbm", "generic_class": "DF-41", "range_km": 12000.0},
        "window": {"start": "2026-12-05T00:00:00Z", "end": "2026-12-06T00:00:00Z"},
        "launch_area": {
            "kind": "circle",
            "centre": {"lat": 40.96, "lon": 100.29},
            "radius": 20,
            "unit": "km",
        },
        "impact_areas": [
            {
                "kind": "polygon",
                "points": [
                    {"lat": 45.0, "lon": 110.0},
                    {"lat": 45.5, "lon": 110.0},
                    {"lat": 45.5, "lon": 110.5},
                ],
            }
        ],
        "direction": {"azimuth_deg": 60.0},
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="session")
def offline_deploy(tmp_path_factory: pytest.TempPathFactory) -> Deploy:
    """The test deployment of every preset, its config and keys only: for tests that need no broker."""
    return deploy_config("unused:9092", tmp_path_factory.mktemp("offline"), "lr")


@pytest.fixture(scope="session")
def offline_ctx(offline_deploy: Deploy) -> RelayContext:
    return RelayContext.build(load_config(offline_deploy.config))


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


__all__ = ["NOW", "planned_data", "timedelta"]
