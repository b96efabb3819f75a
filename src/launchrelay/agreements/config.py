"""The configuration file: parties (with their public keys) and agreements.

Format: TOML. Presets for the shipped agreements live in ``presets/`` and are
enabled by id; a deployment may define its own agreements or override a
preset's values. Everything is validated once at load; errors name the file
and the offending key.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tomllib
from datetime import date, datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from launchrelay.contract.explain import explain
from launchrelay.contract.messages import AgreementId, CompassSector, GroupKind, Identifier, PartyCode, VehicleCategory
from launchrelay.contract.versions import DEFAULT_READS, V1, VERSIONS
from launchrelay.errors import ConfigError
from launchrelay.topics import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PREFIX, SizeLimits, Topics, size_limits

AreaKind = Literal["polygon", "circle", "ocean_quadrant", "water_body"]


#: ISO 8601 durations in weeks, days, hours, minutes and seconds (no years or months: their length varies)
_ISO_DURATION = re.compile(r"^-?P(?!$)(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def _iso_duration(value: Any) -> Any:
    """A duration in the config is ISO 8601 text: a bare number would leave its unit to a guess."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and _ISO_DURATION.match(value):
        return value
    raise ValueError(f'durations are ISO 8601 text, e.g. "PT30S", "PT15M", "PT24H", "P30D" (got {value!r})')


#: A length of time, written as ISO 8601 in the config (``"PT1H"``), printed the same way (:func:`iso_duration`).
Duration = Annotated[timedelta, BeforeValidator(_iso_duration)]


def iso_duration(value: timedelta) -> str:
    """``value`` as ISO 8601 (``PT1H``, ``P30D``, ``P1DT6H``, ``PT0.5S``), as the config writes it."""
    total = value.total_seconds()
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n:g}{u}" for n, u in ((hours, "H"), (minutes, "M"), (round(seconds, 6), "S")) if n)
    text = (f"{days:g}D" if days else "") + (f"T{time}" if time else "")
    return f"{sign}P{text or 'T0S'}"


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topology(StrEnum):
    """How recipients are chosen: the other party, or any of the other subscribers."""

    BILATERAL = "bilateral"
    MULTILATERAL = "multilateral"


class RetransmitPolicy(_Config):
    """Re-send a forwarded notification every ``every`` until acknowledged, at most ``max_attempts`` times."""

    every: Duration
    max_attempts: NonNegativeInt = 0


class GeometryRules(_Config):
    """Distances from a boundary line (IN-PK 2005 art. 5-6), measured geodesically on WGS-84."""

    boundary: dict[str, Any] | None = Field(
        default=None,
        description="GeoJSON LineString, MultiLineString, Feature or collection; a deployment must give it",
    )
    launch_site_min_km: PositiveFloat = 40.0
    impact_area_min_km: PositiveFloat = 70.0
    trajectory_min_km: PositiveFloat = 40.0
    #: which side of the boundary, as its line is drawn (walking from its first point to its last), each
    #: party's territory lies on; a launch site and impact areas must be on the sender's own side (art. 5)
    party_sides: dict[PartyCode, Literal["left", "right"]] = Field(default_factory=dict)


