"""``flightctl sim ...``: the only place the onboard program reaches into the ``sitl`` harness (lazily)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from flightctl.cli.common import console, run

sim_app = typer.Typer(no_args_is_help=True, help="ArduPilot SITL for engineers: start simulated vehicles.")


@sim_app.command("up")
def up(
    vehicle: Annotated[Literal["copter", "plane"], typer.Option(help="Which ArduPilot SITL to run.")] = "copter",
    instances: Annotated[int, typer.Option(min=1, max=10, help="How many vehicles.")] = 1,
    speedup: Annotated[float, typer.Option(min=0.1, max=100, help="Simulation speed.")] = 1.0,
    home: Annotated[str, typer.Option(help="A name from configs/locations.toml, or LAT,LON,ALT[,HDG].")] = "kirkwall",
    first_instance: Annotated[int, typer.Option("--first-instance", min=0, help="-I of the first vehicle.")] = 0,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Show the first vehicle's live status.")] = False,
) -> None:
    """Start SITL vehicles with the delivery profile, print where to connect, stop them all on Ctrl-C."""
    from sitl.session import run_sim_up  # the harness is for engineers' machines only: import on demand

    run(lambda: run_sim_up(vehicle, instances, speedup, home, first_instance, console, watch=watch))
