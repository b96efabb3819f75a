"""The catalogue of rejection reason codes: one place names and documents each.

A code is stable once published: counterparts and dashboards match on it.
``docs/reasons.md`` is generated from this catalogue (``launchrelay docs``) and
a test fails when it falls out of date.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Stage(StrEnum):
    """Which check found the problem, in the order the relay runs them."""

    BYTES = "bytes"
    SCHEMA = "schema"
    RECORD = "record"
    SIGNATURE = "signature"
    RULES = "rules"
    STATE = "state"
    RELAY = "relay"


class ReasonCode(StrEnum):
    # bytes
    OVERSIZE = "OVERSIZE"
    NOT_UTF8 = "NOT_UTF8"
    NOT_JSON = "NOT_JSON"
    JSON_TOO_DEEP = "JSON_TOO_DEEP"
    JSON_NON_FINITE = "JSON_NON_FINITE"
    JSON_DUPLICATE_KEY = "JSON_DUPLICATE_KEY"
    JSON_BAD_STRING = "JSON_BAD_STRING"
    NUMBER_OUT_OF_RANGE = "NUMBER_OUT_OF_RANGE"
    RECORD_UNREADABLE = "RECORD_UNREADABLE"
    # schema
    SCHEMA_INVALID = "SCHEMA_INVALID"
    NOT_A_PARTY_MESSAGE = "NOT_A_PARTY_MESSAGE"
    # the Kafka record around the message
    KEY_MISMATCH = "KEY_MISMATCH"
    TIMESTAMP_INVALID = "TIMESTAMP_INVALID"
    # signature and origin
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    KEY_UNKNOWN = "KEY_UNKNOWN"
    SENDER_SPOOFED = "SENDER_SPOOFED"
    LINK_UNVERIFIED = "LINK_UNVERIFIED"
    # agreement rules
    AGREEMENT_UNKNOWN = "AGREEMENT_UNKNOWN"
    AGREEMENT_NOT_IN_FORCE = "AGREEMENT_NOT_IN_FORCE"
    CREATED_AT_SKEW = "CREATED_AT_SKEW"
    CREATED_AT_TOO_OLD = "CREATED_AT_TOO_OLD"
    SENDER_NOT_PARTY = "SENDER_NOT_PARTY"
    RECIPIENT_NOT_PARTY = "RECIPIENT_NOT_PARTY"
    RECIPIENT_UNREACHABLE = "RECIPIENT_UNREACHABLE"
    CONTRACT_VERSION_NOT_READ = "CONTRACT_VERSION_NOT_READ"
    NOT_CONFIDENTIAL = "NOT_CONFIDENTIAL"
    LAUNCHED_IN_FUTURE = "LAUNCHED_IN_FUTURE"
    OUT_OF_SCOPE_CATEGORY = "OUT_OF_SCOPE_CATEGORY"
    OUT_OF_SCOPE_RANGE = "OUT_OF_SCOPE_RANGE"
    OUT_OF_SCOPE_DIRECTION = "OUT_OF_SCOPE_DIRECTION"
    RANGE_REQUIRED = "RANGE_REQUIRED"
    WINDOW_IN_PAST = "WINDOW_IN_PAST"
    LEAD_TIME_TOO_SHORT = "LEAD_TIME_TOO_SHORT"
    LEAD_TIME_TOO_LONG = "LEAD_TIME_TOO_LONG"
    WINDOW_TOO_LONG = "WINDOW_TOO_LONG"
    AREA_KIND_NOT_ALLOWED = "AREA_KIND_NOT_ALLOWED"
    DIRECTION_REQUIRED = "DIRECTION_REQUIRED"
    IMPACT_AREA_REQUIRED = "IMPACT_AREA_REQUIRED"
    GROUP_INTERVAL_REQUIRED = "GROUP_INTERVAL_REQUIRED"
    GROUP_INTERVAL_TOO_LONG = "GROUP_INTERVAL_TOO_LONG"
    AREA_NOT_MEASURABLE = "AREA_NOT_MEASURABLE"
    LAUNCH_SITE_TOO_CLOSE = "LAUNCH_SITE_TOO_CLOSE"
    IMPACT_AREA_TOO_CLOSE = "IMPACT_AREA_TOO_CLOSE"
    TRAJECTORY_CROSSES_BOUNDARY = "TRAJECTORY_CROSSES_BOUNDARY"
    TRAJECTORY_TOO_CLOSE = "TRAJECTORY_TOO_CLOSE"
    WRONG_SIDE_OF_BOUNDARY = "WRONG_SIDE_OF_BOUNDARY"
    AMENDMENT_INVALID = "AMENDMENT_INVALID"
    LAUNCH_OUTSIDE_WINDOW = "LAUNCH_OUTSIDE_WINDOW"
    # state
    REFERENCE_UNKNOWN = "REFERENCE_UNKNOWN"
    REFERENCE_MISMATCH = "REFERENCE_MISMATCH"
    ACK_NOT_FROM_RECIPIENT = "ACK_NOT_FROM_RECIPIENT"
    NOTIFICATION_CLOSED = "NOTIFICATION_CLOSED"
    DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"
    DUPLICATE = "DUPLICATE"
    REDRIVE_UNAUTHENTICATED = "REDRIVE_UNAUTHENTICATED"
    # the relay itself
    INTERNAL_ERROR = "INTERNAL_ERROR"


@dataclass(frozen=True)
class ReasonInfo:
    stage: Stage
    summary: str
    source: str = ""


#: Refusals no redrive can undo, whatever the config: the bytes, the contract, the signature and the record's key
#: are what they are; a window or a lead time only gets shorter, an old message only older, a closed or answered
#: notice stays so. A dead letter refused for one of these is not offered for redrive (the console, the CLI's list).
FINAL: frozenset[ReasonCode] = frozenset({
    ReasonCode.NOT_UTF8, ReasonCode.NOT_JSON, ReasonCode.JSON_TOO_DEEP, ReasonCode.JSON_NON_FINITE,
    ReasonCode.JSON_DUPLICATE_KEY, ReasonCode.JSON_BAD_STRING, ReasonCode.NUMBER_OUT_OF_RANGE,
    ReasonCode.SCHEMA_INVALID, ReasonCode.NOT_A_PARTY_MESSAGE, ReasonCode.KEY_MISMATCH,
    ReasonCode.SIGNATURE_MISSING, ReasonCode.SIGNATURE_INVALID, ReasonCode.SENDER_SPOOFED,
    ReasonCode.LEAD_TIME_TOO_SHORT, ReasonCode.WINDOW_IN_PAST, ReasonCode.CREATED_AT_TOO_OLD,
    ReasonCode.REFERENCE_MISMATCH, ReasonCode.ACK_NOT_FROM_RECIPIENT, ReasonCode.NOTIFICATION_CLOSED,
    ReasonCode.DUPLICATE_CONFLICT, ReasonCode.DUPLICATE,
})  # fmt: skip

#: Codes no longer issued, with the release that retired them (kept: earlier receipts name them).
RETIRED: dict[ReasonCode, str] = {ReasonCode.AMENDMENT_INVALID: "0.3.0"}

CATALOGUE: dict[ReasonCode, ReasonInfo] = {
    ReasonCode.OVERSIZE: ReasonInfo(Stage.BYTES, "The record's value is larger than the relay's size limit."),
    ReasonCode.NOT_UTF8: ReasonInfo(Stage.BYTES, "The record's value is not valid UTF-8."),
    ReasonCode.NOT_JSON: ReasonInfo(Stage.BYTES, "The record's value is not a JSON document (RFC 8259)."),
    ReasonCode.JSON_TOO_DEEP: ReasonInfo(
        Stage.BYTES, "Arrays and objects nest deeper than 200 levels; the parser stops there without recursing."
    ),
    ReasonCode.JSON_NON_FINITE: ReasonInfo(
        Stage.BYTES, "`NaN`, `Infinity` or `-Infinity` appears: they are not JSON numbers.", "RFC 8259 sec. 6"
    ),
    ReasonCode.JSON_DUPLICATE_KEY: ReasonInfo(
        Stage.BYTES,
        "An object has the same key twice: readers disagree on which value counts, so none is chosen.",
        "RFC 7493 (I-JSON) sec. 2.3",
    ),
    ReasonCode.JSON_BAD_STRING: ReasonInfo(
        Stage.BYTES,
        "A `\\u` escape encodes a lone UTF-16 surrogate, which is not a Unicode character.",
        "RFC 7493 (I-JSON) sec. 2.1",
    ),
    ReasonCode.NUMBER_OUT_OF_RANGE: ReasonInfo(
        Stage.BYTES,
        "A number is beyond the range of an IEEE-754 double (e.g. `1e400`); no reader sees the same value.",
        "RFC 7493 (I-JSON) sec. 2.2",
    ),
    ReasonCode.RECORD_UNREADABLE: ReasonInfo(
        Stage.BYTES,
        "The Kafka record itself could not be read (e.g. a header name that is not UTF-8); the dead letter "
        "names its offset, where its bytes stay on the out topic.",
    ),
    ReasonCode.SCHEMA_INVALID: ReasonInfo(
        Stage.SCHEMA, "The JSON does not match the message schema; `field` names the offending path."
    ),
    ReasonCode.NOT_A_PARTY_MESSAGE: ReasonInfo(
        Stage.SCHEMA, "A receipt was published on a party's out topic; only the relay issues receipts."
    ),
    ReasonCode.KEY_MISMATCH: ReasonInfo(
        Stage.RECORD,
        "The Kafka record key is missing or is not the message's `launch_key`: order per launch depends on it.",
    ),
    ReasonCode.TIMESTAMP_INVALID: ReasonInfo(
        Stage.RECORD,
        "The record's timestamp is not a time (e.g. -1): the out topic does not stamp LogAppendTime, so no "
        "lead time can be judged.",
    ),
    ReasonCode.SIGNATURE_MISSING: ReasonInfo(
        Stage.SIGNATURE, "The record lacks the `lr-signature` or `lr-key-id` header."
    ),
    ReasonCode.SIGNATURE_INVALID: ReasonInfo(
        Stage.SIGNATURE, "The Ed25519 signature does not verify over the record's exact bytes."
    ),
    ReasonCode.KEY_UNKNOWN: ReasonInfo(Stage.SIGNATURE, "The key id is not registered for the claimed sender."),
    ReasonCode.SENDER_SPOOFED: ReasonInfo(
        Stage.SIGNATURE, "The message's sender is not the party that owns the topic it was written to."
    ),
    ReasonCode.LINK_UNVERIFIED: ReasonInfo(
        Stage.SIGNATURE,
        "Two-centre mode: a receipt or beacon on an incoming link does not verify with the linked centre's relay "
        "keys (`[links.XX] relay_keys`); set aside, never passed on.",
    ),
    ReasonCode.AGREEMENT_UNKNOWN: ReasonInfo(Stage.RULES, "The agreement id is not configured on this relay."),
    ReasonCode.AGREEMENT_NOT_IN_FORCE: ReasonInfo(
        Stage.RULES,
        "The message was received outside the agreement's period in force.",
        "CN-RU 2009: 16 Dec 2010 to 16 Dec 2030 (Protocol of 15 Dec 2020)",
    ),
    ReasonCode.CREATED_AT_SKEW: ReasonInfo(
        Stage.RULES,
        "`created_at` is later than the broker's receipt by more than the tolerance "
        "(`[relay] created_at_skew`, default 5 minutes): the sender's clock is wrong.",
    ),
    ReasonCode.CREATED_AT_TOO_OLD: ReasonInfo(
        Stage.RULES,
        "`created_at` is earlier than the broker's receipt by more than the relay remembers message ids "
        "(`[relay] remember_for`, default 30 days): too old to be told from a replay of a message it has forgotten.",
    ),
    ReasonCode.SENDER_NOT_PARTY: ReasonInfo(Stage.RULES, "The sender is not a party to the agreement."),
    ReasonCode.RECIPIENT_NOT_PARTY: ReasonInfo(
        Stage.RULES,
        "A recipient is not a party to the agreement, or a bilateral message is not addressed to the other party.",
    ),
    ReasonCode.RECIPIENT_UNREACHABLE: ReasonInfo(
        Stage.RULES,
        "Two-centre mode: a recipient is neither the party this centre serves nor one whose centre it is linked to "
        "(`[links.XX]`).",
    ),
    ReasonCode.LAUNCHED_IN_FUTURE: ReasonInfo(
        Stage.RULES,
        "A completed-launch report's `launched_at` is after the report was received (beyond the allowed clock "
        "skew): a report of a launch that has not happened.",
    ),
    ReasonCode.NOT_CONFIDENTIAL: ReasonInfo(
        Stage.RULES,
        "The message says `confidential: false` under an agreement whose notifications are confidential "
        "(`confidential = true`: CN-RU 2009, US-RU 1988, IN-PK 2005).",
    ),
    ReasonCode.CONTRACT_VERSION_NOT_READ: ReasonInfo(
        Stage.RULES,
        "A recipient's systems do not read the contract version the message is written in (`[parties.XX] reads`). "
        "Signed bytes are never rewritten: send it again in a version every recipient reads (the reason names them).",
    ),
    ReasonCode.OUT_OF_SCOPE_CATEGORY: ReasonInfo(
        Stage.RULES,
        "The vehicle category is not covered by the agreement.",
        "e.g. US-USSR 1988: ICBM and SLBM only",
    ),
    ReasonCode.OUT_OF_SCOPE_RANGE: ReasonInfo(
        Stage.RULES,
        "The ballistic missile's range is at or below the agreement's threshold.",
        "CN-RU 2009 art. 1: range over 2000 km",
    ),
    ReasonCode.OUT_OF_SCOPE_DIRECTION: ReasonInfo(
        Stage.RULES,
        "The ballistic missile heads away from the directions the agreement covers for its sender.",
        "[I] CN-RU 2009: toward the other party (RU: E, NE, S, SE; CN: W, NW, N, NE), russianforces.org 2010",
    ),
    ReasonCode.RANGE_REQUIRED: ReasonInfo(
        Stage.RULES, "The agreement's scope depends on range, and the notification gives none."
    ),
    ReasonCode.WINDOW_IN_PAST: ReasonInfo(
        Stage.RULES,
        "The launch window had already opened (or closed) when the notice was received: notices come before it.",
        "Hague Code para 4(a)(iii); every agreement's pre-launch notice",
    ),
    ReasonCode.LEAD_TIME_TOO_SHORT: ReasonInfo(
        Stage.RULES,
        "The window opens sooner after receipt than the agreement's minimum notice (a window already open is "
        "`WINDOW_IN_PAST`).",
        "CN-RU 2009: 24 h; US-USSR 1988: 24 h; IN-PK 2005 art. 2: 72 h",
    ),
    ReasonCode.LEAD_TIME_TOO_LONG: ReasonInfo(
        Stage.RULES, "The window opens later after receipt than the agreement allows.", "CN-RU 2009: 30 days"
    ),
    ReasonCode.WINDOW_TOO_LONG: ReasonInfo(
        Stage.RULES, "The launch window is longer than the agreement allows.", "IN-PK 2005 art. 2: 5 days"
    ),
    ReasonCode.AREA_KIND_NOT_ALLOWED: ReasonInfo(
        Stage.RULES,
        "An area is given in a form the agreement does not accept there.",
        "US-USSR 1988 art. II: impact areas by coordinates; a quadrant or named sea only as an SLBM's launch area",
    ),
    ReasonCode.DIRECTION_REQUIRED: ReasonInfo(
        Stage.RULES, "The agreement asks for the planned direction of flight.", "Hague Code para 4(a)(iii)"
    ),
    ReasonCode.IMPACT_AREA_REQUIRED: ReasonInfo(
        Stage.RULES,
        "A ballistic-missile notice names at least one planned impact area (`requires_impact_area`; not the Hague "
        "Code's, whose content has none).",
        "US-USSR 1988 art. II; IN-PK 2005 art. 5",
    ),
    ReasonCode.GROUP_INTERVAL_REQUIRED: ReasonInfo(
        Stage.RULES,
        "A group launch under an agreement with group limits gives `launch_interval_minutes`.",
        "CN-RU 2009 art. 1",
    ),
    ReasonCode.GROUP_INTERVAL_TOO_LONG: ReasonInfo(
        Stage.RULES,
        "Launches flagged as a group are farther apart than the group's limit.",
        "CN-RU 2009 art. 1: simultaneous < 5 min, near-simultaneous < 60 min",
    ),
    ReasonCode.AREA_NOT_MEASURABLE: ReasonInfo(
        Stage.RULES,
        "The agreement measures distances, and an area is given only by name or ocean quadrant.",
        "IN-PK 2005 art. 5-6",
    ),
    ReasonCode.LAUNCH_SITE_TOO_CLOSE: ReasonInfo(
        Stage.RULES, "The launch area is nearer the boundary than allowed.", "IN-PK 2005 art. 5: 40 km"
    ),
    ReasonCode.IMPACT_AREA_TOO_CLOSE: ReasonInfo(
        Stage.RULES, "An impact area is nearer the boundary than allowed.", "IN-PK 2005 art. 5: 70 km"
    ),
    ReasonCode.TRAJECTORY_CROSSES_BOUNDARY: ReasonInfo(
        Stage.RULES, "The planned trajectory crosses the boundary.", "IN-PK 2005 art. 6"
    ),
    ReasonCode.TRAJECTORY_TOO_CLOSE: ReasonInfo(
        Stage.RULES,
        "The planned trajectory passes nearer the boundary than allowed.",
        "IN-PK 2005 art. 6: 40 km",
    ),
    ReasonCode.WRONG_SIDE_OF_BOUNDARY: ReasonInfo(
        Stage.RULES,
        "The launch area or an impact area lies on the other party's side of the boundary.",
        "IN-PK 2005 art. 5",
    ),
    ReasonCode.AMENDMENT_INVALID: ReasonInfo(
        Stage.RULES,
        "Retired in 0.3.0, no longer issued: a notice as amended was refused with it when it left a ballistic "
        "missile without an impact area, which is now the agreement's rule (`IMPACT_AREA_REQUIRED`). Kept so that "
        "receipts of earlier releases still name a known code.",
    ),
    ReasonCode.LAUNCH_OUTSIDE_WINDOW: ReasonInfo(
        Stage.RULES,
        "A completed-launch report's launch time is outside the notified window (or the notice's validity); "
        "refused, or forwarded with this as a warning, as the agreement's preset says.",
        "CN-RU 2009: reports of planned and completed launches",
    ),
    ReasonCode.REFERENCE_UNKNOWN: ReasonInfo(
        Stage.STATE, "`refers_to` names no message that this relay has forwarded."
    ),
    ReasonCode.REFERENCE_MISMATCH: ReasonInfo(
        Stage.STATE,
        "`refers_to` names a forwarded message of another agreement, launch, sender or kind.",
    ),
    ReasonCode.ACK_NOT_FROM_RECIPIENT: ReasonInfo(
        Stage.STATE, "An acknowledgement came from a party that was not a recipient of the message."
    ),
    ReasonCode.NOTIFICATION_CLOSED: ReasonInfo(
        Stage.STATE, "The notification was cancelled or reported completed; it takes no further amendments."
    ),
    ReasonCode.DUPLICATE_CONFLICT: ReasonInfo(Stage.STATE, "A message id was reused with different bytes."),
    ReasonCode.DUPLICATE: ReasonInfo(
        Stage.STATE,
        "An exact repeat (same sender, id and bytes) of a message already handled: it is not forwarded "
        "again; the dead-letter topic records it and the sender gets a `duplicate` receipt.",
    ),
    ReasonCode.REDRIVE_UNAUTHENTICATED: ReasonInfo(
        Stage.STATE,
        "The record carries a redrive mark (`lr-redrive`) that no registered operator key signed: the mark is "
        "ignored and the record decided as a plain re-publish (a repeat of a rejected message is a duplicate). "
        "Only an operator's signed redrive reopens a rejected message.",
    ),
    ReasonCode.INTERNAL_ERROR: ReasonInfo(
        Stage.RELAY,
        "Deciding on the record failed inside the relay on every one of its bounded attempts; it is set aside "
        "(header `lr-error` names the error) so the partition moves on. A fault of the relay, not the sender.",
    ),
}


def render_markdown() -> str:
    """The reason catalogue as the Markdown committed in docs/reasons.md."""
    lines = [
        "# Rejection reason codes",
        "",
        "Generated from `src/launchrelay/reasons.py` by `launchrelay docs`; do not edit by hand.",
        "Checks run in the order of the stages below; every reason found is reported, not just the first.",
        "",
        "| code | stage | meaning | source |",
        "| --- | --- | --- | --- |",
    ]
    for code, info in CATALOGUE.items():
        lines.append(f"| `{code}` | {info.stage} | {info.summary} | {info.source} |")
    return "\n".join(lines) + "\n"


assert set(CATALOGUE) == set(ReasonCode), "every reason code needs a catalogue entry"
