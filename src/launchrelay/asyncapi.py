"""The AsyncAPI 3.0 document of a deployment, generated from the models, the config and the topic convention.

Each configured party has its own pair of channels, named by their topics
(``launchrelay.CN.out`` to send, ``launchrelay.CN.in`` to receive), with the
agreements it takes part in and the Kafka user allowed on each. docs/asyncapi.yaml
is the document of the sample deployment in deploy/k8s; ``launchrelay asyncapi``
prints the one for any config.
"""

from __future__ import annotations

from datetime import timedelta
from importlib.metadata import version
from typing import Any

from pydantic import TypeAdapter

from launchrelay.access import access_plan
from launchrelay.agreements.config import Deployment
from launchrelay.contract.codec import MESSAGE_ADAPTER, model_schemas
from launchrelay.contract.events import StatusEvent
from launchrelay.contract.headers import (
    KEY_ID_HEADER,
    REASONS,
    REASONS_JSON,
    RELAY_ID,
    RETRANSMISSION_HEADER,
    SIGNATURE_HEADER,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TOPIC,
)
from launchrelay.topics import Topics

REF = "#/components/schemas/{model}"
_DURATION = TypeAdapter(timedelta)  # ISO 8601, as the config writes durations
PARTY_MESSAGES = ["PlannedLaunch", "Amendment", "Cancellation", "CompletedLaunch", "Acknowledgement"]
IN_MESSAGES = [*PARTY_MESSAGES, "Receipt"]
_PUBLISH = "Sign the exact bytes, key by launch_key, write to the party's own out topic"
_RECEIVE = "Verify each record's signature (sender's key, or the relay's for receipts), then acknowledge"