class Agreement(_Config):
    """One agreement: who takes part, what it covers, and its time, content and distance rules."""

    id: AgreementId
    title: str
    parties: list[PartyCode] = Field(min_length=2)
    topology: Topology = Topology.BILATERAL
    #: the dates it is in force (a message received outside them is AGREEMENT_NOT_IN_FORCE)
    in_force_from: date | None = None
    in_force_until: date | None = None
    categories: list[VehicleCategory] = Field(min_length=1)
    min_ballistic_range_km: PositiveFloat | None = None
    #: per sender, the compass sectors its ballistic missiles must head in to fall under the agreement
    ballistic_directions: dict[PartyCode, list[CompassSector]] = Field(default_factory=dict)
    min_lead: Duration | None = None
    max_lead: Duration | None = None
    #: what ``max_lead`` is measured to: the window's start, or its end (no launch date it names is further)
    max_lead_to: Literal["start", "end"] = "start"
    max_window: Duration | None = None
    #: how long a notice stays valid from its stated launch date (US-USSR 1988: four days)
    validity: Duration | None = None
    #: which amendments must meet the lead time again: ``always`` (the default) one that changes the window;
    #: ``outside_validity`` one that moves the window out of the notice's validity (US-USSR 1988);
    #: ``any_change`` every amendment, whatever it changes (the window then holds to the lead time as received)
    amendment_lead: Literal["always", "outside_validity", "any_change"] = "always"
    #: a ballistic-missile notice names at least one impact area (US-USSR 1988 art. II, IN-PK 2005 art. 5;
    #: the Hague Code's content has none)
    requires_impact_area: bool = True
    #: area kinds an impact area may be (empty: any)
    impact_area_kinds: list[AreaKind] = Field(default_factory=list)
    #: categories whose launch area may be an ocean quadrant or a named sea (None: any category)
    sea_launch_categories: list[VehicleCategory] | None = None
    requires_direction: bool = False
    #: the agreement makes its notifications confidential: a message saying ``confidential: false`` is refused
    confidential: bool = False
    #: group launches: the longest interval between consecutive launches each kind allows
    group_limits: dict[GroupKind, Duration] = Field(default_factory=dict)
    #: a report of the completed (or not) launch is due this long after the window closes
    report_due: Duration | None = None
    #: a completed-launch report outside the notified window: forwarded with a warning on the sender's receipt
    #: (the report of what happened reaches the counterpart), or rejected
    report_outside_window: Literal["reject", "warn"] = "warn"
    ack_deadline: Duration = timedelta(hours=1)
    retransmit: RetransmitPolicy | None = None
    geometry: GeometryRules | None = None
    #: where each value comes from; an [I] marks a value that is an interpretation, not the text
    sources: list[str] = Field(default_factory=list)

    def in_force(self, on: datetime) -> bool:
        day = on.date()
        return (self.in_force_from is None or day >= self.in_force_from) and (
            self.in_force_until is None or day < self.in_force_until
        )

    def expires(self, start: datetime, end: datetime) -> datetime:
        """When a notice of this window stops mattering: the window's end, or its validity if later."""
        return max(end, start + self.validity) if self.validity else end

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        if len(set(self.parties)) != len(self.parties):
            raise ValueError("parties must not repeat")
        if self.topology is Topology.BILATERAL and len(self.parties) != 2:
            raise ValueError("a bilateral agreement has exactly two parties")
        if self.min_lead and self.max_lead and self.min_lead > self.max_lead:
            raise ValueError("min_lead is longer than max_lead")
        if self.ack_deadline <= timedelta(0):
            raise ValueError("ack_deadline must be positive")
        if self.retransmit and self.retransmit.every <= timedelta(0):
            raise ValueError("retransmit.every must be positive")
        if self.in_force_from and self.in_force_until and self.in_force_from >= self.in_force_until:
            raise ValueError("in_force_from must be before in_force_until")
        if self.amendment_lead == "outside_validity" and self.validity is None:
            raise ValueError("amendment_lead = 'outside_validity' needs a validity")
        return self


def _keys_are_ed25519(keys: dict[str, str]) -> dict[str, str]:
    for kid, b64 in keys.items():
        try:
            raw = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"key {kid}: not base64") from exc
        if len(raw) != 32:
            raise ValueError(f"key {kid}: an Ed25519 public key is 32 raw bytes, this is {len(raw)}")
    return keys


#: key id -> raw 32-byte Ed25519 public key, base64 (as `launchrelay keygen` prints it)
PublicKeys = Annotated[dict[Identifier, str], AfterValidator(_keys_are_ed25519)]


class Quota(_Config):
    """A party user's client quotas at the broker, in bytes per second (Kafka's ``producer_byte_rate`` ...).

    The broker throttles a client past its rate (it delays the client's requests), so one
    party's flood cannot take the broker's or the relay's time from the others."""

    #: what the party may write to its out topic; notices are kilobytes, so 1 MiB/s is thousands a second
    producer_byte_rate: int = Field(default=1024 * 1024, gt=0)
    #: what the party may read from its in topic; unset: not limited
    consumer_byte_rate: int | None = Field(default=None, gt=0)

    def items(self) -> dict[str, float]:
        """The quota keys and values as the broker names them (unset keys left out)."""
        return {k: float(v) for k, v in self.model_dump(exclude_none=True).items()}


