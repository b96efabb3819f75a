"""The wire contract: one envelope and every message type, as strict pydantic models.

Every message is a JSON object whose ``message_type`` picks its model. All
messages about one launch share ``launch_key``, which is also the Kafka record
key, so they stay in one partition and keep their order.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    model_validator,
)

from launchrelay.contract.areas import Area, require_discriminator
from launchrelay.contract.areas import StrictModel as _Strict

CONTRACT_VERSION: Literal["launchrelay/1"] = "launchrelay/1"
#: the ``contract`` a document may name (contract/versions.py says what each promises)
ContractVersion = Literal["launchrelay/1", "launchrelay/2"]

ISO_ALPHA2 = frozenset(c.alpha_2 for c in pycountry.countries)

#: What the models refuse that a JSON Schema cannot say (it relates two values); the schema's description
#: lists these, and the property tests allow exactly these differences between the models and the schema.
BEYOND_SCHEMA = (
    "a window whose end is not after its start",
    "a polygon with fewer than 3 distinct points",
    "a sender among its own recipients",
    "a group launch with launch_count below 2, or several launches not flagged as a group",
    "an orbit whose apogee_km is below its perigee_km",
    "an amendment that changes nothing",
    "a launched report without launched_at, vehicle or launch_area, or a not_launched one with launched_at or "
    "without refers_to",
)

#: RFC 3339 date-time in UTC only: upper-case T and Z (or +00:00), seconds present, at most microseconds.
UTC_TIME_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|\+00:00)$"
)
_UTC_TIME = re.compile(UTC_TIME_PATTERN)
_OTHER_OFFSET = re.compile(r"T[0-9:.]+[+-](?!00:00$)[0-9]{2}:[0-9]{2}$")


def _iso_alpha2(code: str) -> str:
    if code not in ISO_ALPHA2:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _no_utc_instant(value: str) -> bool:
    """A time at another offset whose instant lies before year 1 or after year 9999 in UTC (it has no UTC text)."""
    try:
        datetime.fromisoformat(value).astimezone(UTC)
    except OverflowError:
        return True
    except ValueError:
        return False  # not a time at all: said otherwise
    return False


def _utc_text(value: Any) -> Any:
    """A time is RFC 3339 text in UTC, as the schema's pattern says (no other spellings, no numbers)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a time must be an RFC 3339 string")  # noqa: TRY004 - pydantic wants ValueError
    if not _UTC_TIME.match(value):
        if _OTHER_OFFSET.search(value) and _no_utc_instant(value):
            raise ValueError(f"{value[:40]!r} falls outside the years 0001 to 9999 in UTC: it has no UTC time")
        if _OTHER_OFFSET.search(value):
            raise ValueError("times must be in UTC (offset +00:00 or 'Z')")
        raise ValueError("times must be RFC 3339 in UTC: YYYY-MM-DDTHH:MM:SS[.ffffff]Z")
    return value


def _utc_only(value: datetime) -> datetime:
    if value.utcoffset() != timedelta(0):
        raise ValueError("times must be in UTC (offset +00:00 or 'Z')")
    return value


