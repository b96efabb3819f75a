"""`launchrelay config check`: what a config and the environment resolve to, secrets masked."""

from __future__ import annotations

from datetime import timedelta

from launchrelay.agreements.config import Deployment, iso_duration
from launchrelay.settings import Settings
from launchrelay.topics import Topics


def _d(value: timedelta | None) -> str:
    return "-" if value is None else iso_duration(value)


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
    lines.append("agreements:")
    for a in deployment.agreements.values():
        rt = a.retransmit
        retx = f"every {iso_duration(rt.every)}, at most {rt.max_attempts}" if rt else "none"
        lines += [
            f"  {a.id}: {a.title}",
            f"    parties {', '.join(a.parties)} ({a.topology.value})",
            f"    covers {', '.join(c.value for c in a.categories)}"
            + (f"; missiles over {a.min_ballistic_range_km:g} km" if a.min_ballistic_range_km else ""),
            f"    lead time {_d(a.min_lead)} .. {_d(a.max_lead)}; window at most {_d(a.max_window)}",
            f"    acknowledgement within {iso_duration(a.ack_deadline)}; retransmission {retx}",
            f"    confidential by the agreement: {'yes (confidential: false is refused)' if a.confidential else 'no'}",
        ]
        if a.geometry:
            g = a.geometry
            lines.append(
                f"    boundary distances: launch site {g.launch_site_min_km:g} km, "
                f"impact area {g.impact_area_min_km:g} km, trajectory {g.trajectory_min_km:g} km"
            )
    return "\n".join(lines)