class Party(_Config):
    """A government party: its code, name and the Ed25519 public keys it signs with."""

    code: PartyCode
    name: str
    keys: PublicKeys = Field(default_factory=dict, description="key id -> raw 32-byte Ed25519 public key, base64")
    #: this party's quotas; unset: ``[relay] party_quota``
    quota: Quota | None = None
    reads: list[str] = Field(
        default_factory=lambda: list(DEFAULT_READS),
        description="the contract versions this party's systems read; the relay forwards it nothing else",
    )

    @field_validator("reads")
    @classmethod
    def _known_versions(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in VERSIONS]
        if unknown:
            raise ValueError(f"unknown contract version(s) {unknown}: this release reads {list(VERSIONS)}")
        if V1 not in value:  # receipts and the relay's own messages are written in launchrelay/1
            raise ValueError(f"must include {V1}: the relay's receipts are written in it (see the README's "
                             "compatibility policy)")  # fmt: skip
        return value


class RelayConfig(_Config):
    topic_prefix: str = DEFAULT_PREFIX
    presets: list[AgreementId] = Field(default_factory=list)
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, gt=0)
    partitions: int = Field(default=3, ge=1)
    #: copies of each topic; unset: three where the cluster has three brokers or more (min.insync.replicas 2),
    #: else one per broker
    replication_factor: int | None = Field(default=None, ge=1)
    #: how far ahead of the broker's receipt a message's created_at may be (clocks disagree a little)
    created_at_skew: Duration = timedelta(minutes=5)
    #: how long the relay remembers a message id past the time it can matter (its receipt, or the end of
    #: its notice's window and validity); a message created longer ago than this is refused
    #: (CREATED_AT_TOO_OLD), so a replay of a forgotten message can never be forwarded twice
    remember_for: Duration = Field(default=timedelta(days=30), gt=timedelta(0))
    #: the public halves of the relay's signing keys: counterparts verify receipts and overdue notices
    #: with these (published in the AsyncAPI document); the relay checks its private key against them
    keys: PublicKeys = Field(default_factory=dict)
    #: every party's client quotas at the broker, unless its own entry sets others
    party_quota: Quota = Quota()
    #: the public halves of the watch's operator keys: a redrive is honoured only when signed by one of
    #: them (`launchrelay redrive` signs it); the key id names the operator in events, the ledger and logs
    operator_keys: PublicKeys = Field(default_factory=dict)
    #: keep the decision log (docs/audit-log.md): each decision a leaf on the log topic, in its own transaction,
    #: and a signed tree head every ``log_head_every`` leaves or ``log_head_interval``, whichever comes first
    decision_log: bool = False
    log_head_every: int = Field(default=1000, ge=1)
    log_head_interval: Duration = Field(default=timedelta(seconds=10), gt=timedelta(0))


class Centre(_Config):
    """Two-centre mode: this deployment is one party's national centre (its own cluster, relay and tracker)."""

    #: the party this centre serves; every other party is reached over a link (``[links.XX]``)
    party: PartyCode


