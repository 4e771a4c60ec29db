"""Options every command that talks to the broker shares, and the endpoint they make."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flightctl.cli.common import fail
from flightctl.errors import ConfigError

if TYPE_CHECKING:
    from flightctl.mqtt.endpoint import BrokerEndpoint

BrokerOption = Annotated[
    str, typer.Option("--broker", help="mqtt://[user[:password]@]host[:port] or mqtts://... (TLS)")
]
BrokersOption = Annotated[
    list[str],
    typer.Option(
        "--broker",
        help="mqtt://[user[:password]@]host[:port] or mqtts://... (TLS). Repeat it for each broker of an active "
        "pair: the request goes through every one that can be reached, the answer comes from any.",
    ),
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
    from flightctl.config import read_secret  # here, not at import: `flightctl --help` stays quick
    from flightctl.mqtt.endpoint import BrokerEndpoint

    if ca_file is not None and not ca_file.is_file():
        raise fail(ConfigError(f"--ca-file: {ca_file} is not a file"))
    try:
        password = None if password_file is None else read_secret(password_file, "--password-file")
        return BrokerEndpoint.from_url(url, username=username, password=password, ca_file=ca_file)
    except ConfigError as exc:
        raise fail(exc) from None


def endpoints_or_exit(
    urls: list[str], username: str | None, password_file: Path | None, ca_file: Path | None
) -> list[BrokerEndpoint]:
    """One endpoint per --broker, with the same credentials (the brokers of a pair share their accounts)."""
    if not urls:
        raise fail(ConfigError("give --broker"))
    return [endpoint_or_exit(url, username, password_file, ca_file) for url in urls]


def drone_or_exit(drone: str) -> str:
    from flightctl.mqtt.contract import DRONE_ID_PATTERN

    if not re.fullmatch(DRONE_ID_PATTERN, drone):
        raise fail(ConfigError(f"--drone {drone!r}: letters, digits, '_' and '-' only (1 to 64)"))
    return drone
