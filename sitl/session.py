"""``flightctl sim up``: several SITL vehicles for an engineer, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from rich.console import Console
from rich.live import Live
from rich.text import Text

from flightctl.console import status_table
from flightctl.geo import offset
from sitl.errors import SitlError
from sitl.install import installed_version
from sitl.instance import SitlInstance
from sitl.locations import Home, resolve_home
from sitl.paths import VehicleKind, ardupilot_home
from sitl.remote_id_tx import sitl_operator

# Vehicles started together stand this far apart (east), so their positions can be told apart.
SPACING_M = 10.0


def _home_for(home: Home, index: int) -> Home:
    if index == 0:
        return home
    moved = offset(home.location(), bearing_deg=90.0, distance_m=SPACING_M * index)
    return home.model_copy(update={"lat_deg": moved.lat_deg, "lon_deg": moved.lon_deg})


async def run_sim_up(
    vehicle: VehicleKind | Literal["quadplane"],
    instances: int,
    speedup: float,
    home_name: str,
    first_instance: int,
    console: Console,
    *,
    watch: bool = False,
) -> None:
    home = resolve_home(home_name)
    async with contextlib.AsyncExitStack() as stack:
        sims = [
            SitlInstance(
                home=_home_for(home, n),
                vehicle="plane" if vehicle == "quadplane" else vehicle,
                model="quadplane" if vehicle == "quadplane" else None,
                instance=first_instance + n,
                speedup=speedup,
                companion=sitl_operator(vehicle),  # Remote ID enforced, as on a UK aircraft
            )
            for n in range(instances)
        ]
        with console.status(f"starting {instances} ArduPilot SITL {vehicle}(s) at {home_name}, waiting until ready..."):
            # One at a time: two cores cannot initialise several EKFs at once without slowing them all.
            for sim in sims:
                await stack.enter_async_context(sim)
        console.print(Text(f"ArduPilot build: {installed_version() or 'unknown'} in {ardupilot_home()}"))
        for sim in sims:
            console.print(
                f"[bold green]ready[/]: SITL {sim.model} {sim.vehicle.software_version or ''} "
                f"instance {sim.instance} at "
                f"{sim.home.lat_deg:.6f},{sim.home.lon_deg:.6f} (speedup {sim.speedup:g})\n"
                f"  connect: [bold]{sim.serial1_url}[/]  or  {sim.serial2_url}\n"
                f"  log:     {sim.log_path}"
            )
        console.print(
            f"Try: [bold]flightctl status --connect {sims[0].serial1_url} --watch[/]"
            "   (Ctrl-C here stops every vehicle)"
        )
        if not watch:
            await _until_one_exits(sims)
            return
        with Live(status_table(sims[0].vehicle), console=console, refresh_per_second=2) as live:
            while True:
                _check_running(sims)
                live.update(status_table(sims[0].vehicle))
                await asyncio.sleep(0.5)


def _check_running(sims: list[SitlInstance]) -> None:
    for sim in sims:
        if not sim.running:
            raise SitlError(f"SITL instance {sim.instance} exited\n{sim.output_tail()}")


async def _until_one_exits(sims: list[SitlInstance]) -> None:
    while True:
        _check_running(sims)
        await asyncio.sleep(1.0)