class Link(_Config):
    """A link to a counterpart's centre: what this centre's mirror needs to read the counterpart's outgoing link
    topic (the address and the read-only credential the counterpart issued), and the keys its relay signs with."""

    #: the counterpart centre's Kafka, as its mirror reaches it
    bootstrap: str = Field(min_length=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    #: a file holding the password the counterpart issued (read when the mirror starts; never in this file)
    sasl_password_file: Path | None = None
    #: the PEM CA that the counterpart's brokers' certificates are checked against
    ssl_cafile: Path | None = None
    #: the counterpart relay's public keys: its receipts and link beacons are verified with these
    relay_keys: PublicKeys = Field(default_factory=dict)
    #: a link not heard from (its relay's beacons) for this long is reported silent (readiness, log, metric)
    silent_after: Duration = timedelta(minutes=2)


#: Where an agreement's value comes from, as `launchrelay config check` prints it.
Origin = Literal["preset", "override", "config", "default"]


class Deployment(_Config):
    """Everything loaded from one config file."""

    relay: RelayConfig = RelayConfig()
    #: set: two-centre mode, this deployment serves ``centre.party``; unset: one shared cluster for every party
    centre: Centre | None = None
    #: the counterpart centres this one is linked to, by the party each serves
    links: dict[PartyCode, Link] = Field(default_factory=dict)
    #: process settings (see launchrelay.settings); read there, not here
    settings: dict[str, Any] = Field(default_factory=dict)
    parties: dict[PartyCode, Party]
    agreements: dict[AgreementId, Agreement]
    #: per agreement, per key (``geometry.`` keys under their section): preset or config (see :meth:`origin`)
    _origins: dict[str, dict[str, Origin]] = PrivateAttr(default_factory=dict)

    @field_validator("parties", mode="before")
    @classmethod
    def _party_codes_from_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"code": k, **v} if isinstance(v, dict) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _parties_known(self) -> Deployment:
        for party_code, party in self.parties.items():
            if party.code != party_code:
                raise ValueError(f"[parties.{party_code}] has code {party.code!r}")
        for agreement_id, agreement in self.agreements.items():
            if agreement.id != agreement_id:
                raise ValueError(f"[agreements.{agreement_id}] has id {agreement.id!r}")
            if agreement.geometry is not None and agreement.geometry.boundary is None:
                raise ValueError(
                    f"agreement {agreement_id} measures distances from a boundary: set "
                    f"[agreements.{agreement_id}.geometry] boundary_file = 'your-boundary.geojson'"
                )
            if agreement.geometry is not None and set(agreement.geometry.party_sides) != set(agreement.parties):
                raise ValueError(
                    f"agreement {agreement_id}: say on which side of the boundary line (as drawn) each party lies: "
                    f"[agreements.{agreement_id}.geometry] party_sides = "
                    + "{ "
                    + ", ".join(f'{p} = "{"left" if i == 0 else "right"}"' for i, p in enumerate(agreement.parties))
                    + " } (each party 'left' or 'right')"
                )
            missing = [p for p in agreement.parties if p not in self.parties]
            if missing:
                raise ValueError(f"agreement {agreement_id} names parties {missing} that have no [parties.XX] entry")
        return self

    @model_validator(mode="after")
    def _centre_and_links(self) -> Deployment:
        if self.centre is None:
            if self.links:
                raise ValueError("[links] need a [centre] party: the party this centre serves")
            return self
        here = self.centre.party
        if here not in self.parties:
            raise ValueError(f"[centre] party {here!r} has no [parties.{here}] entry")
        for code in self.links:
            if code == here:
                raise ValueError(f"[links.{code}] links the centre to itself")
            if code not in self.parties:
                raise ValueError(f"[links.{code}] has no [parties.{code}] entry (its public keys)")
        return self

    def agreement(self, agreement_id: str) -> Agreement | None:
        return self.agreements.get(agreement_id)

    def origin(self, agreement_id: str, key: str) -> Origin:
        """Where ``key`` of an agreement (``geometry.x`` for a key of its geometry) comes from: its preset, the
        config overriding its preset, the config defining an agreement of its own, or the model's default."""
        return self._origins.get(agreement_id, {}).get(key, "default")

    @property
    def topics(self) -> Topics:
        """The topic names of this deployment (of this centre, in two-centre mode)."""
        here = self.centre.party if self.centre else None
        return Topics(self.relay.topic_prefix, here, frozenset(self.links))

    @property
    def limits(self) -> SizeLimits:
        """The size limits of every link of the chain, from ``[relay] max_message_bytes``."""
        return size_limits(self.relay.max_message_bytes)

    @property
    def local_parties(self) -> list[str]:
        """The parties whose systems connect to this deployment's own cluster (every party in hub mode)."""
        return [self.centre.party] if self.centre else sorted(self.parties)


def _preset_files() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in resources.files("launchrelay.agreements").joinpath("presets").iterdir():
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            for agreement_id, table in data.get("agreements", {}).items():
                out[agreement_id] = _resolve_boundary(table, base=None)
    return out


