"""One settings object, read once at the edge: environment (``LAUNCHRELAY_*``) first, then the
``[settings]`` table of the config file (``LAUNCHRELAY_CONFIG``, default ``launchrelay.toml``), then defaults.

Each field's environment name is ``LAUNCHRELAY_`` + its name in capitals; in the file, its name as is.
"""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)


def default_cache_dir() -> Path:
    """Where fetched jars and schemas are kept: ``$LAUNCHRELAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/launchrelay``,
    else ``~/.cache/launchrelay`` (for code that runs without a Settings object, such as a test fixture)."""
    env = os.environ.get("LAUNCHRELAY_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "launchrelay"


def jvm_options() -> list[str]:
    """More options for each JVM this project starts for development and tests (the local brokers, the mirrors):
    ``$LAUNCHRELAY_JVM_OPTIONS``, split as a shell would (read here, as those are started without a Settings
    object). The test suite sets ``-XX:TieredStopAtLevel=1``: a broker's start then takes 1.9 s of CPU instead
    of 3.4 (the JIT's second tier costs more than it saves in a JVM that lives a minute, on two shared cores)."""
    return shlex.split(os.environ.get("LAUNCHRELAY_JVM_OPTIONS", ""))


def docker_host() -> str:
    """The Docker daemon's address, as Docker's own ``DOCKER_HOST`` gives it (default: the local socket)."""
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def child_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment for a launchrelay process started by this one: this process's own, without its
    ``LAUNCHRELAY_*`` settings, plus ``settings`` (so the child's settings are exactly those given)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LAUNCHRELAY_")}
    return inherited | dict(settings)


#: How log lines are written: JSON unless on a terminal (auto), always JSON, or readable console lines.
LogFormat = Literal["auto", "json", "console"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)]
SecurityProtocol = Annotated[Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)]
SaslMechanism = Annotated[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], BeforeValidator(_upper)]


class SettingsError(ValueError):
    """A setting's value is not one it accepts; ``str()`` is one line naming where it was set."""


def explain(exc: ValidationError, config: Path) -> str:
    """One line for every bad value: the variable (or the config file's key) that set it, and what is accepted."""
    parts = []
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "?"
        env = f"LAUNCHRELAY_{name.upper()}"
        where = f"{env}={os.environ[env]!r}" if env in os.environ else f"{name} in [settings] of {config}"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


