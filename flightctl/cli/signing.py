"""``flightctl signing ...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flightctl.cli.common import (
    DEFAULT_TIMEOUT_S,
    ConnectOption,
    JsonOption,
    SigningOption,
    TimeoutOption,
    connect_vehicle,
    fail,
    report,
    run,
)
from flightctl.errors import FlightctlError

signing_app = typer.Typer(no_args_is_help=True, help="MAVLink 2 signing keys: make one, install it, remove it.")


@signing_app.command("new-key")
def new_key(
    path: Annotated[Path, typer.Argument(help="Where to write the key (mode 0600).")], as_json: JsonOption = False
) -> None:
    """Write a new random 32-byte signing key as 64 hex characters."""
    from flightctl.vehicle.signing import write_new_key

    try:
        write_new_key(path)
    except FlightctlError as exc:
        raise fail(exc) from None
    report(as_json, {"signing_key": str(path)}, f"new signing key written to {path}")


@signing_app.command("install")
def install(
    connect: ConnectOption,
    key: Annotated[Path, typer.Option("--signing-key", help="Key file to install on the vehicle.")],
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Install a signing key on the vehicle (on the ground only); it signs and demands signatures from then on."""
    from flightctl.link.codec import SigningKey
    from flightctl.vehicle.signing import install_signing_key

    async def go() -> None:
        signing_key = SigningKey.from_file(key)
        async with connect_vehicle(connect, timeout_s=timeout_s, telemetry=False) as vehicle:
            await install_signing_key(vehicle.connection, signing_key)
        said = "signing key installed: the vehicle now signs its messages and expects signed ones"
        report(as_json, {"signing": "on", "signing_key": str(key)}, said)

    run(go)


@signing_app.command("remove")
def remove(
    connect: ConnectOption,
    signing_key: SigningOption = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Turn signing off on the vehicle (over its USB/SERIAL0 link, or a link signed with --signing-key)."""
    from flightctl.vehicle.signing import remove_signing_key

    async def go() -> None:
        async with connect_vehicle(connect, signing_key, timeout_s=timeout_s, telemetry=False) as vehicle:
            await remove_signing_key(vehicle.connection)
        report(as_json, {"signing": "off"}, "signing turned off on the vehicle")

    run(go)
