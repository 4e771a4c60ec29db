"""``flightctl leg plan``: an island leg planned for the measured winds, with every runway's numbers, and its
mission written to a file a ground station can load. ``flightctl leg check``: go/no-go for the leg, from the
aircraft on its runway."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from flightctl.cli.broker_options import BrokersOption, CaFileOption, PasswordFileOption, UsernameOption
from flightctl.cli.common import (
    DEFAULT_TIMEOUT_S,
    AirstripWindOption,
    AloftOption,
    AnswerTimeoutOption,
    ConnectOption,
    JsonOption,
    RemoteIdOption,
    SigningOption,
    TimeoutOption,
    airstrip_winds_or_exit,
    connect_vehicle,
    console,
    fail,
    load_or_exit,
    report,
    run,
)
from flightctl.errors import ConditionTimeout, FlightctlError

if TYPE_CHECKING:
    from flightctl.delivery.leg_planner import AirstripsOfLeg
    from flightctl.delivery.legs import Leg
    from flightctl.delivery.preflight import GoNoGo
    from flightctl.delivery.runway_choice import SurfaceWind
    from flightctl.vehicle.telemetry import VehicleState

leg_app = typer.Typer(no_args_is_help=True, help="Island legs flown airstrip to airstrip.")

LegArgument = Annotated[str, typer.Argument(help="Leg file, or a name in configs/legs/.")]


def leg_and_airstrips_or_exit(name: str) -> tuple[Leg, AirstripsOfLeg]:
    """The leg and its three airstrips (named in the leg, resolved beside it or in configs/airstrips/)."""
    from flightctl.delivery.leg_files import load_leg

    try:
        site = load_leg(name)
    except FlightctlError as exc:
        raise fail(exc) from None
    return site.leg, site.airstrips


def winds_or_exit(texts: list[str] | None, airstrips: AirstripsOfLeg) -> dict[str, SurfaceWind]:
    known = {strip.icao for strip in (airstrips.origin, airstrips.destination, airstrips.alternate)}
    return airstrip_winds_or_exit(texts, known=known)


@leg_app.command("plan")
def plan(
    leg: LegArgument,
    wind: AirstripWindOption = None,
    profile: Annotated[str, typer.Option("--profile", help="Vehicle profile file, or a name in configs/profiles/.")] = (
        "sitl-plane"
    ),
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the mission, fence and rally here (.plan, .waypoints, .yaml).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Plan LEG for the measured winds: the runway chosen at each end and why, every landing sequence, the
    distances; exit 1 with every runway's numbers when the destination or the alternate has none usable."""
    from flightctl.config import named_config, read_yaml_model
    from flightctl.delivery.leg_planner import landing_limits, plan_leg
    from flightctl.delivery.order import VehicleProfile
    from flightctl.delivery.runway_choice import CALM, assess
    from flightctl.missions.formats import save_plan

    the_leg, airstrips = leg_and_airstrips_or_exit(leg)
    winds = winds_or_exit(wind, airstrips)
    try:
        the_profile = read_yaml_model(named_config("profiles", profile), VehicleProfile)
        planned = plan_leg(the_leg, airstrips, the_profile, winds)
        if out is not None:
            save_plan(planned.mission, out)
    except FlightctlError as exc:
        raise fail(exc) from None
    record = {
        "leg": the_leg.name,
        "departure": planned.departure.end.name,
        "landing": planned.landing.end.name,
        "track_km": round(planned.track_km, 1),
        "to_alternate_km": round(planned.to_alternate_km, 1),
        "sequences": [
            {"runway": s.end.name, "do_land_start_seq": s.start_seq, "land_seq": s.land_seq} for s in planned.sequences
        ],
        "water": [w.model_dump() for w in the_leg.water],
        "mission_items": len(planned.mission.mission),
        "out": None if out is None else str(out),
    }
    if as_json:
        report(True, record, "")
        return
    table = Table(title=f"{the_leg.name}: runways for the measured winds")
    for column in ("airstrip", "wind", "runway", "headwind", "crosswind", "verdict"):
        table.add_column(column)
    for strip in (airstrips.origin, airstrips.destination, airstrips.alternate):
        measured = winds.get(strip.icao, CALM)
        for assessment in assess(strip, measured, landing_limits(the_profile)):
            table.add_row(
                strip.name,
                measured.text(),
                assessment.end.designator,
                f"{assessment.headwind_m_s:+.1f} m/s",
                f"{assessment.crosswind_m_s:.1f} m/s",
                "usable" if assessment.usable else "; ".join(assessment.problems),
            )
    console.print(table)
    report(
        False,
        record,
        f"take off {planned.departure.end.name}, land {planned.landing.end.name}: {planned.track_km:.1f} km, "
        f"{len(planned.sequences)} landing sequences, {planned.to_alternate_km:.1f} km on to the alternate"
        + (f"; mission written to {out}" if out else ""),
    )