class Settings(BaseSettings):
    """Process settings. Agreements and parties live in the TOML file named by ``config``."""

    # An empty variable means "not set" (compose files write VAR: "" to leave one at its default).
    model_config = SettingsConfigDict(
        env_prefix="LAUNCHRELAY_", extra="ignore", pyproject_toml_table_header=("settings",), env_ignore_empty=True
    )

    @classmethod
    def load(cls) -> Settings:
        """The settings of this process, or :class:`SettingsError` with one line saying what is wrong."""
        config = Path(os.environ.get("LAUNCHRELAY_CONFIG") or "launchrelay.toml")
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(explain(exc, config)) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config} is not valid TOML: {exc}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config = Path(os.environ.get("LAUNCHRELAY_CONFIG") or "launchrelay.toml")
        # A missing file reads as empty; errors in it surface when the config is loaded.
        return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls, toml_file=config))

    bootstrap_servers: str | None = Field(
        default=None, description="Kafka to use as is; when unset, a local broker is started"
    )
    config: Path = Field(default=Path("launchrelay.toml"), description="parties and agreements (TOML)")
    data_dir: Path = Field(default=Path(".launchrelay"), description="local broker data, ledgers, demo keys")
    cache_dir: Path = Field(
        default_factory=default_cache_dir, description="Kafka jar cache (default ~/.cache/launchrelay)"
    )
    use_docker: bool = Field(default=True, description="start a broker with Docker when a daemon answers (0: never)")
    broker_port: int = Field(default=9092, ge=1, le=65535, description="the local broker's port on 127.0.0.1")
    controller_port: int = Field(default=9093, ge=1, le=65535, description="the local broker's controller port")
    broker_heap_mb: int = Field(default=512, ge=256, le=4096, description="the local broker's Java heap, MiB")
    relay_key: Path | None = Field(default=None, description="the relay's Ed25519 signing key (PKCS#8 PEM)")
    relay_key_id: str = Field(default="relay", description="key id under which counterparts know the relay's key")
    relay_id: str = Field(default_factory=socket.gethostname, description="names this instance in receipts and logs")
    operator_key: Path | None = Field(
        default=None, description="an operator's Ed25519 signing key (PKCS#8 PEM): redrives are signed with it"
    )
    operator_key_id: str = Field(
        default="operator", description="key id under which [relay] operator_keys registers the operator's key"
    )
    operator_name: str = Field(
        default_factory=getpass.getuser, description="who redrives: named in the signed mark, events, ledger, logs"
    )
    relay_batch: int = Field(default=200, ge=1, le=10000, description="records per partition per transaction")
    relay_fetch_wait_ms: int = Field(
        default=10, ge=0, le=500, description="how long the broker may hold the relay's fetch for more data"
    )
    relay_forget_every_s: float = Field(
        default=600.0, gt=0, le=86400, description="how often the relay forgets ids past [relay] remember_for"
    )
    record_attempts: int = Field(
        default=3, ge=1, le=100, description="tries per record (relay) or status event (tracker) before it is set aside"
    )
    stall_after_s: float = Field(
        default=30.0, gt=0, le=3600, description="a partition waiting this long without progress fails /readyz"
    )
    ledger: Path | None = Field(default=None, description="tracker ledger (SQLite); default DATA_DIR/ledger.sqlite")
    tracker_id: str = Field(default_factory=socket.gethostname, description="names the tracker in receipts and logs")
    tracker_tick_s: float = Field(default=0.5, gt=0, le=60, description="how often deadlines are checked")
    metrics_port: int | None = Field(default=None, ge=0, le=65535, description="/metrics /healthz /readyz; unset: off")
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in containers")
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA the brokers' certificates are checked against (e.g. Strimzi's cluster CA)"
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    kafka_sasl_username: str | None = Field(default=None, description="the SASL user")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="never logged or printed")
    console_host: str = Field(default="127.0.0.1", description="where the web console listens (0.0.0.0 in containers)")
    console_port: int = Field(default=8080, ge=1, le=65535, description="the web console's port")
    console_users: Path | None = Field(
        default=None, description="console accounts (argon2 hashes); default DATA_DIR/console-users.toml"
    )
    console_tls_cert: Path | None = Field(default=None, description="PEM certificate: the console serves HTTPS")
    console_tls_key: Path | None = Field(default=None, description="the certificate's PEM private key")
    console_behind_tls: bool = Field(
        default=False, description="a TLS proxy fronts the console: its session cookie is marked Secure"
    )
    console_services: str | None = Field(
        default=None, description="for the health page: NAME=URL,... of each service's ops endpoint"
    )
    console_session_key: SecretStr | None = Field(
        default=None, description="signs session cookies; unset: a new key per start (everyone signs in again)"
    )
    console_trusted_proxies: str = Field(
        default="127.0.0.1",
        description="proxies whose X-Forwarded-For names the client (IPs or networks, comma-separated; the TLS "
        "ingress in front of the console): the sign-in brake counts by the client's address, not the proxy's",
    )
    console_session_lifetime_s: float = Field(
        default=12 * 3600.0, gt=0, description="a console session ends this long after sign-in"
    )
    console_session_idle_s: float = Field(
        default=30 * 60.0, gt=0, description="a console session ends after this long without a request"
    )
    log_level: LogLevel = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: LogFormat = Field(default="auto", description="auto (JSON unless on a terminal), json or console")

    def bootstrap(self) -> str:
        """The broker services connect to: the configured one, else the local broker's port."""
        return self.bootstrap_servers or f"127.0.0.1:{self.broker_port}"

    def ledger_path(self) -> Path:
        return self.ledger or self.data_dir / "ledger.sqlite"

    def console_users_path(self) -> Path:
        return self.console_users or self.data_dir / "console-users.toml"

    def kafka_options(self) -> dict[str, Any]:
        """Connection options every Kafka client of this process gets (security, SASL)."""
        opts: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            import ssl

            cafile = str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
            opts["ssl_context"] = ssl.create_default_context(cafile=cafile)
        if self.kafka_sasl_mechanism:
            opts["sasl_mechanism"] = self.kafka_sasl_mechanism
            opts["sasl_plain_username"] = self.kafka_sasl_username
            opts["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        return opts
