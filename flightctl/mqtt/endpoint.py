"""Where an MQTT broker is and who we are to it, from a URL: shared by the daemon, the relay, dispatch and the CLI."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from flightctl.errors import ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def check_ca_file(ca_file: Path) -> None:
    """The CA file loads as PEM certificates (``ssl`` reads it only when a connection is made otherwise)."""
    try:
        ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"CA file {ca_file}: not PEM certificates we can use ({exc})") from None


def _without_password(url: str) -> str:
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


class BrokerEndpoint(BaseModel):
    """Where the broker is and who we are to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


def checked_broker_url(url: str) -> str:
    """``url`` if it names a broker (for a config's validator: the problem as a ``ValueError``)."""
    try:
        BrokerEndpoint.from_url(url)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return url
