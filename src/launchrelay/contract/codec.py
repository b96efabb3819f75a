"""Bytes <-> messages: the one canonical JSON encoding and strict parsing.

Canonical form: UTF-8, keys sorted, no insignificant whitespace, no NaN,
fields that are ``None`` left out. Signatures cover whatever bytes a sender
published; publishers of this project always publish the canonical form.

Reading is strict twice over: the bytes must be strict JSON
(:mod:`launchrelay.contract.strict`: no NaN, no repeated keys, no number beyond
a double) and the document must satisfy the models, which coerce nothing.
:func:`read` returns every reason a document fails; :func:`decode` raises them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from launchrelay.contract import strict, versions
from launchrelay.contract.explain import explain
from launchrelay.contract.messages import BEYOND_SCHEMA, ISO_ALPHA2, UTC_TIME_PATTERN, Message, MessageType, Reason
from launchrelay.errors import ContractError
from launchrelay.reasons import ReasonCode

MESSAGE_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)
#: Schema errors listed per document at most (a broken document can have thousands).
MAX_SCHEMA_REASONS = 20


@dataclass(frozen=True)
class Parsed:
    """One document read under the contract: the message, or every reason it is not one."""

    message: Message | None
    #: the JSON value, when the bytes were strict JSON (so a sender can be named even when the schema fails)
    data: Any = None
    reasons: list[Reason] = field(default_factory=list)


def schema_reasons(exc: ValidationError) -> list[Reason]:
    """One ``SCHEMA_INVALID`` reason per error (at most :data:`MAX_SCHEMA_REASONS`), naming the field as the
    document does and the rule in words (:mod:`~launchrelay.contract.explain`)."""
    out = []
    for err in exc.errors(include_url=False, include_input=False)[:MAX_SCHEMA_REASONS]:
        where, words = explain(err)
        out.append(
            Reason(code=ReasonCode.SCHEMA_INVALID.value, message=words[:2000], field=where[:200] if where else None)
        )
    return out


def read(raw: bytes) -> Parsed:
    """Read one document: strict JSON first, then the models. Never raises for any input.

    A ``launchrelay/1`` document in one of that version's earlier shapes is read through
    :func:`~launchrelay.contract.versions.upgrade_v1` (the message is built from the rewritten copy; ``data``
    stays what was sent)."""
    value = strict.parse(raw)
    if isinstance(value, strict.JsonProblem):
        return Parsed(None, None, [Reason(code=value.code.value, message=value.message, field=None)])
    try:
        return Parsed(MESSAGE_ADAPTER.validate_json(raw), value)
    except ValidationError as exc:
        if versions.version_of(value) != versions.V1:
            return Parsed(None, value, schema_reasons(exc))
        return _read_earlier_v1(value, exc)


def _read_earlier_v1(value: dict[str, Any], first: ValidationError) -> Parsed:
    """``value`` as an earlier shape of launchrelay/1; the first failure's reasons when it is none either."""
    upgraded = versions.upgrade_v1(value)
    if "message_type" in upgraded:
        candidates = [upgraded]
    else:  # the first shapes left it out: the one type the document fits, as the schema's oneOf said
        candidates = [{**upgraded, "message_type": t.value} for t in MessageType]
    if candidates == [value]:
        return Parsed(None, value, schema_reasons(first))
    fits, failures = [], []
    for doc in candidates:
        try:
            fits.append(MESSAGE_ADAPTER.validate_json(canonical_json(doc)))
        except ValidationError as exc:
            failures.append(exc)
    if len(fits) == 1:
        return Parsed(fits[0], value)
    if len(fits) > 1:
        kinds = ", ".join(sorted(m.message_type for m in fits))
        why = f"without message_type the document fits several types ({kinds}): say which"
        return Parsed(None, value, [Reason(code=ReasonCode.SCHEMA_INVALID.value, message=why, field="message_type")])

    # what is wrong with it as the type whose members it has (fewest missing or unknown), then the fewest errors
    def distance(exc: ValidationError) -> tuple[int, int]:
        shape = sum(e["type"] in ("missing", "extra_forbidden") for e in exc.errors(include_url=False))
        return shape, exc.error_count()

    return Parsed(None, value, schema_reasons(min(failures, key=distance)))


def stable_id(prefix: str, seed: str) -> str:
    """An id derived from ``seed``: the same every time, so a replay after a crash writes the same ids."""
    return f"{prefix}-{seed_hash(seed)}"


def seed_hash(seed: str) -> str:
    """The part of :func:`stable_id` after the prefix: ids of several outputs of one input can share it."""
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


def message_key(sender: str, message_id: str) -> str:
    """A message's identity: ids are scoped per sender, so two parties may use the same one."""
    return f"{sender}/{message_id}"


def canonical_json(data: Any) -> bytes:
    """Encode plain JSON data canonically."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode(message: BaseModel) -> bytes:
    """The canonical bytes of a message."""
    return canonical_json(message.model_dump(mode="json", exclude_none=True))


def encode_fast(message: BaseModel) -> bytes:
    """Compact JSON in field order (not sorted): for the relay's own receipts and events on the hot path."""
    return message.model_dump_json(exclude_none=True).encode("utf-8")


