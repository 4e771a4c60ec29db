"""``flightctl status``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live

from flightctl.cli.common import (
    DEFAULT_TIMEOUT_S,
    ConnectOption,
    SigningOption,
    TimeoutOption,
    connect_vehicle,
    console,
    run,
)
from flightctl.console import status_record, status_table
from flightctl.errors import ConditionTimeout

if TYPE_CHECKING:
    from flightctl.vehicle.telemetry import VehicleState
    from flightctl.vehicle.vehicle import Vehicle

LINK_QUALITY_WINDOW_S = 2.0


def _has_basics(state: VehicleState) -> bool:
    return state.gps_fix_type is not None and state.prearm_ok is not None and state.ekf_flags is not None


def _print_status(vehicle: Vehicle, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(status_record(vehicle)) + "\n")
        sys.stdout.flush()
    else:
        console.print(status_table(vehicle))


def status(
    connect: ConnectOption,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep updating in place until Ctrl-C.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON for machines (one object per line with --watch).")
    ] = False,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    signing_key: SigningOption = None,
) -> None:
    """Show the vehicle's mode, arming, GPS, battery, EKF health and link quality."""
    from flightctl.vehicle.telemetry import Clock

    async def show() -> None:
        async with connect_vehicle(connect, signing_key, timeout_s=timeout_s) as vehicle:
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
