"""Client quotas per user at the broker: read and change them with the Admin API (KIP-546).

Neither aiokafka nor librdkafka's Python binding offers AlterClientQuotas, so the
request is declared here on aiokafka's protocol types (v0, which Kafka 4.x still
serves) and sent over aiokafka's admin connection. DescribeClientQuotas is aiokafka's own.
A quota set on ``(user=<name>)`` throttles every client that logs in as that user:
the broker delays its responses until its byte rate is back under the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeClientQuotasRequest
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Float64, Int16, Int32, Schema, String

from launchrelay.errors import KafkaRequestFailed

#: The quota keys the access plan may set (Kafka's names), per user.
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate")
_ENTITY = Array(("entity_type", String("utf-8")), ("entity_name", String("utf-8")))


class _AlterClientQuotasResponseV0(Response):  # type: ignore[misc]  # aiokafka's protocol is untyped
    API_KEY = 49
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("entries", Array(("error_code", Int16), ("error_message", String("utf-8")), ("entity", _ENTITY))),
    )


class _AlterClientQuotasRequestV0(RequestStruct):  # type: ignore[misc]
    API_KEY = 49
    API_VERSION = 0
    RESPONSE_TYPE = _AlterClientQuotasResponseV0
    SCHEMA = Schema(
        (
            "entries",
            Array(
                ("entity", _ENTITY),
                ("ops", Array(("key", String("utf-8")), ("value", Float64), ("remove", Boolean))),
            ),
        ),
        ("validate_only", Boolean),
    )


_AlterStruct: TypeAlias = _AlterClientQuotasRequestV0


class _AlterClientQuotas(Request[_AlterStruct]):  # type: ignore[misc]
    API_KEY = 49

    def __init__(self, entries: list[tuple[Any, ...]]) -> None:
        self._entries = entries

    def build(self, request_struct_class: type[_AlterStruct]) -> _AlterStruct:
        return request_struct_class(self._entries, False)


#: What changes for one user: a key set to a value, or (None) removed.
QuotaChange = Mapping[str, float | None]


async def _admin(bootstrap: str, client_options: Mapping[str, Any], timeout_s: float) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                **dict(client_options))  # fmt: skip
    await admin.start()
    return admin


async def user_quotas(
    bootstrap: str, client_options: Mapping[str, Any] | None = None, timeout_s: float = 30.0
) -> dict[str, dict[str, float]]:
    """Every quota set on a named user: user -> {key: value}. Quotas on client ids or defaults are left out."""
    admin = await _admin(bootstrap, client_options or {}, timeout_s)
    try:
        # one filter component: entity type "user", match type 2 (any specified name)
        response = await admin._send_request(DescribeClientQuotasRequest([("user", 2, None)], False))
    finally:
        await admin.close()
    if response.error_code:
        raise KafkaRequestFailed(f"cannot describe client quotas on {bootstrap}: {response.error_message}")
    out: dict[str, dict[str, float]] = {}
    for entity, values in response.entries:
        names = dict(entity)
        if set(names) == {"user"} and names["user"] is not None:
            out[names["user"]] = {key: value for key, value in values}
    return out


async def alter_user_quotas(
    bootstrap: str,
    changes: Mapping[str, QuotaChange],
    client_options: Mapping[str, Any] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Set or remove quota keys per user, all in one request; raises when the broker refuses any."""
    entries = [
        ([("user", user)], [(key, value or 0.0, value is None) for key, value in ops.items()])
        for user, ops in changes.items()
        if ops
    ]
    if not entries:
        return
    admin = await _admin(bootstrap, client_options or {}, timeout_s)
    try:
        response = await admin._send_request(_AlterClientQuotas(entries))
    finally:
        await admin.close()
    failed = [f"{dict(entity).get('user')}: {message or code}" for code, message, entity in response.entries if code]
    if failed:
        raise KafkaRequestFailed(f"cannot set client quotas on {bootstrap}: {'; '.join(failed)}")
