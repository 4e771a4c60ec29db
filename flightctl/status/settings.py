"""The onboard daemon's configuration (configs/onboard/*.toml or *.yaml), validated into typed settings.

Every error names the file and the key (``broker.url: ...``). Secrets may be given inline (tests, a laptop) or,
as on the aircraft, in files readable only by the daemon's user (``password_file``); the file is read here, at
the edge, so the core never touches the file system for them.
"""

from __future__ import annotations

import math
import re
import ssl
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flightctl.config import read_toml, validation_problems
from flightctl.errors import ConfigError, TransportError
from flightctl.link.transport import transport_for_url
from flightctl.status.contract import DRONE_ID_PATTERN

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_ca_file(ca_file: Path) -> None:
    """The CA file loads as PEM certificates (``ssl`` reads it only when a connection is made otherwise)."""
    try:
        ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"CA file {ca_file}: not PEM certificates we can use ({exc})") from None


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


class BrokerEndpoint(_Section):
    """Where the broker is and who we are to it."""

    host: str
    port: int = Field(ge=1, le=65535)
    tls: bool
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ca_file: Path | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> BrokerEndpoint:
        """``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...`` (TLS); explicit arguments win. The CA file,
        if any, must load as PEM certificates now, not at the first connection."""
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # "Invalid IPv6 URL" for an unclosed [
            raise ConfigError(f"broker URL {_without_password(url)!r}: {exc}") from None
        if parts.scheme not in DEFAULT_PORTS:
            raise ConfigError(f"broker URL {url!r}: the scheme must be mqtt:// or mqtts://")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise ConfigError(f"broker URL {url!r}: {exc}") from None
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"broker URL {url!r}: only scheme, credentials, host and port are understood")
        if ca_file is not None and parts.scheme != "mqtts":
            raise ConfigError(
                f"broker URL {url!r}: a CA file was given for a connection without TLS, where the password would "
                "go in clear: use mqtts://"
            )
        if ca_file is not None:
            check_ca_file(ca_file)
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=username if username is not None else (unquote(parts.username) if parts.username else None),
            password=password if password is not None else (unquote(parts.password) if parts.password else None),
            ca_file=ca_file,
        )

    def __repr__(self) -> str:  # never print the password
        scheme = "mqtts" if self.tls else "mqtt"
        return f"<BrokerEndpoint {scheme}://{self.username or ''}@{self.host}:{self.port}>"

    __str__ = __repr__


class BrokerSection(_Section):
    url: str
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
        try:
            BrokerEndpoint.from_url(url)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return url

    @model_validator(mode="after")
    def _one_password(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s is above reconnect_max_s")
        if self.will_delay_s > self.session_expiry_s:
            raise ValueError("will_delay_s is above session_expiry_s (the broker sends the will when either ends)")
        return self


class AutopilotSection(_Section):
    url: str = Field(description="udpin:H:P, udpout:H:P, tcp:H:P, serial:DEV:BAUD")
    signing_key: Path | None = None
    heartbeat_timeout_s: float = Field(default=30, gt=0, le=3600)
    link_lost_timeout_s: float = Field(default=300, gt=0, le=86_400)


class TelemetrySection(_Section):
    rate_hz: float = Field(default=1.0, gt=0, le=10)
    queue: int = Field(default=20, ge=1, le=10_000)
    expiry_s: int = Field(default=10, ge=1, le=3600)

    @field_validator("rate_hz")
    @classmethod
    def _finite(cls, rate: float) -> float:
        if not math.isfinite(rate):
            raise ValueError("not a finite rate")
        return rate


class DaemonConfig(_Section):
    drone_id: str = Field(pattern=DRONE_ID_PATTERN)
    site: str
    profile: str
    journal: Path
    # How far from the depot the vehicle may stand and still take an order (GPS on the pad wanders).
    depot_radius_m: float = Field(default=30, gt=0, le=1000)
    # Answers to unwanted orders and commands (rejections, repeats, status), at most this many a minute after a
    # burst of as many: a flood must not fill the journal or the uplink (status.answer_budget).
    unwanted_answers_per_minute: int = Field(default=60, ge=1, le=6000)
    autopilot: AutopilotSection
    broker: BrokerSection
    telemetry: TelemetrySection = Field(default_factory=TelemetrySection)

    def broker_endpoint(self) -> BrokerEndpoint:
        broker = self.broker
        password = broker.password
        if broker.password_file is not None:
            try:
                password = broker.password_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"broker.password_file: {exc}") from None
        return BrokerEndpoint.from_url(broker.url, username=broker.username, password=password, ca_file=broker.ca_file)


def load_daemon_config(path: Path) -> DaemonConfig:
    if path.suffix == ".toml":
        document: object = read_toml(path)
    elif path.suffix in (".yaml", ".yml"):
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: file not found") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    else:
        raise ConfigError(f"{path}: a daemon config is .toml or .yaml")
    try:
        config = DaemonConfig.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
    config = _relative_to(config, path.parent)
    if config.broker.ca_file is not None and not config.broker.ca_file.is_file():
        raise ConfigError(f"{path}: broker.ca_file: {config.broker.ca_file} is not a file")
    try:
        config.broker_endpoint()  # a password file that cannot be read fails now, not at the first connection
        transport_for_url(config.autopilot.url)  # built, not opened: an unknown scheme is not retried forever
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TransportError as exc:
        raise ConfigError(f"{path}: autopilot.url: {exc}") from None
    return config


def _relative_to(config: DaemonConfig, folder: Path) -> DaemonConfig:
    """Relative paths in a config file are relative to that file, not to wherever the daemon was started."""

    def resolve(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else folder / path

    broker, autopilot = config.broker, config.autopilot
    return config.model_copy(
        update={
            "journal": resolve(config.journal) or config.journal,
            "broker": broker.model_copy(
                update={
                    "password_file": resolve(broker.password_file) or broker.password_file,
                    "ca_file": resolve(broker.ca_file) or broker.ca_file,
                }
            ),
            "autopilot": autopilot.model_copy(
                update={"signing_key": resolve(autopilot.signing_key) or autopilot.signing_key}
            ),
        }
    )
