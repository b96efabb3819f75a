"""`launchrelay config check`: what a config and the environment resolve to, secrets masked."""

from __future__ import annotations

from datetime import date, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel

from launchrelay.agreements.config import Agreement, Deployment, GeometryRules, iso_duration
from launchrelay.settings import Settings
from launchrelay.topics import Topics

#: what an agreement's value of ``None`` or an empty table means, by key (every other unset value: "none")
_UNSET = {
    "in_force_from": "none (no start)",
    "in_force_until": "none (no end)",
    "min_ballistic_range_km": "none (any range)",
    "ballistic_directions": "none (any direction)",
    "min_lead": "none (no minimum)",
    "max_lead": "none (no maximum)",
    "max_window": "none (any length)",
    "validity": "none (the window)",
    "impact_area_kinds": "any kind",
    "sea_launch_categories": "any category",
    "group_limits": "none (no limit)",
    "report_due": "none (no report expected)",
    "retransmit": "none (no re-sending)",
    "geometry": "none (no distances measured)",
    "geometry.boundary": "none",
    "geometry.party_sides": "none",
}
#: what is not a rule (printed apart)
_NOT_RULES = {"id", "title", "sources"}


def _text(value: Any) -> str:
    """One rule's value as the config writes it."""
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_text(k)} = {_text(v)}" for k, v in value.items()) + " }"
    if isinstance(value, BaseModel):
        return _text({k: v for k, v in value if v is not None})
    return str(value)


def rules(deployment: Deployment, agreement: Agreement) -> list[tuple[str, str, str]]:
    """Every rule of ``agreement`` as the relay will enforce it: (key, value, source), source being ``preset``,
    ``override`` (the config changed the preset's), ``config`` (an agreement the config defines) or ``default``."""
    out: list[tuple[str, str, str]] = []
    for key in Agreement.model_fields:
        if key in _NOT_RULES:
            continue
        value = getattr(agreement, key)
        origin = deployment.origin(agreement.id, key)
        if key == "geometry" and isinstance(value, GeometryRules):
            for sub in GeometryRules.model_fields:
                got = getattr(value, sub)
                if sub == "boundary" and got is not None:
                    text = f"GeoJSON {got.get('type', '?')} (given)"
                else:
                    text = _text(got) if got not in (None, {}, []) else _UNSET.get(f"geometry.{sub}", "none")
                out.append((f"geometry.{sub}", text, deployment.origin(agreement.id, f"geometry.{sub}")))
            continue
        text = _text(value) if value not in (None, {}, []) else _UNSET.get(key, "none")
        out.append((key, text, origin))
    return out


def warnings(deployment: Deployment) -> list[str]:
    """What loads but will not work as its writer likely meant: each a line for the operator."""
    out = []
    for code, party in sorted(deployment.parties.items()):
        if not party.keys:
            out.append(f"party {code} has no keys: every message it sends will be rejected (KEY_UNKNOWN)")
    for a in deployment.agreements.values():
        r = a.retransmit
        if r is None or r.max_attempts == 0:
            continue
        fit = int(a.ack_deadline / r.every) - (1 if a.ack_deadline % r.every == timedelta(0) else 0)
        if fit < r.max_attempts:
            out.append(
                f"agreement {a.id}: retransmit every {iso_duration(r.every)}, at most {r.max_attempts} times, "
                f"does not fit before ack_deadline {iso_duration(a.ack_deadline)}: only {max(fit, 0)} can be sent "
                "before the acknowledgement is overdue"
            )
    return out


def describe(deployment: Deployment, settings: Settings) -> str:
    """A readable summary; SASL passwords and private keys are never printed (only whether they are set)."""
    lines = ["settings (environment, LAUNCHRELAY_*):"]
    for name, value in settings.model_dump().items():
        if name == "kafka_sasl_password":
            value = "***" if value else None
        lines.append(f"  {name} = {value}")
    topics = Topics(deployment.relay.topic_prefix)
    r = deployment.relay
    lines += [
        f"relay: topic prefix {r.topic_prefix!r}, {r.partitions} partitions, "
        f"replication {r.replication_factor or 'min(3, brokers)'}, "
        f"message limit {r.max_message_bytes} bytes",
        "parties:",
    ]
    for code, party in sorted(deployment.parties.items()):
        keys = ", ".join(party.keys) or "NO KEYS (its messages will be rejected as KEY_UNKNOWN)"
        lines.append(
            f"  {code} {party.name}: key ids {keys}; writes {topics.outbound(code)}, reads {topics.inbound(code)}; "
            f"its systems read contract {', '.join(party.reads)}"
        )
    lines.append(
        "agreements (every rule the relay enforces: value, and whether the preset, the config overriding it, "
        "the config's own agreement or the default sets it):"
    )
    for a in deployment.agreements.values():
        lines.append(f"  {a.id}: {a.title}")
        table = rules(deployment, a)
        width = max(len(k) for k, _, _ in table)
        vwidth = min(max(len(v) for _, v, _ in table), 60)
        lines += [f"    {k:<{width}}  {v:<{vwidth}}  {o}" for k, v, o in table]
        lines += [f"    source: {s}" for s in a.sources]
    return "\n".join(lines)
