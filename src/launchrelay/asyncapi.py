"""The AsyncAPI 3.0 document of the contract, generated from the models and the topic convention.

Channels are parameterised by the topic prefix and the party code, so one
document describes every deployment: ``{prefix}.{party}.out`` is the channel a
party sends on, ``{prefix}.{party}.in`` the one it receives on.
"""

from __future__ import annotations

from typing import Any

from launchrelay import __version__
from launchrelay.contract.codec import MESSAGE_ADAPTER
from launchrelay.contract.events import StatusEvent
from launchrelay.signing import KEY_ID_HEADER, SIGNATURE_HEADER

REF = "#/components/schemas/{model}"
PARTY_MESSAGES = ["PlannedLaunch", "Amendment", "Cancellation", "CompletedLaunch", "Acknowledgement"]


def _asyncapi_schema(schema: Any) -> Any:
    """Adapt pydantic's JSON Schema to AsyncAPI's Schema Object (a draft-07 superset).

    AsyncAPI's ``discriminator`` is the property name alone; pydantic writes the
    OpenAPI form with a mapping.
    """
    if isinstance(schema, dict):
        out = {k: _asyncapi_schema(v) for k, v in schema.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(schema, list):
        return [_asyncapi_schema(v) for v in schema]
    return schema


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
        },
    }


def _message(name: str, title: str, summary: str, signed_by: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "headers": _headers(signed_by),
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the message's launch_key: one launch, one partition"},
                "bindingVersion": "0.5.0",
            }
        },
    }


def document() -> dict[str, Any]:
    """The whole AsyncAPI document as plain data."""
    schemas = MESSAGE_ADAPTER.json_schema(ref_template=REF)["$defs"]
    schemas["StatusEvent"] = StatusEvent.model_json_schema(ref_template=REF)
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
            "type": "object",
            "properties": {
                "lr-source-topic": {"type": "string"},
                "lr-source-partition": {"type": "string"},
                "lr-source-offset": {"type": "string"},
                "lr-reasons": {"type": "string", "description": "reason codes, comma-separated (docs/reasons.md)"},
                "lr-reasons-json": {"type": "string", "description": "JSON list of {code, message, field}"},
            },
        },
        "payload": {"type": "string", "description": "the rejected record's value, byte for byte"},
    }
    params = {
        "prefix": {"default": "launchrelay", "description": "the deployment's topic prefix"},
        "party": {"description": "ISO 3166-1 alpha-2 code of the party", "examples": ["CN", "RU"]},
    }
    party_refs = [{"$ref": f"#/channels/partyOut/messages/{n}"} for n in PARTY_MESSAGES]
    in_names = [*PARTY_MESSAGES, "Receipt"]
    channels: dict[str, Any] = {
        "partyOut": {
            "address": "{prefix}.{party}.out",
            "title": "A party's out topic",
            "description": "The party writes its notifications and acknowledgements here; the relay reads them. "
            "Records are stamped with the broker's append time, the time of receipt for the agreement's rules.",
            "parameters": params,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in PARTY_MESSAGES},
        },
        "partyIn": {
            "address": "{prefix}.{party}.in",
            "title": "A party's in topic",
            "description": "The relay writes forwards (sender's bytes and signature unchanged), acknowledgements of "
            "the party's notices and signed receipts here. Read with isolation.level=read_committed.",
            "parameters": params,
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in in_names},
        },
        "status": {
            "address": "{prefix}.status",
            "title": "Lifecycle events",
            "parameters": {"prefix": params["prefix"]},
            "messages": {"StatusEvent": {"$ref": "#/components/messages/StatusEvent"}},
        },
        "deadletter": {
            "address": "{prefix}.deadletter",
            "title": "Dead letters",
            "parameters": {"prefix": params["prefix"]},
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        },
    }
    operations = {
        "publishNotification": {
            "action": "send",
            "title": "A party publishes",
            "summary": "Sign the exact bytes, key by launch_key, write to the party's own out topic",
            "channel": {"$ref": "#/channels/partyOut"},
            "messages": party_refs,
        },
        "receiveForwards": {
            "action": "receive",
            "title": "A party receives",
            "summary": "Verify each record's signature (sender's key, or the relay's for receipts), then acknowledge",
            "channel": {"$ref": "#/channels/partyIn"},
            "messages": [{"$ref": f"#/channels/partyIn/messages/{n}"} for n in in_names],
        },
        "followStatus": {
            "action": "receive",
            "channel": {"$ref": "#/channels/status"},
            "messages": [{"$ref": "#/channels/status/messages/StatusEvent"}],
        },
        "inspectDeadLetters": {
            "action": "receive",
            "channel": {"$ref": "#/channels/deadletter"},
            "messages": [{"$ref": "#/channels/deadletter/messages/DeadLetter"}],
        },
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "launchrelay",
            "version": __version__,
            "description": "Government-to-government launch notifications relayed over Kafka: JSON messages "
            "signed with Ed25519 over their exact bytes, checked against the agreement they fall under.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Any Kafka 3.x/4.x cluster; transactions in use, read with read_committed",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _asyncapi_schema(schemas)},
    }
