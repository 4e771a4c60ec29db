"""``flightctl``: the command line. The composition root: the only onboard module that reaches into ``sitl``
(lazily, for ``flightctl sim ...``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from flightctl.config import load_telemetry_config
from flightctl.console import status_record, status_table
from flightctl.errors import ConditionTimeout, FlightctlError
from flightctl.link.codec import SigningKey
from flightctl.vehicle.signing import install_signing_key, remove_signing_key, write_new_key
from flightctl.vehicle.telemetry import Clock, VehicleState
from flightctl.vehicle.vehicle import LinkOptions, Vehicle

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Onboard flight and delivery controller.")
sim_app = typer.Typer(no_args_is_help=True, help="ArduPilot SITL for engineers: start simulated vehicles.")
signing_app = typer.Typer(no_args_is_help=True, help="MAVLink 2 signing keys: make one, install it, remove it.")
app.add_typer(sim_app, name="sim")
app.add_typer(signing_app, name="signing")

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")
LINK_QUALITY_WINDOW_S = 2.0

ConnectOption = Annotated[str, typer.Option("--connect", "-c", help="udpin:H:P, udpout:H:P, tcp:H:P, serial:DEV:BAUD")]
SigningOption = Annotated[
    Path | None, typer.Option("--signing-key", help="MAVLink 2 signing key file (64 hex characters)")
]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the link does.")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=errors, show_path=False)],
    )


def run(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one async command; our errors become one red line and exit code 1, Ctrl-C exits 130."""

    async def supervised() -> T:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await coroutine_factory()

    try:
        return asyncio.run(supervised())
    except FlightctlError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        errors.print("stopped")
        raise typer.Exit(130) from None


def _has_basics(state: VehicleState) -> bool:
    return state.gps_fix_type is not None and state.prearm_ok is not None and state.ekf_flags is not None


@app.command()
def status(
    connect: ConnectOption,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep updating in place until Ctrl-C.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON for machines (one object per line with --watch).")
    ] = False,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the vehicle.")] = 30.0,
    signing_key: SigningOption = None,
) -> None:
    """Show the vehicle's mode, arming, GPS, battery, EKF health and link quality."""

    async def show() -> None:
        options = LinkOptions(signing_key_file=signing_key)
        rates = load_telemetry_config().rates_hz
        async with Vehicle.connect(connect, options=options, heartbeat_timeout_s=timeout_s, rates_hz=rates) as vehicle:
            with contextlib.suppress(ConditionTimeout):
                await vehicle.telemetry.wait_until(_has_basics, timeout_s=5, what="first telemetry", clock=Clock.WALL)
            await asyncio.sleep(LINK_QUALITY_WINDOW_S)  # link quality needs a few seconds of sequence numbers
            if not watch:
                _print_status(vehicle, as_json)
                return
            if as_json:
                while True:
                    _print_status(vehicle, as_json=True)
                    await asyncio.sleep(1.0)
            with Live(status_table(vehicle), console=console, refresh_per_second=4) as live:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(status_table(vehicle))

    run(show)


def _print_status(vehicle: Vehicle, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(status_record(vehicle)) + "\n")
        sys.stdout.flush()
    else:
        console.print(status_table(vehicle))


@signing_app.command("new-key")
def signing_new_key(path: Annotated[Path, typer.Argument(help="Where to write the key (mode 0600).")]) -> None:
    """Write a new random 32-byte signing key as 64 hex characters."""
    try:
        write_new_key(path)
    except FlightctlError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"new signing key written to {path}")


@signing_app.command("install")
def signing_install(
    connect: ConnectOption,
    key: Annotated[Path, typer.Option("--key", help="Key file to install on the vehicle.")],
) -> None:
    """Install a signing key on the vehicle (on the ground only); it signs and demands signatures from then on."""

    async def install() -> None:
        signing_key = SigningKey.from_file(key)
        async with Vehicle.connect(connect, rates_hz=None) as vehicle:
            await install_signing_key(vehicle.connection, signing_key)
        console.print("signing key installed: the vehicle now signs its messages and expects signed ones")

    run(install)


@signing_app.command("remove")
def signing_remove(connect: ConnectOption, signing_key: SigningOption = None) -> None:
    """Turn signing off on the vehicle (over its USB/SERIAL0 link, or a link signed with --signing-key)."""

    async def remove() -> None:
        options = LinkOptions(signing_key_file=signing_key)
        async with Vehicle.connect(connect, options=options, rates_hz=None) as vehicle:
            await remove_signing_key(vehicle.connection)
        console.print("signing turned off on the vehicle")

    run(remove)


@sim_app.command("up")
def sim_up(
    vehicle: Annotated[Literal["copter", "plane"], typer.Option(help="Which ArduPilot SITL to run.")] = "copter",
    instances: Annotated[int, typer.Option(min=1, max=10, help="How many vehicles.")] = 1,
    speedup: Annotated[float, typer.Option(min=0.1, max=100, help="Simulation speed.")] = 1.0,
    home: Annotated[str, typer.Option(help="A name from configs/locations.toml, or LAT,LON,ALT[,HDG].")] = "kirkwall",
    first_instance: Annotated[int, typer.Option("--first-instance", min=0, help="-I of the first vehicle.")] = 0,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Show the first vehicle's live status.")] = False,
) -> None:
    """Start SITL vehicles with the delivery profile, print where to connect, stop them all on Ctrl-C."""
    from sitl.session import run_sim_up  # the harness is only for engineers' machines: import on demand

    run(lambda: run_sim_up(vehicle, instances, speedup, home, first_instance, console, watch=watch))