def _integral(value: Any) -> Any:
    """JSON has one number type: 2.0 is the integer 2 (as JSON Schema's ``integer`` says); 2.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


PartyCode = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2}$", json_schema_extra={"enum": sorted(ISO_ALPHA2)}),
    AfterValidator(_iso_alpha2),
]
UtcDatetime = Annotated[
    AwareDatetime,
    # not strict: past the check above only RFC 3339 text or a datetime arrives, and text must be parsed
    Field(strict=False),
    BeforeValidator(_utc_text),
    AfterValidator(_utc_only),
    Field(json_schema_extra={"pattern": UTC_TIME_PATTERN}),
]
PositiveInt = Annotated[int, Field(gt=0), BeforeValidator(_integral)]
NonNegativeInt = Annotated[int, Field(ge=0), BeforeValidator(_integral)]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]
AgreementId = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Z0-9][A-Z0-9\-]*$")]
#: A BCP 47 language tag (RFC 5646) of the common shape: a language, then an optional script and region
#: ("en", "ru", "zh-Hans", "en-GB", "zh-Hans-CN"), in their canonical case.
LANGUAGE_TAG = r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$"
LanguageTag = Annotated[str, Field(pattern=LANGUAGE_TAG, max_length=35)]
#: Free text in one or more languages, keyed by BCP 47 tag: {"en": "...", "ru": "..."} (the agreements are
#: authentic in two languages each, so a party may send the same text in both).
FreeText = Annotated[
    dict[LanguageTag, Annotated[str, Field(max_length=2000)]],
    Field(
        min_length=1,
        max_length=8,
        description="free text keyed by BCP 47 language tag, the same text in each language given",
        json_schema_extra={"propertyNames": {"pattern": LANGUAGE_TAG}},
    ),
]


class MessageType(StrEnum):
    PLANNED_LAUNCH = "planned_launch"
    AMENDMENT = "amendment"
    CANCELLATION = "cancellation"
    COMPLETED_LAUNCH = "completed_launch"
    ACKNOWLEDGEMENT = "acknowledgement"
    RECEIPT = "receipt"


class VehicleCategory(StrEnum):
    ICBM = "icbm"
    SLBM = "slbm"
    OTHER_BALLISTIC_MISSILE = "other_ballistic_missile"
    SPACE_LAUNCH_VEHICLE = "space_launch_vehicle"

    @property
    def is_ballistic(self) -> bool:
        return self is not VehicleCategory.SPACE_LAUNCH_VEHICLE


class GroupKind(StrEnum):
    """CN-RU 2009 art. 1: group launches less than 5 or less than 60 minutes apart."""

    SINGLE = "single"
    SIMULTANEOUS = "simultaneous"
    NEAR_SIMULTANEOUS = "near_simultaneous"


class CompassSector(StrEnum):
    N = "N"
    NE = "NE"
    E = "E"
    SE = "SE"
    S = "S"
    SW = "SW"
    W = "W"
    NW = "NW"


class Vehicle(_Strict):
    """What is launched: category, generic class, range and apogee, how many, grouped or not."""

    category: VehicleCategory
    generic_class: str = Field(min_length=1, max_length=120)
    range_km: PositiveFloat | None = None
    apogee_km: PositiveFloat | None = None
    launch_count: PositiveInt = 1
    group: GroupKind = GroupKind.SINGLE
    #: for a group: the planned interval between consecutive launches (CN-RU 2009 art. 1 limits it)
    launch_interval_minutes: PositiveFloat | None = None

    @model_validator(mode="after")
    def _group_needs_count(self) -> Vehicle:
        if self.group is not GroupKind.SINGLE and self.launch_count < 2:
            raise ValueError("a group launch needs launch_count of at least 2")
        if self.group is GroupKind.SINGLE and self.launch_count > 1:
            raise ValueError("several launches must say whether they are simultaneous or near_simultaneous")
        return self


class LaunchWindow(_Strict):
    """The planned launch window, UTC; ``end`` strictly after ``start``."""

    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _ordered(self) -> LaunchWindow:
        if self.end <= self.start:
            raise ValueError("window end must be after window start")
        return self

    @property
    def length(self) -> timedelta:
        return self.end - self.start


class Direction(_Strict):
    """Planned direction of flight: an azimuth in degrees or a compass sector, one of the two."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["azimuth_deg"], "properties": {"azimuth_deg": {"type": "number"}}},
                {"required": ["sector"], "properties": {"sector": {"type": "string"}}},
            ]
        }
    )

    azimuth_deg: Annotated[float, Field(ge=0.0, lt=360.0)] | None = None
    sector: CompassSector | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Direction:
        if (self.azimuth_deg is None) == (self.sector is None):
            raise ValueError("give exactly one of azimuth_deg or sector")
        return self


class Orbit(_Strict):
    """Planned orbit of a space launch."""

    inclination_deg: Annotated[float, Field(ge=0.0, le=180.0)]
    perigee_km: NonNegativeFloat
    apogee_km: NonNegativeFloat

    @model_validator(mode="after")
    def _apogee_above_perigee(self) -> Orbit:
        if self.apogee_km < self.perigee_km:
            raise ValueError("apogee_km must not be below perigee_km")
        return self


class Envelope(_Strict):
    """Fields every party-originated message carries."""

    contract: ContractVersion = CONTRACT_VERSION
    message_id: Identifier
    agreement: AgreementId
    sender: PartyCode
    recipients: list[PartyCode] = Field(min_length=1, max_length=256, json_schema_extra={"uniqueItems": True})
    launch_key: Identifier
    created_at: UtcDatetime
    confidential: bool = True

    @model_validator(mode="after")
    def _recipients_sane(self) -> Envelope:
        if len(set(self.recipients)) != len(self.recipients):
            raise ValueError("recipients must not repeat")
        if self.sender in self.recipients:
            raise ValueError("the sender cannot be one of its own recipients")
        return self


class PlannedLaunch(Envelope):
    """Notification of a planned launch."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("message_type"))

    message_type: Literal["planned_launch"] = "planned_launch"
    vehicle: Vehicle
    window: LaunchWindow
    launch_area: Area
    impact_areas: list[Area] = Field(default_factory=list, max_length=64)
    direction: Direction | None = None
    orbit: Orbit | None = None
    notes: FreeText | None = None


class Amendment(Envelope):
    """Change to a planned launch (a postponement is an amendment with a new window)."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("message_type"))

    message_type: Literal["amendment"] = "amendment"
    refers_to: Identifier
    window: LaunchWindow | None = None
    vehicle: Vehicle | None = None
    launch_area: Area | None = None
    impact_areas: list[Area] | None = Field(default=None, max_length=64)
    direction: Direction | None = None
    orbit: Orbit | None = None
    reason: FreeText | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> Amendment:
        changed = (self.window, self.vehicle, self.launch_area, self.impact_areas, self.direction, self.orbit)
        if all(v is None for v in changed):
            raise ValueError("an amendment must change at least one of window, vehicle, areas, direction, orbit")
        return self


