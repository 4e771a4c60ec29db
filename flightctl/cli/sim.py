"""``flightctl sim ...``: the only place the onboard program reaches into the ``sitl`` harness (lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from flightctl.cli.common import JsonOption, console, fail, run

sim_app = typer.Typer(
    no_args_is_help=True, help="ArduPilot SITL for engineers: build it, start simulated vehicles, fly deliveries."
)


@sim_app.command("install")
def install(
    source: Annotated[
        str | None,
        typer.Option(
            help="A git URL, an ArduPilot directory or a .tar.xz snapshot. Default: the pinned snapshot in "
            "../shared/ardupilot/ beside the checkout, else ArduPilot's repository at the pinned commit."
        ),
    ] = None,
    vehicles: Annotated[str, typer.Option(help="Comma-separated: copter, plane.")] = "copter,plane",
    prefix: Annotated[
        Path | None, typer.Option(help="Where the tree goes. Default: $ARDUPILOT_HOME, else ~/ardupilot.")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(min=1, max=256, help="Parallel compile jobs (default: the cores).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a different version already there.")] = False,
    system_packages: Annotated[
        bool, typer.Option(help="Install missing Debian packages with apt-get when running as root.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Build ArduPilot's SITL (copter, plane) from source at the version flightctl is tested against."""
    from flightctl.cli.sim_install import run_install  # the harness is for engineers' machines only

    run_install(source, vehicles, prefix, jobs, force=force, system_packages=system_packages, as_json=as_json)


@sim_app.command("up")
def up(
    vehicle: Annotated[
        Literal["copter", "plane", "quadplane"],
        typer.Option(help="Which ArduPilot SITL to run (quadplane: ArduPlane's VTOL model, for a vtol profile)."),
    ] = "copter",
    instances: Annotated[int, typer.Option(min=1, max=10, help="How many vehicles.")] = 1,
    speedup: Annotated[float, typer.Option(min=0.1, max=100, help="Simulation speed.")] = 1.0,
    home: Annotated[str, typer.Option(help="A name from configs/locations.toml, or LAT,LON,ALT[,HDG].")] = "kirkwall",
    first_instance: Annotated[int, typer.Option("--first-instance", min=0, help="-I of the first vehicle.")] = 0,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Show the first vehicle's live status.")] = False,
) -> None:
    """Start SITL vehicles with the delivery profile, print where to connect, stop them all on Ctrl-C."""
    from sitl.session import run_sim_up  # the harness is for engineers' machines only: import on demand

    run(lambda: run_sim_up(vehicle, instances, speedup, home, first_instance, console, watch=watch))


