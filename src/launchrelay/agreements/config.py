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
import tomllib
from datetime import timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    ValidationError,
    field_validator,
    model_validator,
)

from launchrelay.contract.messages import AgreementId, Identifier, PartyCode, VehicleCategory
from launchrelay.errors import ConfigError
from launchrelay.topics import DEFAULT_PREFIX


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topology(StrEnum):
    """How recipients are chosen: the other party, or any of the other subscribers."""

    BILATERAL = "bilateral"
    MULTILATERAL = "multilateral"


class RetransmitPolicy(_Config):
    """Re-send a forwarded notification every ``every`` until acknowledged, at most ``max_attempts`` times."""

    every: timedelta
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


class Agreement(_Config):
    """One agreement: who takes part, what it covers, and its time and distance rules."""

    id: AgreementId
    title: str
    parties: list[PartyCode] = Field(min_length=2)
    topology: Topology = Topology.BILATERAL
    categories: list[VehicleCategory] = Field(min_length=1)
    min_ballistic_range_km: PositiveFloat | None = None
    min_lead: timedelta | None = None
    max_lead: timedelta | None = None
    max_window: timedelta | None = None
    ack_deadline: timedelta = timedelta(hours=1)
    retransmit: RetransmitPolicy | None = None
    geometry: GeometryRules | None = None
    sources: list[str] = Field(default_factory=list)

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
        return self


class Party(_Config):
    """A government party: its code, name and the Ed25519 public keys it signs with."""

    code: PartyCode
    name: str
    keys: dict[Identifier, str] = Field(
        default_factory=dict, description="key id -> raw 32-byte Ed25519 public key, base64"
    )

    @field_validator("keys")
    @classmethod
    def _keys_are_ed25519(cls, keys: dict[str, str]) -> dict[str, str]:
        for kid, b64 in keys.items():
            try:
                raw = base64.b64decode(b64, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"key {kid}: not base64") from exc
            if len(raw) != 32:
                raise ValueError(f"key {kid}: an Ed25519 public key is 32 raw bytes, this is {len(raw)}")
        return keys


class RelayConfig(_Config):
    topic_prefix: str = DEFAULT_PREFIX
    presets: list[AgreementId] = Field(default_factory=list)
    max_message_bytes: int = Field(default=1024 * 1024, gt=0)
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class Deployment(_Config):
    """Everything loaded from one config file."""

    relay: RelayConfig = RelayConfig()
    #: process settings (see launchrelay.settings); read there, not here
    settings: dict[str, Any] = Field(default_factory=dict)
    parties: dict[PartyCode, Party]
    agreements: dict[AgreementId, Agreement]

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
            missing = [p for p in agreement.parties if p not in self.parties]
            if missing:
                raise ValueError(f"agreement {agreement_id} names parties {missing} that have no [parties.XX] entry")
        return self

    def agreement(self, agreement_id: str) -> Agreement | None:
        return self.agreements.get(agreement_id)


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


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_config(data: dict[str, Any], *, base: Path | None = None, origin: str = "<config>") -> Deployment:
    """Validate config data (already parsed from TOML) into a Deployment."""
    presets = _preset_files()
    relay = data.get("relay", {})
    wanted = relay.get("presets", []) if isinstance(relay, dict) else []
    agreements: dict[str, Any] = {}
    for preset_id in wanted:
        if preset_id not in presets:
            raise ConfigError(f"{origin}: relay.presets names {preset_id!r}; shipped presets: {sorted(presets)}")
        agreements[preset_id] = {"id": preset_id, **presets[preset_id]}
    for agreement_id, table in (data.get("agreements") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: [agreements.{agreement_id}] must be a table")
        table = _resolve_boundary(table, base)
        agreements[agreement_id] = _deep_merge(agreements.get(agreement_id, {"id": agreement_id}), table)
    try:
        return Deployment.model_validate({**data, "agreements": agreements})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from exc


def load_config(path: Path) -> Deployment:
    """Load and validate a TOML config file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(data, base=path.parent, origin=str(path))
