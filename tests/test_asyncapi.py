"""The AsyncAPI document: generated from the models, valid against the AsyncAPI 3.0 specification."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

import schemas
from launchrelay.access import access_plan
from launchrelay.agreements.config import Deployment, load_config
from launchrelay.asyncapi import PARTY_MESSAGES, document
from launchrelay.contract.messages import MessageType
from launchrelay.docsgen import SAMPLE_CONFIG
from launchrelay.signing import Signer
from launchrelay.topics import Topics

ROOT = Path(__file__).resolve().parent.parent
KEY = Signer.generate("k").public_b64


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(schemas.path("asyncapi-3.0.0.json").read_text()))


def several_agreements(tmp_path: Path) -> Deployment:
    """CN-RU 2009, US-RU 1988 and the Hague Code: RU and US take part in two agreements each."""
    parties = ["CN", "RU", "US", "AT", "FR", "GB", "JP"]
    text = '[relay]\ntopic_prefix = "ops"\npresets = ["CN-RU-2009", "US-RU-1988", "HCOC"]\n' + "".join(
        f'[parties.{p}]\nname = "Party {p}"\nkeys = {{ k = "{KEY}" }}\n' for p in parties
    )
    (tmp_path / "c.toml").write_text(text)
    return load_config(tmp_path / "c.toml")


def test_committed_document_validates_against_asyncapi_3() -> None:
    """docs/asyncapi.yaml is the sample deployment's document, valid AsyncAPI 3.0.0; a broken one is not."""
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    assert doc == document(load_config(ROOT / SAMPLE_CONFIG))  # and current: test_docs_current checks the bytes
    errors = list(validator().iter_errors(doc))
    assert errors == [], [e.message for e in errors[:3]]
    broken = copy.deepcopy(doc)
    broken["operations"]["CNPublish"]["action"] = "publish"  # AsyncAPI 2 wording, invalid in 3
    assert list(validator().iter_errors(broken))


def test_channels_per_party_follow_the_topic_convention(tmp_path: Path) -> None:
    """Each party has its own out and in channel at its topics, with its operations, agreements and user."""
    deployment = several_agreements(tmp_path)
    doc = document(deployment)
    assert list(validator().iter_errors(doc)) == []
    t = Topics("ops")
    users = {p.party: p.user for p in access_plan(deployment) if p.party}
    party_channels = {c for c in doc["channels"] if c not in ("status", "deadletter")}
    assert party_channels == {f"{p}{d}" for p in deployment.parties for d in ("Out", "In")}
    for code in deployment.parties:
        out, inn = doc["channels"][f"{code}Out"], doc["channels"][f"{code}In"]
        assert (out["address"], inn["address"]) == (t.outbound(code), t.inbound(code))
        # one message per channel, its payload a union that names each type by message_type (the discriminator
        # code generators need to parse a document into its type)
        assert set(out["messages"]) == {"PartyMessage"} and set(inn["messages"]) == {"InboundMessage"}
        for union, members in (("PartyMessage", PARTY_MESSAGES), ("InboundMessage", [*PARTY_MESSAGES, "Receipt"])):
            schema = doc["components"]["schemas"][union]
            assert schema["discriminator"] == "message_type"
            assert [r["$ref"].rsplit("/", 1)[-1] for r in schema["oneOf"]] == members
        assert users[code] in out["description"] and users[code] in inn["description"]
        assert doc["operations"][f"{code}Publish"]["channel"] == {"$ref": f"#/channels/{code}Out"}
        assert doc["operations"][f"{code}Receive"]["channel"] == {"$ref": f"#/channels/{code}In"}
    ru = doc["channels"]["RUOut"]["description"]
    assert "CN-RU-2009 (with CN;" in ru and "US-RU-1988 (with US;" in ru and "HCOC" not in ru
    assert "HCOC (with AT, FR, GB, JP;" in doc["channels"]["USOut"]["description"]
    assert (doc["channels"]["status"]["address"], doc["channels"]["deadletter"]["address"]) == (
        t.status,
        t.deadletter,
    )


def test_every_message_type_is_described_with_signature_headers() -> None:
    doc = document(load_config(ROOT / SAMPLE_CONFIG))
    messages = doc["components"]["messages"]
    assert {m.value for m in MessageType} <= {
        doc["components"]["schemas"][n]["properties"]["message_type"]["const"] for n in [*PARTY_MESSAGES, "Receipt"]
    }
    for name in [*PARTY_MESSAGES, "Receipt"]:
        assert set(messages[name]["headers"]["required"]) == {"lr-signature", "lr-key-id"}
        assert messages[name]["bindings"]["kafka"]["key"]["type"] == "string"
    # what the relay adds to a recipient's copy is described, and optional
    added = {"lr-source-topic", "lr-source-partition", "lr-source-offset", "lr-relay-id", "lr-retransmission"}
    assert added <= set(messages["PlannedLaunch"]["headers"]["properties"])
    assert not added & set(messages["Receipt"]["headers"]["properties"])


def test_cli_prints_the_document_of_any_config(tmp_path: Path) -> None:
    """`launchrelay asyncapi --config X` prints X's document: the channels of its own parties."""
    deployment = several_agreements(tmp_path)
    done = subprocess.run([sys.executable, "-m", "launchrelay", "asyncapi", "--config", str(tmp_path / "c.toml")],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert yaml.safe_load(done.stdout) == document(deployment)