class Cancellation(Envelope):
    """Cancellation of a planned launch."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("message_type"))

    message_type: Literal["cancellation"] = "cancellation"
    refers_to: Identifier
    reason: FreeText | None = None


class LaunchOutcome(StrEnum):
    LAUNCHED = "launched"
    NOT_LAUNCHED = "not_launched"


class CompletedLaunch(Envelope):
    """Report after the window: the launch took place (when, what, from where), or it did not take place."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("message_type"))

    message_type: Literal["completed_launch"] = "completed_launch"
    refers_to: Identifier | None = None
    outcome: LaunchOutcome = LaunchOutcome.LAUNCHED
    launched_at: UtcDatetime | None = None
    vehicle: Vehicle | None = None
    launch_area: Area | None = None
    impact_areas: list[Area] = Field(default_factory=list, max_length=64)
    direction: Direction | None = None
    orbit: Orbit | None = None
    reason: FreeText | None = None

    @model_validator(mode="after")
    def _outcome_fields(self) -> CompletedLaunch:
        if self.outcome is LaunchOutcome.LAUNCHED:
            if self.launched_at is None or self.vehicle is None or self.launch_area is None:
                raise ValueError("a launched report gives launched_at, vehicle and launch_area")
        elif self.refers_to is None or self.launched_at is not None:
            raise ValueError("a not_launched report refers_to its notification and gives no launched_at")
        return self


class Acknowledgement(Envelope):
    """A recipient's acknowledgement of a forwarded message; goes back to that message's sender."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("message_type"))

    message_type: Literal["acknowledgement"] = "acknowledgement"
    refers_to: Identifier


class ReceiptOutcome(StrEnum):
    FORWARDED = "forwarded"
    REJECTED = "rejected"
    ACKNOWLEDGEMENT_OVERDUE = "acknowledgement_overdue"
    REPORT_OVERDUE = "report_overdue"
    DUPLICATE = "duplicate"


class Reason(_Strict):
    """One reason a message was rejected: a code from the catalogue and a human sentence."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    message: str = Field(max_length=2000)
    field: str | None = None


class RecordRef(_Strict):
    """Where a record was read: topic, partition, offset; written ``topic:partition:offset``."""

    topic: str
    partition: NonNegativeInt
    offset: NonNegativeInt

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        """The reference written as ``topic:partition:offset`` (topic names may hold no colon)."""
        topic, partition, offset = text.rsplit(":", 2)
        return cls(topic=topic, partition=int(partition), offset=int(offset))


class Receipt(_Strict):
    """The relay's own signed statement about a message: forwarded, rejected, or overdue."""

    model_config = ConfigDict(json_schema_extra=require_discriminator("message_type"))

    contract: ContractVersion = CONTRACT_VERSION
    message_type: Literal["receipt"] = "receipt"
    message_id: Identifier
    issued_by: Identifier
    recipient: PartyCode
    outcome: ReceiptOutcome
    created_at: UtcDatetime
    refers_to: Identifier | None = None
    agreement: AgreementId | None = None
    launch_key: Identifier | None = None
    forwarded_to: list[PartyCode] = Field(default_factory=list)
    reasons: list[Reason] = Field(default_factory=list)
    #: on a forwarded receipt: what the agreement flags without refusing (e.g. a launch outside its window)
    warnings: list[Reason] = Field(default_factory=list)
    source: RecordRef | None = None


PartyMessage = PlannedLaunch | Amendment | Cancellation | CompletedLaunch | Acknowledgement
Message = Annotated[PartyMessage | Receipt, Field(discriminator="message_type")]

__all__ = [
    "CONTRACT_VERSION",
    "Acknowledgement",
    "AgreementId",
    "Amendment",
    "Cancellation",
    "CompassSector",
    "CompletedLaunch",
    "ContractVersion",
    "Direction",
    "Envelope",
    "GroupKind",
    "Identifier",
    "LanguageTag",
    "LaunchOutcome",
    "LaunchWindow",
    "Message",
    "MessageType",
    "Orbit",
    "PartyCode",
    "PartyMessage",
    "PlannedLaunch",
    "Reason",
    "Receipt",
    "ReceiptOutcome",
    "RecordRef",
    "UtcDatetime",
    "Vehicle",
    "VehicleCategory",
]
