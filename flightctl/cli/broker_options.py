"""Options every command that talks to the broker shares, and the endpoint they make."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import aiomqtt
import typer

from flightctl.cli.common import fail
from flightctl.errors import ConfigError
from flightctl.status.broker import BrokerUnavailable, ConfirmedClient, make_client
from flightctl.status.contract import DRONE_ID_PATTERN, Envelope, MessageType, TimeSource
from flightctl.status.settings import BrokerEndpoint

BrokerOption = Annotated[
    str, typer.Option("--broker", help="mqtt://[user[:password]@]host[:port] or mqtts://... (TLS)")
]
DroneOption = Annotated[str, typer.Option("--drone", help="The drone's id (its topic namespace).")]
UsernameOption = Annotated[str | None, typer.Option("--username", help="Broker user name.")]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option("--password-file", help="File holding the broker password (kept out of the shell's history)."),
]
CaFileOption = Annotated[
    Path | None, typer.Option("--ca-file", help="CA certificate(s) to check the broker's TLS certificate.")
]


def endpoint_or_exit(
    url: str, username: str | None, password_file: Path | None, ca_file: Path | None
) -> BrokerEndpoint:
    if ca_file is not None and not ca_file.is_file():
        raise fail(ConfigError(f"--ca-file: {ca_file} is not a file"))
    try:
        password = None
        if password_file is not None:
            try:
                password = password_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"--password-file: {exc}") from None
        return BrokerEndpoint.from_url(url, username=username, password=password, ca_file=ca_file)
    except ConfigError as exc:
        raise fail(exc) from None


def drone_or_exit(drone: str) -> str:
    if not re.fullmatch(DRONE_ID_PATTERN, drone):
        raise fail(ConfigError(f"--drone {drone!r}: letters, digits, '_' and '-' only (1 to 64)"))
    return drone


def tool_client(endpoint: BrokerEndpoint, tool: str) -> ConfirmedClient:
    """A short-lived client for an engineer's command: its own id, a clean session."""
    return make_client(endpoint, client_id=f"flightctl-{tool}-{uuid.uuid4().hex[:12]}")


@contextlib.asynccontextmanager
async def connected(endpoint: BrokerEndpoint, tool: str) -> AsyncIterator[ConfirmedClient]:
    """A connected tool client; the broker's failures become one ``BrokerUnavailable`` line."""
    try:
        async with tool_client(endpoint, tool) as client:
            yield client
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"broker {endpoint}: {exc}") from None


def sender_envelope(drone: str, type_: MessageType, data: dict[str, Any], order_id: str | None = None) -> bytes:
    envelope = Envelope(
        drone=drone, time=datetime.now(UTC), time_source=TimeSource.SENDER, type=type_, order_id=order_id, data=data
    )
    return envelope.to_json()
