"""`launchrelay config check`: what a config and the environment resolve to, secrets masked."""

from __future__ import annotations

from datetime import timedelta

from launchrelay.agreements.config import Deployment
from launchrelay.settings import Settings
from launchrelay.topics import Topics


def _d(value: timedelta | None) -> str:
    return "-" if value is None else str(value)


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
        f"relay: topic prefix {r.topic_prefix!r}, {r.partitions} partitions, replication {r.replication_factor}, "
        f"message limit {r.max_message_bytes} bytes",
        "parties:",
    ]
    for code, party in sorted(deployment.parties.items()):
        keys = ", ".join(party.keys) or "NO KEYS (its messages will be rejected as KEY_UNKNOWN)"
        lines.append(
            f"  {code} {party.name}: key ids {keys}; writes {topics.outbound(code)}, reads {topics.inbound(code)}"
        )
    lines.append("agreements:")
    for a in deployment.agreements.values():
        retx = f"every {a.retransmit.every}, at most {a.retransmit.max_attempts}" if a.retransmit else "none"
        lines += [
            f"  {a.id}: {a.title}",
            f"    parties {', '.join(a.parties)} ({a.topology.value})",
            f"    covers {', '.join(c.value for c in a.categories)}"
            + (f"; missiles over {a.min_ballistic_range_km:g} km" if a.min_ballistic_range_km else ""),
            f"    lead time {_d(a.min_lead)} .. {_d(a.max_lead)}; window at most {_d(a.max_window)}",
            f"    acknowledgement within {a.ack_deadline}; retransmission {retx}",
        ]
        if a.geometry:
            g = a.geometry
            lines.append(
                f"    boundary distances: launch site {g.launch_site_min_km:g} km, "
                f"impact area {g.impact_area_min_km:g} km, trajectory {g.trajectory_min_km:g} km"
            )
    return "\n".join(lines)