def new_run_folder(prefix: str = "") -> Path:
    """``flightctl-sim/<UTC time>/`` in the current directory: a run's journal, tlog and report outlive SITL's
    own temporary folder, and a run never finds an earlier one's order in its journal."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = Path("flightctl-sim") / f"{prefix}{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    return folder.absolute()


@sim_app.command("deliver")
def deliver(
    order: Annotated[str, typer.Argument(help="Order file, or a name in configs/orders/.")],
    speedup: Annotated[float, typer.Option(min=0.1, max=100, help="Simulation speed.")] = 5.0,
    site: Annotated[str, typer.Option("--site", help="Site file or name; SITL starts at its depot.")] = "kirkwall",
    profile: Annotated[str, typer.Option("--profile", help="Vehicle profile file or name.")] = "sitl-quad",
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal",
            help="Journal file; the tlog and the report go beside it. Default: a new folder for this run, "
            "flightctl-sim/<UTC time>/, kept after SITL stops.",
        ),
    ] = None,
    instance: Annotated[int, typer.Option("--instance", min=0, help="SITL -I.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    wind_m_s: Annotated[
        float, typer.Option("--sim-wind", min=0, max=50, help="SITL's simulated wind (SIM_WIND_SPD), m/s.")
    ] = 0.0,
) -> None:
    """Start SITL at the site's depot with the delivery profile and fly one delivery on it: ArduCopter for a
    multirotor profile, ArduPlane's QuadPlane for a vtol one.

    The depot's ground wind measurement is the simulation's own wind (SITL is its own weather station)."""
    from datetime import UTC, datetime

    from flightctl.cli.deliver import NOT_DELIVERED_EXIT, load_plan_or_exit, run_delivery
    from flightctl.delivery.order import VehicleKind
    from flightctl.delivery.wind import GroundWind
    from sitl.instance import SitlInstance
    from sitl.locations import Home
    from sitl.remote_id_tx import sitl_operator

    plan = load_plan_or_exit(order, site, profile)
    depot = plan.site.depot
    home = Home(lat_deg=depot.lat, lon_deg=depot.lon, alt_m=plan.site.depot_alt_m, heading_deg=0)
    vtol = plan.profile.kind is VehicleKind.VTOL

    async def go() -> bool:
        async with SitlInstance(
            home=home, vehicle="plane" if vtol else "copter", model="quadplane" if vtol else None,
            instance=instance, speedup=speedup, companion=sitl_operator("quadplane" if vtol else "copter"),
        ) as sim:  # fmt: skip
            console.print(f"SITL ready at {plan.site.name} (connect to watch: {sim.serial1_url})", markup=False)
            await sim.vehicle.params.set("SIM_WIND_SPD", wind_m_s)
            ground_wind = GroundWind(wind_m_s, datetime.now(UTC), "SITL's simulated wind (SIM_WIND_SPD)")
            outcome = await run_delivery(
                sim.vehicle,
                plan,
                journal or new_run_folder() / "journal.sqlite",
                as_json=as_json,
                ground_wind=ground_wind,
                report=True,
            )
            return outcome.delivered

    if not run(go):
        raise typer.Exit(NOT_DELIVERED_EXIT)


@sim_app.command("leg")
def leg(
    leg_name: Annotated[str, typer.Argument(metavar="LEG", help="Leg file, or a name in configs/legs/.")],
    order_id: Annotated[str, typer.Option("--order-id", help="The opaque id the journal files the leg under.")],
    parcel_kg: Annotated[float, typer.Option("--parcel-kg", min=0, max=1000, help="Mass of what is loaded, kg.")] = 2.0,
    follows: Annotated[
        str | None, typer.Option("--follows", help="A return leg: the order id of the leg it turns around from.")
    ] = None,
    sim_wind: Annotated[
        str, typer.Option("--sim-wind", help="SITL's simulated wind, FROM/SPEED (degrees true, m/s).")
    ] = "000/0",
    profile: Annotated[str, typer.Option("--profile", help="Vehicle profile file or name.")] = "sitl-plane",
    speedup: Annotated[float, typer.Option(min=0.1, max=100, help="Simulation speed.")] = 40.0,
    journal: Annotated[
        Path, typer.Option("--journal", help="SQLite journal: keep one for a round trip (the unload, --follows).")
    ] = Path("flightctl-legs.sqlite"),
    instance: Annotated[int, typer.Option("--instance", min=0, help="SITL -I.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Start ArduPlane SITL lined up on the leg's departure runway and fly the leg as a delivery: go/no-go,
    upload, the flight, the landing. Exit 0 ARRIVED at the destination, 2 not.

    SITL is its own weather station: its wind is every airstrip's measurement, taken now. Its earth is flat at
    home's height, so every airstrip is put at the departure field's elevation. After an ARRIVED leg, confirm
    the unload (`flightctl leg unloaded ORDER --journal ...`) and fly the way back with --follows ORDER."""
    from datetime import UTC, datetime

    from flightctl.cli.deliver import NOT_DELIVERED_EXIT, run_delivery
    from flightctl.cli.leg import leg_and_airstrips_or_exit
    from flightctl.config import named_config, read_yaml_model
    from flightctl.delivery.decide_leg import LegDelivery
    from flightctl.delivery.leg_planner import plan_leg
    from flightctl.delivery.order import VehicleProfile
    from flightctl.delivery.runway_choice import SurfaceWind
    from flightctl.errors import FlightctlError
    from sitl.instance import SitlInstance
    from sitl.legs import flat_world, lined_up
    from sitl.remote_id_tx import sitl_operator

    the_leg, airstrips = leg_and_airstrips_or_exit(leg_name)
    try:
        wind = SurfaceWind.parse(sim_wind).model_copy(update={"measured_at": datetime.now(UTC)})
        the_profile = read_yaml_model(named_config("profiles", profile), VehicleProfile)
        strips = flat_world(airstrips)
        winds = {strip.icao: wind for strip in (strips.origin, strips.destination, strips.alternate)}
        plan = plan_leg(the_leg, strips, the_profile, winds)
    except FlightctlError as exc:
        raise fail(exc) from None
    flight = LegDelivery(order_id, plan, parcel_kg, winds=winds, wind_aloft=wind, follows=follows)

    async def go() -> bool:
        async with SitlInstance(
            home=lined_up(plan), vehicle="plane", instance=instance, speedup=speedup, companion=sitl_operator("plane")
        ) as sim:
            console.print(
                f"SITL ready on {plan.departure.end.name} (connect to watch: {sim.serial1_url})", markup=False
            )
            await sim.vehicle.params.set_many({"SIM_WIND_DIR": wind.from_deg % 360, "SIM_WIND_SPD": wind.speed_m_s})
            outcome = await run_delivery(sim.vehicle, flight, journal, as_json=as_json, ground_wind=None, report=True)
            return outcome.delivered

    if not run(go):
        raise typer.Exit(NOT_DELIVERED_EXIT)


