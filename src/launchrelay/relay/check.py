"""The relay's whole decision for one message, offline: what `launchrelay check` runs in a planning pipeline.

The same :func:`~launchrelay.relay.decide.decide` the relay runs, on a record
built from a file: keyed by its ``launch_key``, on its sender's out topic,
received at a given time. Earlier messages it refers to are given as files and
decided first, each at its own ``created_at``, so an amendment is judged against
the notice as it stands. Without a signature the signature is not checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from launchrelay.agreements.config import Deployment
from launchrelay.contract.headers import KEY_ID_HEADER, SIGNATURE_HEADER, Headers
from launchrelay.contract.outcomes import Outcome
from launchrelay.relay.decide import Decision, InboundRecord, RelayContext, decide
from launchrelay.relay.state import MemoryState


@dataclass(frozen=True)
class Checked:
    """The decision on the message, and what happened to each earlier one on the way."""

    decision: Decision
    earlier: list[tuple[str, Decision]]


def _record(ctx: RelayContext, raw: bytes, received_at: datetime, headers: Headers, key: bytes | None) -> InboundRecord:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    data = data if isinstance(data, dict) else {}
    claimed = data.get("sender")
    sender = claimed if isinstance(claimed, str) else "ZZ"
    launch_key = data.get("launch_key")
    if key is None and isinstance(launch_key, str):
        key = launch_key.encode()
    return InboundRecord(ctx.topics.outbound(sender), 0, 0, key, raw, headers, int(received_at.timestamp() * 1000))


def _created_at(raw: bytes, fallback: datetime) -> datetime:
    try:
        return datetime.fromisoformat(json.loads(raw)["created_at"])
    except (ValueError, KeyError, TypeError):
        return fallback


def check_message(
    deployment: Deployment,
    raw: bytes,
    received_at: datetime,
    *,
    signature_b64: str | None = None,
    key_id: str | None = None,
    key: bytes | None = None,
    after: list[tuple[str, bytes]] | None = None,
) -> Checked:
    """Decide ``raw`` as the relay would, received at ``received_at``, after the earlier messages ``after``."""
    signed = signature_b64 is not None and key_id is not None
    ctx = replace(RelayContext.build(deployment), verify_signatures=signed)
    unsigned = replace(ctx, verify_signatures=False)
    state = MemoryState()
    earlier = []
    for name, body in after or []:
        when = _created_at(body, received_at)
        decision = decide(_record(unsigned, body, when, [], None), unsigned, state)
        for write in decision.state_writes:
            state.apply(write)
        earlier.append((name, decision))
    headers: Headers = []
    if signed:
        assert signature_b64 is not None and key_id is not None
        headers = [(SIGNATURE_HEADER, signature_b64.encode()), (KEY_ID_HEADER, key_id.encode())]
    return Checked(decide(_record(ctx, raw, received_at, headers, key), ctx, state), earlier)


#: How `launchrelay check` says each verdict (a word for what the relay would do).
_SAID = {Outcome.FORWARDED: "forward", Outcome.REJECTED: "reject", Outcome.DUPLICATE: "duplicate"}


def render(checked: Checked) -> str:
    """What `launchrelay check` prints: each earlier message's outcome, then the verdict and every reason."""
    lines = [f"(earlier) {name}: {_SAID[d.kind]}" + (f" {', '.join(d.reason_codes)}" if d.reasons else "")
             for name, d in checked.earlier]  # fmt: skip
    d = checked.decision
    verdict = _SAID[d.kind]
    to = f" to {', '.join(d.recipients)}" if d.recipients else ""
    lines.append(f"{verdict}{to}")
    lines += [f"  {r.code}{' (' + r.field + ')' if r.field else ''}: {r.message}" for r in d.reasons]
    lines += [f"  warning {w.code}{' (' + w.field + ')' if w.field else ''}: {w.message}" for w in d.warnings]
    if d.changed:
        lines.append(f"  changes: {', '.join(d.changed)}")
    return "\n".join(lines)


def as_json(checked: Checked) -> dict[str, object]:
    d = checked.decision
    return {
        "outcome": _SAID[d.kind],
        "recipients": d.recipients,
        "reasons": [r.model_dump(exclude_none=True) for r in d.reasons],
        "warnings": [w.model_dump(exclude_none=True) for w in d.warnings],
        "notice": d.notice.to_json() if d.notice else None,
        "changed": d.changed,
        "earlier": [{"file": name, "outcome": _SAID[e.kind], "reasons": e.reason_codes} for name, e in checked.earlier],
    }
