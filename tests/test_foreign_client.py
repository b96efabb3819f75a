"""A client that is not this project's: Kafka's console producer and consumer carry, openssl signs and verifies.

The contract promises that any Kafka client can take part: a JSON body, an
Ed25519 signature over its exact bytes in header ``lr-signature`` (base64) and
the key id in ``lr-key-id``, keyed by ``launch_key``. No Python touches the
message on its way in or out: the Java console tools (from the ``kafka-tools``
jars that ``launchrelay broker fetch`` provisions) publish and read it, and
openssl (from the base system) makes and checks the signature.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
import yaml

from harness import RelayProcess, cli, make_deploy, read_topic
from launchrelay.provision.local import ensure_tools, kafka_tool

pytestmark = pytest.mark.kafka


def run(*cmd: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    if cmd[0] == "openssl" and shutil.which("openssl") is None:
        pytest.fail("openssl is required (Debian: apt-get install openssl; part of the base system)")
    done = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr.decode()}"
    return done.stdout


def signature_in(printed_headers: bytes) -> str:
    """The ``lr-signature`` value among headers as the console consumer prints them (``name:value,...``)."""
    return next(h.split(":", 1)[1] for h in printed_headers.decode().split(",") if h.startswith("lr-signature:"))


@cache
def tools() -> Path:
    return ensure_tools()


async def test_console_tools_and_openssl_publish_and_verify(kafka_bootstrap: str, tmp_path: Path) -> None:
    """A notice made by hand, signed with openssl and published by Kafka's console producer is forwarded;
    the copy the console consumer reads verifies with openssl."""
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
        # Written by hand, not canonical (spaces, key order): the signature covers these exact bytes. One
        # line, as the console producer reads a record per line.
        body = (
            '{ "message_type": "planned_launch", "message_id": "cn-console-0001", "agreement": "CN-RU-2009", '
            '  "sender": "CN", "recipients": ["RU"], "launch_key": "CN-CONSOLE-1", '
            f'  "created_at": "{now.strftime("%Y-%m-%dT%H:%M:%SZ")}", '
            '  "vehicle": {"category": "space_launch_vehicle", "generic_class": "Long March 2D"}, '
            f'  "window": {{"start": "{start}", "end": "{end}"}}, '
            '  "launch_area": {"kind": "circle", "centre": {"lat": 40.96, "lon": 100.29}, '
            '                  "radius": 10, "unit": "km"}, '
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
        # headers, key and value on one line: "name:value,name:value<TAB>key<TAB>value"
        line = b"lr-signature:" + signature.encode() + b",lr-key-id:cn-openssl\tCN-CONSOLE-1\t" + body + b"\n"
        producer = kafka_tool(tools(), "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", deploy.bootstrap,
                              "--topic", deploy.topics.outbound("CN"), "--property", "parse.key=true",
                              "--property", "parse.headers=true", "--producer-property", "acks=all")  # fmt: skip
        run(*producer, cwd=work, stdin=line)

        # The counterpart reads its in topic with the console consumer and checks the signature with openssl.
        await read_topic(deploy.bootstrap, deploy.topics.inbound("RU"), lambda rs: len(rs) >= 1)
        consumer = kafka_tool(tools(), "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                              deploy.bootstrap, "--topic", deploy.topics.inbound("RU"), "--from-beginning",
                              "--max-messages", "1", "--timeout-ms", "60000", "--isolation-level", "read_committed",
                              "--property", "print.headers=true")  # fmt: skip
        printed = run(*consumer, cwd=work).rstrip(b"\n")
        headers_text, copy = printed.split(b"\t", 1)
        assert copy == body
        received_sig = signature_in(headers_text)
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

        # The sender reads its receipt the same way and checks it against the relay key the AsyncAPI document
        # publishes (raw 32 bytes, base64): wrapped as an X.509 SubjectPublicKeyInfo for openssl.
        document = yaml.safe_load(cli(deploy.env("cli"), "asyncapi").stdout)
        (relay_public,) = document["info"]["x-relay-keys"].values()
        spki = bytes.fromhex("302a300506032b6570032100") + base64.b64decode(relay_public)
        (work / "relay.pub.der").write_bytes(spki)
        consumer = kafka_tool(tools(), "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                              deploy.bootstrap, "--topic", deploy.topics.inbound("CN"), "--from-beginning",
                              "--max-messages", "1", "--timeout-ms", "60000", "--isolation-level", "read_committed",
                              "--property", "print.headers=true")  # fmt: skip
        headers_text, receipt = run(*consumer, cwd=work).rstrip(b"\n").split(b"\t", 1)
        assert json.loads(receipt)["outcome"] == "forwarded"
        receipt_sig = signature_in(headers_text)
        (work / "receipt.json").write_bytes(receipt)
        (work / "receipt.sig").write_bytes(base64.b64decode(receipt_sig))
        verified = run("openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", "relay.pub.der",
                       "-rawin", "-in", "receipt.json", "-sigfile", "receipt.sig", cwd=work)  # fmt: skip
        assert b"Signature Verified Successfully" in verified
    finally:
        relay.ensure_stopped()
