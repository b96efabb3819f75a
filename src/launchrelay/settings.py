"""One settings object, read once at the edge from the environment (prefix ``LAUNCHRELAY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from launchrelay.ops.logging import LogFormat


class Settings(BaseSettings):
    """Process settings. Agreements and parties live in the TOML file named by ``config``."""

    model_config = SettingsConfigDict(env_prefix="LAUNCHRELAY_", extra="ignore")

    bootstrap_servers: str | None = Field(
        default=None, description="Kafka to use as is; when unset, a local broker is started"
    )
    config: Path = Field(default=Path("launchrelay.toml"), description="parties and agreements (TOML)")
    data_dir: Path = Field(default=Path(".launchrelay"), description="local broker data, ledgers, demo keys")
    cache_dir: Path | None = Field(default=None, description="Kafka jar cache (default ~/.cache/launchrelay)")
    broker_port: int = Field(default=9092, ge=1, le=65535)
    controller_port: int = Field(default=9093, ge=1, le=65535)
    broker_heap_mb: int = Field(default=512, ge=256, le=4096)
    log_level: str = "INFO"
    log_format: LogFormat = "auto"