def load_presets() -> dict[str, Agreement]:
    """The shipped agreement presets, by id."""
    try:
        return {k: Agreement.model_validate({"id": k, **v}) for k, v in _preset_files().items()}
    except ValidationError as exc:  # a broken preset is a bug of ours; say which
        raise ConfigError(f"shipped preset invalid: {exc}") from exc


def _resolve_boundary(table: dict[str, Any], base: Path | None) -> dict[str, Any]:
    """Replace ``geometry.boundary_file`` with the parsed GeoJSON it names (relative to the config)."""
    geometry = table.get("geometry")
    if not isinstance(geometry, dict) or "boundary_file" not in geometry:
        return table
    geometry = dict(geometry)
    name = geometry.pop("boundary_file")
    if base is None:
        text = resources.files("launchrelay.agreements").joinpath("presets", name).read_text(encoding="utf-8")
    else:
        path = (base / name).resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"boundary file {path} cannot be read: {exc.strerror}") from exc
    try:
        geometry["boundary"] = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"boundary file {name} is not JSON: {exc}") from exc
    return {**table, "geometry": geometry}


def _override(preset: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """A preset agreement with the config's table laid over it. Each value the config gives replaces the preset's
    whole, a table too (``ballistic_directions = {}`` is no direction rule; a ``group_limits`` table names every
    limit there is). ``geometry`` is a section, not a value: its keys replace the preset's one by one (a deployment
    adds the boundary and sides to the preset's distances); an empty one removes the distance rules. An empty
    ``retransmit`` is no re-sending."""
    merged = {**preset, **table}
    geometry = table.get("geometry")
    if isinstance(geometry, dict) and geometry and isinstance(preset.get("geometry"), dict):
        merged["geometry"] = {**preset["geometry"], **geometry}
    for key in ("geometry", "retransmit"):
        if merged.get(key) == {}:
            merged[key] = None
    return merged


def _origins(preset: dict[str, Any] | None, table: dict[str, Any]) -> dict[str, Origin]:
    """Where each key of an agreement comes from (``geometry.`` keys under their section too)."""
    given: Origin = "config" if preset is None else "override"
    out: dict[str, Origin] = {}
    for source, data in (("preset", preset or {}), (given, table)):
        for key, value in data.items():
            out[key] = source  # type: ignore[assignment]
            if key == "geometry" and isinstance(value, dict):
                out.update({f"geometry.{k}": source for k in value})  # type: ignore[misc]
    out.pop("id", None)
    return out


def parse_config(data: dict[str, Any], *, base: Path | None = None, origin: str = "<config>") -> Deployment:
    """Validate config data (already parsed from TOML) into a Deployment."""
    presets = _preset_files()
    relay = data.get("relay", {})
    wanted = relay.get("presets", []) if isinstance(relay, dict) else []
    agreements: dict[str, Any] = {}
    origins: dict[str, dict[str, Origin]] = {}
    for preset_id in wanted:
        if preset_id not in presets:
            raise ConfigError(f"{origin}: relay.presets names {preset_id!r}; shipped presets: {sorted(presets)}")
        agreements[preset_id] = {"id": preset_id, **presets[preset_id]}
    for agreement_id, table in (data.get("agreements") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [agreements.{agreement_id}] must be a table")
        table = _resolve_boundary(table, base)
        agreements[agreement_id] = _override(agreements.get(agreement_id, {"id": agreement_id}), table)
        origins[agreement_id] = _origins(presets[agreement_id] if agreement_id in wanted else None, table)
    for preset_id in wanted:
        origins.setdefault(preset_id, _origins(presets[preset_id], {}))
    try:
        deployment = Deployment.model_validate({**data, "agreements": agreements})
    except ValidationError as exc:
        said = [explain(err, "the config") for err in exc.errors(include_url=False, include_input=False)]
        problems = "; ".join(f"{where}: {words}" if where else words for where, words in said)
        raise ConfigError(f"{origin}: {problems}") from exc
    deployment._origins = origins
    return deployment


def load_config(path: Path) -> Deployment:
    """Load and validate a TOML config file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, base=path.parent, origin=str(path))
