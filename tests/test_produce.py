"""The relay puts a keyed record on the partition Kafka's Java producer would (murmur2, as every client does)."""

from __future__ import annotations

import base64
import random
import subprocess
from pathlib import Path

import aiokafka.producer.sender as aiokafka_sender
import pytest

from launchrelay.kafka.produce import partition_for, set_concurrent_transactions_backoff
from launchrelay.provision.local import ensure_jars

ROOT = Path(__file__).resolve().parent.parent


def _keys() -> list[bytes]:
    rng = random.Random(20261129)
    keys = [b"", b"a", b"CN-2026-0042", "RU-ПУСК-7".encode(), b"\x00\xff" * 9]
    keys += [f"CN-B-{i}".encode() for i in range(200)]  # launch keys as the benchmarks write them
    keys += [rng.randbytes(rng.randrange(1, 64)) for _ in range(300)]  # every tail length murmur2 handles
    return keys


def test_partition_matches_the_java_client() -> None:
    """For 505 keys and 1 to 12 partitions, the same choice as BuiltInPartitioner.partitionForKey."""
    cases = [(n, key) for key in _keys() for n in (1, 2, 3, 5, 7, 12)]
    stdin = "".join(f"{n} {base64.b64encode(key).decode()}\n" for n, key in cases)
    done = subprocess.run(
        ["java", "-cp", f"{ensure_jars()}/*", str(ROOT / "tests/java/PartitionFor.java")],
        input=stdin, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    java = [int(x) for x in done.stdout.split()]
    assert len(java) == len(cases)
    mismatches = [(n, key, j) for (n, key), j in zip(cases, java, strict=True) if partition_for(key, n) != j]
    assert mismatches == []


def test_the_concurrent_transactions_backoff_is_the_one_aiokafka_reads() -> None:
    """The relay shortens aiokafka's fixed 20 ms wait; an upgrade that renames the constant must fail here."""
    before = aiokafka_sender.BACKOFF_OVERRIDE
    assert before == pytest.approx(0.02) or before < 0.02
    try:
        set_concurrent_transactions_backoff(0.004)
        assert aiokafka_sender.BACKOFF_OVERRIDE == 0.004
        assert "BACKOFF_OVERRIDE" in Path(aiokafka_sender.__file__).read_text()
    finally:
        aiokafka_sender.BACKOFF_OVERRIDE = before