NO_GO_EXIT = 2


@leg_app.command("check")
def check(
    leg: LegArgument,
    connect: ConnectOption,
    aloft_wind: AloftOption,
    parcel_kg: Annotated[float, typer.Option("--parcel-kg", min=0, max=1000, help="Mass of what is loaded, kg.")],
    wind: AirstripWindOption = None,
    profile: Annotated[str, typer.Option("--profile", help="Vehicle profile file, or a name in configs/profiles/.")] = (
        "sitl-plane"
    ),
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    signing_key: SigningOption = None,
    as_json: JsonOption = False,
    remote_id: RemoteIdOption = None,
) -> None:
    """Go/no-go for flying LEG now, from the aircraft on its runway: GPS, EKF, battery, lined up on the departure
    threshold, a usable runway for each airstrip's measured wind, the energy into the wind aloft with the
    reserve to the alternate, and Remote ID where the aircraft flies with it. Exit 0 GO, 2 NO-GO (every failed
    check with its numbers), 1 on error."""
    from datetime import UTC, datetime

    from flightctl.config import named_config, read_yaml_model
    from flightctl.daemon.settings import load_remote_id
    from flightctl.delivery.ground import with_remote_id
    from flightctl.delivery.leg_preflight import leg_checks
    from flightctl.delivery.order import VehicleProfile
    from flightctl.delivery.runway_choice import SurfaceWind
    from flightctl.vehicle.telemetry import Clock

    the_leg, airstrips = leg_and_airstrips_or_exit(leg)
    winds = winds_or_exit(wind, airstrips)
    try:
        aloft = SurfaceWind.parse(aloft_wind)
        the_profile = read_yaml_model(named_config("profiles", profile), VehicleProfile)
    except FlightctlError as exc:
        raise fail(exc) from None
    operator = None if remote_id is None else load_or_exit(load_remote_id, remote_id)

    async def judge() -> GoNoGo:
        async with (
            connect_vehicle(connect, signing_key, timeout_s=timeout_s) as vehicle,
            vehicle.remote_id.broadcasting(operator),
        ):
            # What the checks read; one missing after the wait is a NO-GO of its own, never a pass.
            with contextlib.suppress(ConditionTimeout):
                await vehicle.telemetry.wait_until(
                    _has_what_go_no_go_reads,
                    timeout_s=10,
                    what="position, heading, GPS, EKF, battery",
                    clock=Clock.WALL,
                )
            verdict, _plan = leg_checks(
                the_leg,
                airstrips,
                the_profile,
                vehicle.state.snapshot(),
                winds=winds,
                wind_aloft=aloft,
                parcel_kg=parcel_kg,
                now_utc=datetime.now(UTC),
            )
            return await with_remote_id(vehicle, verdict)

    verdict = run(judge)
    record = {
        "leg": the_leg.name,
        "go": verdict.go,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in verdict.checks],
    }
    if as_json:
        report(True, record, "")
    else:
        for line in verdict.report().splitlines():
            console.print(Text(line, style="green" if line.startswith("GO") else "bold red"))
        console.print(Text("GO" if verdict.go else "NO-GO", style="bold green" if verdict.go else "bold red"))
    if not verdict.go:
        raise typer.Exit(NO_GO_EXIT)


def _has_what_go_no_go_reads(state: VehicleState) -> bool:
    return all(
        value is not None
        for value in (state.position, state.heading_deg, state.gps_fix_type, state.ekf_flags, state.battery_voltage_v)
    )


OptionalBrokerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--broker",
        help="Over MQTT to the onboard daemon: mqtt://host[:port] or mqtts://... (TLS); repeat it for each broker "
        "of an active pair.",
    ),
]
OptionalDroneOption = Annotated[str | None, typer.Option("--drone", help="The drone's id, with --broker.")]
REFUSED_EXIT = 2


