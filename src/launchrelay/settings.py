"""One settings object, read once at the edge from the environment (prefix ``LAUNCHRELAY_``)."""

from __future__ import annotations

import socket
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
    relay_key: Path | None = Field(default=None, description="the relay's Ed25519 signing key (PKCS#8 PEM)")
    relay_key_id: str = Field(default="relay", description="key id under which counterparts know the relay's key")
    relay_id: str = Field(default_factory=socket.gethostname, description="names this instance in receipts and logs")
    relay_batch: int = Field(default=200, ge=1, le=10000, description="records per partition per transaction")
    ledger: Path | None = Field(default=None, description="tracker ledger (SQLite); default DATA_DIR/ledger.sqlite")
    tracker_id: str = Field(default_factory=socket.gethostname, description="names the tracker in receipts and logs")
    tracker_tick_s: float = Field(default=0.5, gt=0, le=60, description="how often deadlines are checked")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="/metrics /healthz /readyz; unset: off")
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in containers")
    log_level: str = "INFO"
    log_format: LogFormat = "auto"

    def bootstrap(self) -> str:
        """The broker services connect to: the configured one, else the local broker's port."""
        return self.bootstrap_servers or f"127.0.0.1:{self.broker_port}"

    def ledger_path(self) -> Path:
        return self.ledger or self.data_dir / "ledger.sqlite"
