"""The status relay's configuration (configs/relay/*.toml), validated; every error names the key."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator

from flightctl.config import StrictModel, TimeZoneName, beside, read_secret, read_toml, validation_problems
from flightctl.errors import ConfigError
from flightctl.ground.broker_accounts import check_name
from flightctl.ground.logbook import LogbookGround
from flightctl.ground.registry import refuse_password_in_url
from flightctl.ground.tracking_words import load_words
from flightctl.mqtt.endpoint import BrokerEndpoint, checked_broker_url


class RelayBroker(StrictModel):
    url: str
    # The other brokers of an active pair: the relay reads every one of them at once (a drone is on whichever
    # it could reach), and the registry keeps each event once, whichever broker it came through.
    peer_urls: list[str] = Field(default_factory=list, max_length=8)
    username: str
    password_file: Path
    ca_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return checked_broker_url(url)

    @field_validator("peer_urls")
    @classmethod
    def _peer_urls(cls, urls: list[str]) -> list[str]:
        return [checked_broker_url(url) for url in urls]


class RelayHttp(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Proxies whose X-Forwarded-For is believed (the nginx in front); anyone else is the client themselves.
    trusted_proxies: list[str] = Field(default_factory=list)
    failed_lookups_per_minute: int = Field(default=20, ge=1, le=10_000)


class RelayOps(StrictModel):
    """The operators' view, on a listener of its own (never the customers' port, never behind their proxy)."""

    username: str
    password_file: Path
    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=1, le=65535)
    failed_logins_per_minute: int = Field(default=10, ge=1, le=1000)


class RelayTracking(StrictModel):
    """How the customers' page speaks: the sites' time zone, and the catalogue of its words."""

    timezone: TimeZoneName = "Europe/London"  # for orders dispatched without their site's zone
    words: Path | None = None  # a catalogue (configs/tracking/en-GB.toml is the default, and the model for one)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class RelayConfig(StrictModel):
    name: str
    # postgresql://user@host/db (the password from registry_password_file, PGPASSWORD or ~/.pgpass, never here)
    # or a SQLite file path.
    registry: str
    registry_password_file: Path | None = None
    # Unset: this relay reads every event (the registry keeps each once). Set: relays in this shared-subscription
    # group divide the events between them, which mosquitto 2.0 breaks across a broker restart (README, "Broker").
    share_group: str | None = None
    broker: RelayBroker
    http: RelayHttp = Field(default_factory=RelayHttp)
    ops: RelayOps | None = None
    tracking: RelayTracking = Field(default_factory=RelayTracking)
    # The operator's part of the flight logbook (AMC1 UAS.SPEC.050(1)(g)); without it records are kept with
    # those fields empty.
    logbook: LogbookGround | None = None

    def endpoints(self) -> list[BrokerEndpoint]:
        """Every broker the relay reads: ``broker.url`` and its peers."""
        password = read_secret(self.broker.password_file, "broker.password_file")
        return [
            BrokerEndpoint.from_url(url, username=self.broker.username, password=password, ca_file=self.broker.ca_file)
            for url in (self.broker.url, *self.broker.peer_urls)
        ]

    def ops_credentials(self) -> tuple[str, str] | None:
        if self.ops is None:
            return None
        return self.ops.username, read_secret(self.ops.password_file, "ops.password_file")

    def registry_password(self) -> str | None:
        if self.registry_password_file is None:
            return None
        return read_secret(self.registry_password_file, "registry_password_file")


def load_relay_config(path: Path) -> RelayConfig:
    try:
        config = _relative_to(RelayConfig.model_validate(read_toml(path)), path)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
    for key, value in (("name", config.name), ("share_group", config.share_group)):
        if value is None:
            continue
        try:
            check_name(value)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {key}: {exc}") from None
    try:
        config.endpoints()
        config.ops_credentials()
        config.registry_password()
        refuse_password_in_url(config.registry, "registry")
        _ops_apart(config)
        load_words(config.tracking.words)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def _relative_to(config: RelayConfig, config_file: Path) -> RelayConfig:
    """Relative paths in the config (secret files, a SQLite registry) are relative to the config file."""
    registry = config.registry
    if "://" not in registry:
        registry = str(beside(config_file, Path(registry)))
    ops = config.ops
    return config.model_copy(
        update={
            "registry": registry,
            "registry_password_file": beside(config_file, config.registry_password_file),
            "broker": config.broker.model_copy(
                update={
                    "password_file": beside(config_file, config.broker.password_file),
                    "ca_file": beside(config_file, config.broker.ca_file),
                }
            ),
            "ops": None
            if ops is None
            else ops.model_copy(update={"password_file": beside(config_file, ops.password_file)}),
            "tracking": config.tracking.model_copy(update={"words": beside(config_file, config.tracking.words)}),
        }
    )


def _ops_apart(config: RelayConfig) -> None:
    if config.ops is not None and (config.ops.host, config.ops.port) == (config.http.host, config.http.port):
        raise ConfigError("ops: the operators' view needs a listener of its own, not http's host and port")