def send_command_or_exit(
    brokers: list[str],
    drone: str | None,
    credentials: tuple[str | None, Path | None, Path | None],
    data: dict[str, Any],
    *,
    timeout_s: float,
) -> dict[str, Any]:
    """A command to the drone's daemon over MQTT, and its command_result's data; exit 1 with no answer in time."""
    from flightctl.cli.broker_options import drone_or_exit, endpoints_or_exit
    from flightctl.ground.dispatch import new_request_id, request_message, send_request
    from flightctl.mqtt.contract import MessageType, Topics

    if drone is None:
        raise fail(FlightctlError("--broker needs --drone, the drone's id"))
    endpoints = endpoints_or_exit(brokers, *credentials)
    drone = drone_or_exit(drone)
    request_id = new_request_id()
    payload = request_message(drone, MessageType.COMMAND, {"request_id": request_id, **data})
    what = f"{data['command']} command"

    async def go() -> dict[str, Any]:
        answer = await send_request(
            endpoints, drone, Topics(drone).commands, payload, request_id, what, timeout_s=timeout_s
        )
        return dict(answer.data)

    return run(go)


def show_result(as_json: bool, result: dict[str, Any]) -> None:
    """A command's result: ``ok`` and the drone's words; exit 2 when it was refused."""
    if as_json:
        report(True, {"ok": result["ok"], "result": result["result"]}, "")
    else:
        console.print(Text(result["result"], style="green" if result["ok"] else "bold red"))
    if not result["ok"]:
        raise typer.Exit(REFUSED_EXIT)


@leg_app.command("unloaded")
def unloaded(
    order_id: Annotated[str, typer.Argument(help="The leg's order id, as its journal holds it.")],
    by: Annotated[str, typer.Option("--by", help="Who confirms the unload: a name or a crew id, journaled.")],
    journal: Annotated[
        Path | None, typer.Option("--journal", help="The SQLite journal the leg was flown with (no daemon).")
    ] = None,
    broker: OptionalBrokerOption = None,
    drone: OptionalDroneOption = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    timeout_s: AnswerTimeoutOption = 60,
    as_json: JsonOption = False,
) -> None:
    """The ground crew's confirmation that a leg's load is off the aircraft: journals UNLOADED, once, for a leg
    that ARRIVED at its destination; the return leg's go/no-go requires it. Give --journal (a leg flown without
    the daemon) or --broker and --drone (the onboard daemon, over MQTT). Exit 0 confirmed, 2 refused (the leg is
    not ARRIVED, or was unloaded already), 1 on error."""
    if (journal is None) == (broker is None):
        raise fail(FlightctlError("give --journal (a leg flown without the daemon) or --broker with --drone"))
    if broker is not None:
        data = {"command": "unloaded", "order_id": order_id, "by": by}
        result = send_command_or_exit(broker, drone, (username, password_file, ca_file), data, timeout_s=timeout_s)
        show_result(as_json, result)
        return
    from flightctl.delivery.journal import Journal
    from flightctl.delivery.unload import confirm_unload

    assert journal is not None
    if not journal.is_file():
        raise fail(FlightctlError(f"{journal}: no such journal"))

    async def confirm() -> None:
        async with await Journal.open(journal) as the_journal:
            await confirm_unload(the_journal, order_id, by=by)

    run(confirm)
    report(as_json, {"order_id": order_id, "state": "UNLOADED", "by": by}, f"{order_id}: unload confirmed by {by}")


@leg_app.command("report-wind")
def report_wind(
    broker: BrokersOption,
    drone: Annotated[str, typer.Option("--drone", help="The drone's id (its topic namespace).")],
    wind: AirstripWindOption = None,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    ca_file: CaFileOption = None,
    timeout_s: AnswerTimeoutOption = 60,
    as_json: JsonOption = False,
) -> None:
    """Send the drone's daemon a new surface wind measured at an airstrip of the leg it flies (each
    --airstrip-wind, with @TIME): a destination now out of limits diverts the aircraft by the leg's rule. Exit 0
    passed on, 2 refused (no leg in progress, an airstrip not of the leg, older than the wind held), 1 on error."""
    winds = airstrip_winds_or_exit(wind, need_time=True)
    if not winds:
        raise fail(FlightctlError("give at least one --airstrip-wind ICAO=FROM/SPEED@TIME"))
    credentials = (username, password_file, ca_file)
    results = []
    for icao, measured in winds.items():
        data = {"command": "airstrip_wind", "icao": icao, "wind": measured.model_dump(mode="json", exclude_none=True)}
        result = send_command_or_exit(broker, drone, credentials, data, timeout_s=timeout_s)
        results.append({"icao": icao, "ok": result["ok"], "result": result["result"]})
    if as_json:
        report(True, {"results": results}, "")
    else:
        for result in results:
            console.print(Text(result["result"], style="green" if result["ok"] else "bold red"))
    if not all(result["ok"] for result in results):
        raise typer.Exit(REFUSED_EXIT)
