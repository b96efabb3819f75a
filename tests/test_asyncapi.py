"""The AsyncAPI document: generated from the models, valid against the AsyncAPI 3.0 specification."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import yaml

import schemas
from launchrelay.asyncapi import PARTY_MESSAGES, document
from launchrelay.contract.messages import MessageType
from launchrelay.topics import Topics

ROOT = Path(__file__).resolve().parent.parent


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(schemas.path("asyncapi-3.0.0.json").read_text()))


def test_committed_document_validates_against_asyncapi_3() -> None:
    """docs/asyncapi.yaml is a valid AsyncAPI 3.0.0 document (schema from @asyncapi/specs); a broken one is not."""
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    assert doc == document()  # and current: test_docs_current checks the bytes
    errors = list(validator().iter_errors(doc))
    assert errors == [], [e.message for e in errors[:3]]
    broken = copy.deepcopy(doc)
    broken["operations"]["publishNotification"]["action"] = "publish"  # AsyncAPI 2 wording, invalid in 3
    assert list(validator().iter_errors(broken))


def test_channels_follow_the_topic_convention() -> None:
    """Channel addresses, filled in, are the topics the relay uses."""
    doc = document()
    t = Topics("launchrelay")
    fill = {"prefix": "launchrelay", "party": "CN"}
    assert doc["channels"]["partyOut"]["address"].format(**fill) == t.outbound("CN")
    assert doc["channels"]["partyIn"]["address"].format(**fill) == t.inbound("CN")
    assert doc["channels"]["status"]["address"].format(**fill) == t.status
    assert doc["channels"]["deadletter"]["address"].format(**fill) == t.deadletter


def test_every_message_type_is_described_with_signature_headers() -> None:
    doc = document()
    messages = doc["components"]["messages"]
    assert {m.value for m in MessageType} <= {
        doc["components"]["schemas"][n]["properties"]["message_type"]["const"] for n in [*PARTY_MESSAGES, "Receipt"]
    }
    for name in [*PARTY_MESSAGES, "Receipt"]:
        assert set(messages[name]["headers"]["required"]) == {"lr-signature", "lr-key-id"}
        assert messages[name]["bindings"]["kafka"]["key"]["type"] == "string"