def _asyncapi_schema(schema: Any) -> Any:
    """Adapt pydantic's JSON Schema to AsyncAPI's Schema Object (a draft-07 superset), as code generators read it.

    AsyncAPI's ``discriminator`` is the property name alone; pydantic writes the
    OpenAPI form with a mapping. An optional field is given its plain type (pydantic
    writes ``anyOf [X, null]``, which generators turn into wrapper types Go cannot
    decode): optional means left out, and this project's writers leave out what they
    do not set (the JSON Schemas in docs/schema/ accept an explicit null too).
    """
    if isinstance(schema, dict):
        out = {k: _asyncapi_schema(v) for k, v in schema.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        one_of = out.get("oneOf")
        if "properties" in out and isinstance(one_of, list) and all(set(o) <= {"required", "properties"}
                                                                     for o in one_of):  # fmt: skip
            # "exactly one of these members" (a direction: azimuth or sector) is a rule, not a shape: as a oneOf
            # generators make two types no parser can tell apart; the rule goes into the description
            names = " or ".join(r for o in one_of for r in o.get("required", []))
            del out["oneOf"]
            out["description"] = f"{out.get('description', '')} Exactly one of {names}.".strip()
        patterns = out.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "propertyNames" in out:
            # free text by language: the keys are held by propertyNames already; the values as the map's values
            # (a generator reads additionalProperties as a map; patternProperties as a struct of unknown fields)
            out["additionalProperties"] = out.pop("patternProperties").popitem()[1]
        options = out.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
            (plain,) = [o for o in options if o != {"type": "null"}]
            rest = {k: v for k, v in out.items() if k not in ("anyOf", "default")}
            return plain if "$ref" in plain else {**plain, **rest}
        return out
    if isinstance(schema, list):
        return [_asyncapi_schema(v) for v in schema]
    return schema


AREAS = ("PolygonArea", "CircleArea", "OceanQuadrantArea", "WaterBodyArea")


def _flat_areas(schemas: dict[str, Any]) -> dict[str, Any]:
    """Every use of the area union becomes ``Area``: one object whose ``kind`` says which members it has.

    A union by ``kind`` is exact, and Jackson and TypeScript parse it, but Go's generated models make it an
    interface that encoding/json cannot fill; one object with the members of every kind parses everywhere. The
    JSON Schemas in docs/schema/ keep the exact union; the four kinds stay in the components for reference."""
    kinds = {name: schemas[name] for name in AREAS}
    properties: dict[str, Any] = {"kind": {"type": "string", "enum": [k["properties"]["kind"]["const"]
                                                                      for k in kinds.values()]}}  # fmt: skip
    uses = []
    for area in kinds.values():
        members = [m for m in area["properties"] if m != "kind"]
        uses.append(f"{area['properties']['kind']['const']}: {', '.join(members)}")
        for m in members:
            properties.setdefault(m, _untitled(area["properties"][m]))
    area_refs = [{"$ref": f"#/components/schemas/{n}"} for n in AREAS]

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("discriminator") == "kind" and node.get("oneOf") == area_refs:
                return {"$ref": "#/components/schemas/Area"}
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    out = {name: swap(schema) for name, schema in schemas.items()}
    out["Area"] = {"type": "object", "required": ["kind"], "properties": properties, "additionalProperties": False,
                   "description": "An area; its kind names the members it has: " + "; ".join(uses)}  # fmt: skip
    return out


def _untitled(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _untitled(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_untitled(v) for v in node]
    return node


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_") if part)


def _named(node: Any, name: str) -> None:
    """Give ``node`` and every schema inside it a title of its own, derived from where it stands
    (``PolygonAreaKind``, ``AmendmentVehicle``, ``DirectionWithSector``): code generators name their types by
    title, and pydantic's titles repeat (four area ``kind`` constants are all "Kind") or are missing (unions,
    nullable fields), which leaves generated code with clashing or ``AnonymousSchema_N`` types."""
    if not isinstance(node, dict) or "$ref" in node:
        return
    node["title"] = name
    _name_inside(node, name)


def _name_inside(node: dict[str, Any], name: str) -> None:
    for prop, sub in node.get("properties", {}).items():
        _named(sub, name + _pascal(prop))
    for combinator in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(node.get(combinator, []), start=1):
            required = sub.get("required", []) if isinstance(sub, dict) else []
            _named(sub, name + ("With" + _pascal(required[0]) if len(required) == 1 else f"Option{i}"))
    if isinstance(node.get("items"), dict):
        _named(node["items"], name + "Item")
    if isinstance(node.get("additionalProperties"), dict):
        _named(node["additionalProperties"], name + "Value")
    patterns = list(node.get("patternProperties", {}).values())
    for i, sub in enumerate(patterns, start=1):
        _named(sub, name + ("Value" if len(patterns) == 1 else f"Value{i}"))


def _titled(schemas: dict[str, Any]) -> dict[str, Any]:
    """Every component schema (its own title kept) and every schema nested in one, titled by :func:`_named`."""
    for name, schema in schemas.items():
        schema.setdefault("title", name)
        _name_inside(schema, name)
    return schemas


#: Headers the relay adds to a recipient's copy of a party message (never covered by the signature).
_RELAY_ADDS: dict[str, Any] = {
    SOURCE_TOPIC: {"type": "string", "description": "on a recipient's copy: the out topic the relay read it from"},
    SOURCE_PARTITION: {"type": "string", "description": "on a recipient's copy: that record's partition"},
    SOURCE_OFFSET: {"type": "string", "description": "on a recipient's copy: that record's offset"},
    RELAY_ID: {"type": "string", "description": "on a recipient's copy: the relay instance that forwarded it"},
    RETRANSMISSION_HEADER: {
        "type": "string",
        "description": "on a re-sent copy: the attempt number (the bytes and signature are the original's)",
    },
}


def _headers(signed_by: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [SIGNATURE_HEADER, KEY_ID_HEADER],
        "properties": {
            SIGNATURE_HEADER: {
                "type": "string",
                "contentEncoding": "base64",
                "description": f"Ed25519 signature by {signed_by} over the exact bytes of the record value",
            },
            KEY_ID_HEADER: {"type": "string", "description": "id of the signing key, as registered in the config"},
            **(_RELAY_ADDS if signed_by.startswith("the sending party") else {}),
        },
    }


#: What each channel carries, as one message whose payload names its type in ``message_type`` (the
#: discriminator): generators then make one union type that parses each document by its ``message_type``.
UNIONS = {
    "PartyMessage": ("A party's message", "What a party publishes: a notice, an amendment, a cancellation, a "
                     "completed-launch report or an acknowledgement, by message_type", PARTY_MESSAGES),
    "InboundMessage": ("A message for a party", "What a party receives: another party's message, forwarded with "
                       "its bytes and signature unchanged, or the relay's signed receipt, by message_type",
                       IN_MESSAGES),
}  # fmt: skip


def _union_schema(name: str, summary: str, members: list[str]) -> dict[str, Any]:
    return {"title": name, "description": summary, "discriminator": "message_type",
            "oneOf": [{"$ref": f"#/components/schemas/{m}"} for m in members]}  # fmt: skip


def _message(name: str, title: str, summary: str, signed_by: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "headers": {"title": f"{name}Headers", **_headers(signed_by)},
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the message's launch_key: one launch, one partition"},
                "bindingVersion": "0.5.0",
            }
        },
    }


def _agreements_of(deployment: Deployment, code: str) -> str:
    lines = []
    for agreement in sorted(deployment.agreements.values(), key=lambda a: a.id):
        if code in agreement.parties:
            others = ", ".join(p for p in agreement.parties if p != code)
            due = _DURATION.dump_python(agreement.ack_deadline, mode="json")
            lines.append(f"{agreement.id} (with {others}; acknowledgement due within {due})")
    return "; ".join(lines) or "none"


