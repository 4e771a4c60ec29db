"""The onboard daemon's configuration (configs/onboard/*.toml), validated into typed settings.

Every error names the file and the key (``broker.url: ...``). Secrets may be given inline (tests, a laptop) or,
as on the aircraft, in files readable only by the daemon's user (``password_file``); the file is read here, at
the edge, so the core never touches the file system for them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Self

from pydantic import Field, ValidationError, field_validator, model_validator

from flightctl.config import StrictModel, beside, names_a_file, read_secret, read_toml, validation_problems
from flightctl.errors import ConfigError, TransportError
from flightctl.link.transport import transport_for_url
from flightctl.mqtt.contract import DRONE_ID_PATTERN
from flightctl.mqtt.endpoint import BrokerEndpoint, checked_broker_url
from flightctl.vehicle.remote_id_settings import RemoteIdSettings


class BrokerSection(StrictModel):
    url: str
    # More brokers of an active pair (or more): independent brokers with the same accounts, each with its own
    # sessions. The daemon is connected to one at a time, and on losing it tries the next in turn; dispatch
    # sends each order to all and relays read from all, so whichever the drone is on, nothing is missed.
    peer_urls: list[str] = Field(default_factory=list, max_length=8)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    password_file: Path | None = None
    ca_file: Path | None = None
    keepalive_s: int = Field(default=30, ge=5, le=600)
    # How long the broker keeps our session (and the QoS 1 orders sent to it) while we are away.
    session_expiry_s: int = Field(default=7 * 86400, ge=60)
    # The last will waits this long for us to come back: a cellular drop of a few seconds is not "offline".
    will_delay_s: int = Field(default=30, ge=0, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)
    publish_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return checked_broker_url(url)

    @field_validator("peer_urls")
    @classmethod
    def _peer_urls(cls, urls: list[str]) -> list[str]:
        return [checked_broker_url(url) for url in urls]

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s is above reconnect_max_s")
        if self.will_delay_s > self.session_expiry_s:
            raise ValueError("will_delay_s is above session_expiry_s (the broker sends the will when either ends)")
        return self


class AutopilotSection(StrictModel):
    url: str = Field(description="udpin:H:P, udpout:H:P, tcp:H:P, serial:DEV:BAUD")
    signing_key: Path | None = None
    heartbeat_timeout_s: float = Field(default=30, gt=0, le=3600)
    link_lost_timeout_s: float = Field(default=300, gt=0, le=86_400)


class TelemetrySection(StrictModel):
    rate_hz: float = Field(default=1.0, gt=0, le=10)
    queue: int = Field(default=20, ge=1, le=10_000)
    expiry_s: int = Field(default=10, ge=1, le=3600)

    @field_validator("rate_hz")
    @classmethod
    def _finite(cls, rate: float) -> float:
        if not math.isfinite(rate):
            raise ValueError("not a finite rate")
        return rate


class DaemonConfig(StrictModel):
    drone_id: str = Field(pattern=DRONE_ID_PATTERN)
    site: str
    profile: str
    journal: Path
    # The island legs this aircraft flies (a fixed-wing's config): shipped names (configs/legs/) or files. An
    # order names one by its file's name. Each is loaded and planned in calm air at start-up, so a mistake
    # stops the daemon there, not the aircraft at the runway.
    legs: list[str] = Field(default_factory=list, max_length=100)
    # How far from the depot the vehicle may stand and still take an order (GPS on the pad wanders).
    depot_radius_m: float = Field(default=30, gt=0, le=1000)
    # Answers to unwanted orders and commands (rejections, repeats, status), at most this many a minute after a
    # burst of as many: a flood must not fill the journal or the uplink (mqtt.answer_budget).
    unwanted_answers_per_minute: int = Field(default=60, ge=1, le=6000)
    autopilot: AutopilotSection
    broker: BrokerSection
    telemetry: TelemetrySection = Field(default_factory=TelemetrySection)
    # The operator's part of Remote ID, sent to the autopilot for as long as the daemon runs. Checked here, so a
    # mistyped operator ID stops the daemon at start-up, not the aircraft at the runway.
    remote_id: RemoteIdSettings | None = None

    def broker_endpoints(self) -> list[BrokerEndpoint]:
        """The broker first, then its peers: the order the daemon tries them in."""
        broker = self.broker
        password = broker.password
        if broker.password_file is not None:
            password = read_secret(broker.password_file, "broker.password_file")
        return [
            BrokerEndpoint.from_url(url, username=broker.username, password=password, ca_file=broker.ca_file)
            for url in (broker.url, *broker.peer_urls)
        ]


def load_daemon_config(path: Path) -> DaemonConfig:
    """The daemon's config: TOML, like every service config (see ``flightctl.config`` for why)."""
    if path.suffix != ".toml":
        raise ConfigError(f"{path}: a daemon config is a .toml file (services are configured in TOML)")
    document = read_toml(path)
    try:
        config = DaemonConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
    config = _relative_to(config, path)
    if config.broker.ca_file is not None and not config.broker.ca_file.is_file():
        raise ConfigError(f"{path}: broker.ca_file: {config.broker.ca_file} is not a file")
    try:
        config.broker_endpoints()  # a password file that cannot be read fails now, not at the first connection
        transport_for_url(config.autopilot.url)  # built, not opened: an unknown scheme is not retried forever
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TransportError as exc:
        raise ConfigError(f"{path}: autopilot.url: {exc}") from None
    return config


def load_remote_id(path: Path) -> RemoteIdSettings:
    """The ``[remote_id]`` section of a TOML file (the onboard daemon's config holds one), for the commands that
    fly or judge a flight without the daemon (``deliver --remote-id``, ``leg check --remote-id``)."""
    section = read_toml(path).get("remote_id")
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: no [remote_id] section (the operator's Remote ID settings; README, 'Remote ID')")
    try:
        return RemoteIdSettings.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None


def _relative_to(config: DaemonConfig, config_file: Path) -> DaemonConfig:
    """Relative paths in a config file are relative to that file, not to wherever the daemon was started."""

    def resolve_named(name_or_path: str) -> str:
        """A site or profile given as a file (not a shipped name) is relative to the config too."""
        return str(beside(config_file, Path(name_or_path))) if names_a_file(name_or_path) else name_or_path

    broker, autopilot = config.broker, config.autopilot
    return config.model_copy(
        update={
            "site": resolve_named(config.site),
            "profile": resolve_named(config.profile),
            "legs": [resolve_named(leg) for leg in config.legs],
            "journal": beside(config_file, config.journal),
            "broker": broker.model_copy(
                update={
                    "password_file": beside(config_file, broker.password_file),
                    "ca_file": beside(config_file, broker.ca_file),
                }
            ),
            "autopilot": autopilot.model_copy(update={"signing_key": beside(config_file, autopilot.signing_key)}),
        }
    )