@sim_app.command("fleet")
def fleet(
    aircraft: Annotated[int, typer.Option("--aircraft", min=1, max=40, help="How many simulated aircraft.")] = 4,
    vtol: Annotated[
        int,
        typer.Option(
            "--vtol", min=0, max=40, help="How many of them are VTOLs (ArduPlane QuadPlane, profile sitl-vtol)."
        ),
    ] = 0,
    minutes: Annotated[
        float, typer.Option("--minutes", min=1, max=24 * 60, help="Simulated minutes orders are dispatched for.")
    ] = 15,
    speedup: Annotated[float, typer.Option(min=0.5, max=50, help="Simulation speed of every SITL.")] = 5.0,
    demand: Annotated[
        Path | None, typer.Option("--demand", help="Demand model YAML (default: configs/fleet/demand.yaml).")
    ] = None,
    orders_per_hour: Annotated[
        float | None, typer.Option("--orders-per-hour", min=0.1, help="Override the demand model's rate.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Override the demand model's seed.")] = None,
    faults: Annotated[
        Path | None, typer.Option("--faults", help="Faults on a schedule, YAML (see sitl/fleet_faults.py).")
    ] = None,
    postgres: Annotated[bool, typer.Option("--postgres", help="A PostgreSQL registry instead of SQLite.")] = False,
    pair: Annotated[
        bool, typer.Option("--pair", help="Two brokers as an active pair, not one (aircraft fail over).")
    ] = False,
    first_instance: Annotated[int, typer.Option("--first-instance", min=0, help="-I of the first SITL.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for everything the run keeps (default: flightctl-sim/...).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fleet report as JSON.")] = False,
) -> None:
    """Fly a fleet: N SITL aircraft at Kirkwall (copters, and --vtol of them QuadPlanes), each with its own
    `flightctl run` daemon and broker account, one broker (or an active pair), one relay and one registry, orders
    dispatched from the demand model for --minutes of simulated time (each to a free aircraft able to fly it:
    no winch drop to a VTOL), each order's customer page followed. Shows each aircraft live, then the fleet
    report (also fleet-report.json and plots/ in the run's folder). Exit 0 when the fleet held (every
    journaled event in the registry once, no aircraft with two orders, every order ended), 1 otherwise. Ctrl-C
    stops everything it started."""
    import json
    import sys

    from rich.live import Live

    from flightctl.cli.fleet_view import live_view, report_tables, save_view_svg
    from flightctl.errors import ConfigError
    from flightctl.ground.demand import load_demand
    from sitl.fleet import FleetProgress, FleetSpec, SimFleet
    from sitl.fleet_faults import FaultPlan, load_faults, timeline

    try:
        model = load_demand(demand)
        plan = None if faults is None else load_faults(faults)
    except ConfigError as exc:
        raise fail(exc) from None
    model = model.model_copy(
        update={k: v for k, v in (("orders_per_hour", orders_per_hour), ("seed", seed)) if v is not None}
    )
    if vtol > aircraft:
        raise fail(ConfigError(f"--vtol {vtol} of --aircraft {aircraft}: no more VTOLs than aircraft"))
    if first_instance + aircraft > 50:
        raise fail(ConfigError(f"--first-instance {first_instance} + --aircraft {aircraft}: SITL -I stops at 50"))
    folder = out.absolute() if out is not None else new_run_folder("fleet-")
    spec = FleetSpec(
        folder, aircraft, minutes * 60, speedup, model,
        first_instance=first_instance, postgres=postgres, faults=plan, brokers=2 if pair else 1, vtol=vtol,
    )  # fmt: skip
    try:
        timeline(plan or FaultPlan(), spec.drones())  # faults on aircraft it does not have: said before anything starts
    except ConfigError as exc:
        raise fail(exc) from None

    pictured: list[str] = []
    with Live(console=console, refresh_per_second=2, transient=as_json) as live:

        def show(progress: FleetProgress) -> None:
            view = live_view(progress)
            live.update(view)
            if progress.phase == "settling" and not pictured:  # the view as the dispatching ends, kept as a picture
                pictured.append(save_view_svg(view, folder / "live-view.svg", title="flightctl sim fleet"))

        report = run(lambda: SimFleet(spec, on_progress=show).run())
    if as_json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
    else:
        console.print()
        console.print(report_tables(report))
    if not report.holds():
        raise typer.Exit(1)
