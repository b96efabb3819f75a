"""A client that is not this project's: kcat publishes, openssl signs and verifies, following only the docs.

The contract promises that any Kafka client can take part: a JSON body, an
Ed25519 signature over its exact bytes in header ``lr-signature`` (base64) and
the key id in ``lr-key-id``, keyed by ``launch_key``. No Python touches the
message on its way in or out.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness import RelayProcess, make_deploy, read_topic

pytestmark = pytest.mark.kafka


def run(*cmd: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    for tool in ("kcat", "openssl"):
        if cmd[0] == tool and shutil.which(tool) is None:
            pytest.fail(f"{tool} is required (Debian: apt-get install {tool}); .ci/run installs it")
    done = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr.decode()}"
    return done.stdout


async def test_kcat_and_openssl_publish_and_verify(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A notice made by hand, signed with openssl and published with kcat is forwarded; the copy verifies."""
    work = tmp_path / "foreign"
    work.mkdir()
    # The sender's key, and the public half in the config's format: base64 of the raw 32 bytes.
    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", "cn.pem", cwd=work)
    run("openssl", "pkey", "-in", "cn.pem", "-pubout", "-out", "cn.pub.pem", cwd=work)
    der = run("openssl", "pkey", "-in", "cn.pem", "-pubout", "-outform", "DER", cwd=work)
    public_b64 = base64.b64encode(der[-32:]).decode()

    deploy = await make_deploy(kafka_bootstrap, tmp_path / "deploy", extra_keys={"CN": ("cn-openssl", public_b64)})
    relay = RelayProcess(deploy, "relay-foreign").start()
    try:
        await relay.wait("relay.started")
        now = datetime.now(UTC)
        start = (now + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (now + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Written by hand, not canonical (spaces, key order): the signature covers these exact bytes.
        body = (
            '{ "message_type": "planned_launch", "message_id": "cn-kcat-0001", "agreement": "CN-RU-2009",\n'
            '  "sender": "CN", "recipients": ["RU"], "launch_key": "CN-KCAT-1",\n'
            f'  "created_at": "{now.strftime("%Y-%m-%dT%H:%M:%SZ")}",\n'
            '  "vehicle": {"category": "space_launch_vehicle", "generic_class": "Long March 2D"},\n'
            f'  "window": {{"start": "{start}", "end": "{end}"}},\n'
            '  "launch_area": {"kind": "circle", "centre": {"lat": 40.96, "lon": 100.29},\n'
            '                  "radius": 10, "unit": "km"},\n'
            '  "orbit": {"inclination_deg": 97.5, "perigee_km": 480, "apogee_km": 500} }'
        ).encode()
        (work / "notice.json").write_bytes(body)
        run(
            "openssl",
            "pkeyutl",
            "-sign",
            "-inkey",
            "cn.pem",
            "-rawin",
            "-in",
            "notice.json",
            "-out",
            "sig.bin",
            cwd=work,
        )
        signature = run("openssl", "base64", "-A", "-in", "sig.bin", cwd=work).decode().strip()
        run(
            "kcat",
            "-P",
            "-b",
            deploy.bootstrap,
            "-t",
            deploy.topics.outbound("CN"),
            "-k",
            "CN-KCAT-1",
            "-H",
            f"lr-signature={signature}",
            "-H",
            "lr-key-id=cn-openssl",
            "notice.json",
            cwd=work,
        )

        # The counterpart reads its in topic with kcat and checks the signature with openssl.
        await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"), lambda rs: len(rs) >= 1)

        def first_record(fmt: str) -> bytes:
            """The in topic's first committed record, printed by kcat in format ``fmt``."""
            return run("kcat", "-C", "-b", deploy.bootstrap, "-t", deploy.topics.inbound("RU"), "-o", "beginning",
                       "-e", "-c", "1", "-X", "isolation.level=read_committed", "-f", fmt, cwd=work)  # fmt: skip

        copy = first_record("%s")
        assert copy == body
        headers = first_record("%h").decode()
        received_sig = next(h.split("=", 1)[1] for h in headers.split(",") if h.startswith("lr-signature="))
        (work / "copy.json").write_bytes(copy)
        (work / "copy.sig.b64").write_text(received_sig)
        run("openssl", "base64", "-d", "-A", "-in", "copy.sig.b64", "-out", "copy.sig", cwd=work)
        verified = run(
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "cn.pub.pem",
            "-rawin",
            "-in",
            "copy.json",
            "-sigfile",
            "copy.sig",
            cwd=work,
        )
        assert b"Signature Verified Successfully" in verified
    finally:
        relay.ensure_stopped()