def _channels(deployment: Deployment) -> tuple[dict[str, Any], dict[str, Any]]:
    """A channel pair and an operation pair per configured party, then the status and dead-letter channels."""
    topics = Topics(deployment.relay.topic_prefix)
    users = {p.party: p.user for p in access_plan(deployment) if p.party}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for code in sorted(deployment.parties):
        party = deployment.parties[code]
        out_id, in_id = f"{code}Out", f"{code}In"
        channels[out_id] = {
            "address": topics.outbound(code),
            "title": f"{party.name}: out topic",
            "description": f"{code} writes its notifications and acknowledgements here, as Kafka user "
            f"{users[code]}, the only user allowed to; the relay reads them. Records are stamped with the broker's "
            f"append time, the time of receipt for the agreement's rules. "
            f"Agreements: {_agreements_of(deployment, code)}.",
            "messages": {"PartyMessage": {"$ref": "#/components/messages/PartyMessage"}},
        }
        channels[in_id] = {
            "address": topics.inbound(code),
            "title": f"{party.name}: in topic",
            "description": f"The relay writes forwards to {code} (the sender's bytes and signature unchanged), "
            f"acknowledgements of {code}'s notices and signed receipts here; only {users[code]} may read it. "
            "Read with isolation.level=read_committed.",
            "messages": {"InboundMessage": {"$ref": "#/components/messages/InboundMessage"}},
        }
        for op_id, action, title, summary, channel, union in (
            (f"{code}Publish", "send", f"{code} publishes", _PUBLISH, out_id, "PartyMessage"),
            (f"{code}Receive", "receive", f"{code} receives", _RECEIVE, in_id, "InboundMessage"),
        ):
            operations[op_id] = {
                "action": action,
                "title": title,
                "summary": summary,
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{union}"}],
            }
    channels["status"] = {
        "address": topics.status,
        "title": "Lifecycle events",
        "messages": {"StatusEvent": {"$ref": "#/components/messages/StatusEvent"}},
    }
    channels["deadletter"] = {
        "address": topics.deadletter,
        "title": "Dead letters",
        "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
    }
    operations["followStatus"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/status"},
        "messages": [{"$ref": "#/channels/status/messages/StatusEvent"}],
    }
    operations["inspectDeadLetters"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/deadletter"},
        "messages": [{"$ref": "#/channels/deadletter/messages/DeadLetter"}],
    }
    return channels, operations


def document(deployment: Deployment) -> dict[str, Any]:
    """The AsyncAPI document of one deployment (its parties, agreements and topic prefix) as plain data."""
    schemas = model_schemas(MESSAGE_ADAPTER, REF)["$defs"]
    schemas["StatusEvent"] = model_schemas(TypeAdapter(StatusEvent), REF)
    schemas.update(schemas["StatusEvent"].pop("$defs", {}))
    titles = {
        "PlannedLaunch": ("Planned launch", "Notification of a planned launch"),
        "Amendment": ("Amendment", "Change or postponement of a notified launch"),
        "Cancellation": ("Cancellation", "The notified launch will not take place"),
        "CompletedLaunch": ("Completed launch", "Report of a launch that took place"),
        "Acknowledgement": ("Acknowledgement", "A recipient acknowledges a forwarded message"),
    }
    messages: dict[str, Any] = {
        name: _message(name, *titles[name], signed_by="the sending party") for name in PARTY_MESSAGES
    }
    messages["Receipt"] = _message(
        "Receipt",
        "Receipt",
        "The relay's verdict: forwarded, rejected with reasons, duplicate, or overdue",
        "the relay",
    )
    for union, (title, summary, members) in UNIONS.items():
        schemas[union] = _union_schema(union, summary, members)
        messages[union] = {**_message(union, title, summary, signed_by="the sending party, or the relay"),
                           "payload": {"$ref": f"#/components/schemas/{union}"}}  # fmt: skip
    messages["StatusEvent"] = {
        "name": "StatusEvent",
        "title": "Lifecycle event",
        "summary": "One state change of one message, for the tracker and operators",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/StatusEvent"},
    }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "The original bytes of a rejected record, unchanged; reasons in headers",
        "contentType": "application/octet-stream",
        "headers": {
            "title": "DeadLetterHeaders",
            "type": "object",
            "properties": {
                SOURCE_TOPIC: {"type": "string"},
                SOURCE_PARTITION: {"type": "string"},
                SOURCE_OFFSET: {"type": "string"},
                REASONS: {"type": "string", "description": "reason codes, comma-separated (docs/reasons.md)"},
                REASONS_JSON: {"type": "string", "description": "JSON list of {code, message, field}"},
            },
        },
        "payload": {
            "title": "DeadLetterPayload",
            "type": "string",
            "description": "the rejected record's value, byte for byte",
        },
    }
    channels, operations = _channels(deployment)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "launchrelay",
            "version": version("launchrelay"),
            "description": "Government-to-government launch notifications relayed over Kafka: JSON messages "
            "signed with Ed25519 over their exact bytes, checked against the agreement they fall under. "
            "Receipts are signed by the relay with one of the keys in `x-relay-keys` (key id in lr-key-id; "
            "raw 32-byte Ed25519 public keys, base64).",
            "x-relay-keys": dict(deployment.relay.keys),
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Any Kafka 3.x/4.x cluster; transactions in use, read with read_committed",
                "security": [{"$ref": "#/components/securitySchemes/scram"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": _titled(_flat_areas(_asyncapi_schema(schemas))),
            "securitySchemes": {
                "scram": {
                    "type": "scramSha512",
                    "description": "One Kafka user per party, one for the relay, one for the tracker, with ACLs "
                    "from `launchrelay access show` (SASL over TLS in production)",
                }
            },
        },
    }