def with_member(body: bytes, name: str, json_text: str) -> bytes:
    """``body``, the bytes of a JSON object, with one more member whose value is already JSON text.

    For a value serialised once and written twice (a notice in the relay's state and in its status event):
    appending it costs a copy, serialising it again inside the object a model dump. ``name`` must not be a
    member of ``body`` already."""
    if not body.endswith(b"}"):
        raise ValueError("not a JSON object")
    member = json.dumps(name).encode() + b":" + json_text.encode()
    return body[:-1] + (b"," if body != b"{}" else b"") + member + b"}"


def decode(raw: bytes | str) -> Message:
    """Parse and validate one message; raises :class:`~launchrelay.errors.ContractError` listing every reason."""
    parsed = read(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if parsed.message is None:
        raise ContractError(parsed.reasons)
    return parsed.message


#: Field types that recur across the models, given one named definition in the schema instead of a copy
#: at every use: name -> (the properties that identify an inline copy, the definition).
_SHARED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "PartyCode": (
        {"type": "string", "pattern": "^[A-Z]{2}$"},
        {
            "type": "string",
            "pattern": "^[A-Z]{2}$",
            "enum": sorted(ISO_ALPHA2),
            "description": "A party: an ISO 3166-1 alpha-2 country code",
        },
    ),
    "UtcTime": (
        {"type": "string", "pattern": UTC_TIME_PATTERN},
        {
            "type": "string",
            "format": "date-time",
            "pattern": UTC_TIME_PATTERN,
            "description": "RFC 3339 date-time in UTC: upper-case T and Z (or +00:00), at most microseconds",
        },
    ),
}
#: Keys of an inline copy that describe its use, kept beside the reference.
_USE_KEYS = ("title", "description", "default", "examples")


def _share(schema: Any, ref_template: str) -> Any:
    """Replace each inline copy of a shared field type with a reference to its one definition."""
    if isinstance(schema, list):
        return [_share(v, ref_template) for v in schema]
    if not isinstance(schema, dict):
        return schema
    for name, (marks, _) in _SHARED.items():
        if all(schema.get(k) == v for k, v in marks.items()):
            return {"$ref": ref_template.format(model=name), **{k: schema[k] for k in _USE_KEYS if k in schema}}
    return {k: _share(v, ref_template) for k, v in schema.items()}


def model_schemas(adapter: TypeAdapter[Any], ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """The JSON Schema of ``adapter``'s type with the shared field types named once under ``$defs``."""
    schema = _share(adapter.json_schema(mode="validation", ref_template=ref_template), ref_template)
    schema.setdefault("$defs", {}).update({name: {"title": name, **d} for name, (_, d) in _SHARED.items()})
    return schema  # type: ignore[no-any-return]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every message, as committed in docs/schema/."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://launchrelay.example/schema/message.json",
        "title": "launchrelay message",
        "description": "A message of the launchrelay contract. Beyond what this schema states, the models refuse: "
        + "; ".join(BEYOND_SCHEMA)
        + ".",
        **model_schemas(MESSAGE_ADAPTER),
    }


def version_schema(version: str) -> dict[str, Any]:
    """The JSON Schema of everything contract ``version`` accepts (docs/schema/launchrelay-N.schema.json).

    ``launchrelay/2`` is today's shape with ``contract`` required. ``launchrelay/1`` is today's shape loosened
    by what the version's earlier schemas allowed (docs/schema/launchrelay-1/ keeps each as released): free
    text as a plain string, ``message_type`` and an area's ``kind`` left out, a time at any offset."""
    schema = copy.deepcopy(json_schema())
    number = version.rsplit("/", 1)[-1]
    schema["$id"] = f"https://launchrelay.example/schema/launchrelay-{number}.json"
    schema["title"] = f"launchrelay message, contract {version}"
    defs = schema["$defs"]
    for d in defs.values():
        props, required = d.get("properties", {}), d.get("required")
        if "contract" in props:
            props["contract"] = {"const": version, "title": "Contract"}
            if version == versions.V1:
                props["contract"]["default"] = version  # a document that names no version is launchrelay/1
            elif required is not None:
                required.insert(0, "contract")
        if version == versions.V1 and required is not None:
            d["required"] = [r for r in required if r not in ("message_type", "kind")]
    if version == versions.V1:
        defs["UtcTime"] = {k: v for k, v in defs["UtcTime"].items() if k != "pattern"}
        defs["UtcTime"]["description"] = "RFC 3339 date-time, any offset (read as the same instant in UTC)"
        _free_text_as_string(schema)
    return schema


def _free_text_as_string(schema: Any) -> None:
    """Where free text is keyed by language, also a plain string (read as text of unstated language)."""
    if isinstance(schema, list):
        for v in schema:
            _free_text_as_string(v)
    elif isinstance(schema, dict):
        options = schema.get("anyOf")
        if isinstance(options, list) and any(isinstance(o, dict) and "patternProperties" in o for o in options):
            options.insert(0, {"type": "string", "maxLength": 2000})
        for v in schema.values():
            _free_text_as_string(v)
