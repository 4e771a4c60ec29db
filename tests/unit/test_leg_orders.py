"""Island legs over MQTT, as data: the leg order and the leg commands as the daemon reads them (every mistake
refused with its reason), and what the daemon checks before a leg's go/no-go. No broker, no vehicle."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.daemon.leg_admission import leg_flight_or_problem, leg_order_problems
from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.leg_files import load_legs
from flightctl.delivery.order import DeliveryOrder, VehicleProfile
from flightctl.geo import AltFrame, Location
from flightctl.mqtt.requests import CommandRequest, OrderRequest, Refused, parse_command, parse_order
from flightctl.vehicle.telemetry import VehicleState

DRONE = "orkney-plane-2"
PLANE = read_yaml_model(named_config("profiles", "sitl-plane"), VehicleProfile)
QUAD = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)
DROP = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder).model_dump(
    mode="json", exclude_none=True
)
LEGS = load_legs(["kirkwall-north-ronaldsay", "north-ronaldsay-kirkwall"])
NOW = "2026-12-01T09:35:00Z"


def message(data: Any, *, type_: str = "order") -> bytes:
    record = {"schema": 1, "drone": DRONE, "time": NOW, "time_source": "sender", "type": type_, "data": data}
    return json.dumps(record).encode()


def wind(from_deg: float, speed: float, **more: Any) -> dict[str, Any]:
    return {"from_deg": from_deg, "speed_m_s": speed, "measured_at": NOW, **more}


def leg_data(**changes: Any) -> dict[str, Any]:
    data = {
        "request_id": "disp-1",
        "leg": {"order_id": "KWL-NRL-1", "leg": "kirkwall-north-ronaldsay", "parcel_kg": 2.0},
        "airstrip_winds": {"EGPA": wind(30, 3), "EGEN": wind(30, 5), "EGES": wind(30, 4)},
        "wind_aloft": {"from_deg": 250, "speed_m_s": 10},
    }
    return data | changes


def read_leg(**changes: Any) -> OrderRequest:
    request = parse_order(message(leg_data(**changes)), DRONE)
    assert isinstance(request, OrderRequest), request
    return request


def test_a_leg_order_is_read_with_its_winds_and_compared_without_them() -> None:
    """Test that a leg order is read, names its order id, and that what a repeat is compared with is the leg alone
    (the same leg sent again with a newer wind is the same order)."""
    request = read_leg()
    assert request.order_id == "KWL-NRL-1"
    assert request.airstrip_winds is not None
    assert request.airstrip_winds["EGEN"].speed_m_s == 5
    assert request.what() == {"leg": {"order_id": "KWL-NRL-1", "leg": "kirkwall-north-ronaldsay", "parcel_kg": 2.0}}
    assert read_leg(airstrip_winds={"EGEN": wind(30, 9), "EGES": wind(30, 4)}).what() == request.what()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"order": DROP}, "exactly one of them"),
        ({"leg": None}, "exactly one of them"),
        ({"wind_aloft": None}, "a leg needs wind_aloft"),
        ({"depot_wind": {"speed_m_s": 3, "measured_at": NOW}}, "depot_wind goes with a drop order"),
        ({"airstrip_winds": {"EGEN": {"from_deg": 30, "speed_m_s": 5}}}, "airstrip_winds.EGEN: give measured_at"),
        ({"airstrip_winds": {"egen": wind(30, 5)}}, "data.airstrip_winds"),
        ({"airstrip_winds": {f"EGA{c}": wind(30, 5) for c in "ABCD"}}, "at most 3 items"),
        ({"airstrip_winds": {"EGEN": wind(400, 5)}}, "less than or equal to 360"),
        ({"airstrip_winds": {"EGEN": wind(30, "5")}}, "data.airstrip_winds.EGEN.speed_m_s: Input should be a valid number"),
        ({"wind_aloft": {"from_deg": 250, "speed_m_s": True}}, "data.wind_aloft.speed_m_s: Input should be a valid number"),
        ({"leg": {"order_id": "A", "leg": "../../etc/passwd", "parcel_kg": 1}}, "data.leg.leg"),
        ({"leg": {"order_id": "A", "leg": "kirkwall-north-ronaldsay", "parcel_kg": 1, "customer": "Ann"}},
         "data.leg.customer: Extra inputs are not permitted"),
        ({"leg": {"order_id": "A", "leg": "kirkwall-north-ronaldsay", "parcel_kg": -1}}, "data.leg.parcel_kg"),
    ],
)  # fmt: skip
def test_a_bad_leg_order_is_refused_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    """Test that a leg order with both kinds, neither, a wind of unknown age, a bad ICAO, too many airstrips, a
    path for a leg name or a customer's name is refused with a reason naming the mistake."""
    refused = parse_order(message({k: v for k, v in leg_data(**changes).items() if v is not None}), DRONE)
    assert isinstance(refused, Refused)
    assert any(reason in r for r in refused.reasons), refused.reasons


def test_a_refused_leg_is_answered_under_its_order_id() -> None:
    refused = parse_order(message(leg_data(wind_aloft={"from_deg": "west"})), DRONE)
    assert isinstance(refused, Refused)
    assert (refused.request_id, refused.order_id) == ("disp-1", "KWL-NRL-1")


def test_a_drop_order_takes_no_airstrip_winds() -> None:
    refused = parse_order(message({"request_id": "r", "order": DROP, "airstrip_winds": {}}), DRONE)
    assert isinstance(refused, Refused)
    assert any("airstrip_winds and wind_aloft go with a leg" in r for r in refused.reasons), refused.reasons


def command(**data: Any) -> CommandRequest | Refused:
    return parse_command(message({"request_id": "c-1", **data}, type_="command"), DRONE)


def test_the_leg_commands_are_read_with_what_they_need() -> None:
    unloaded = command(command="unloaded", order_id="KWL-NRL-1", by="NRL crew 2")
    assert isinstance(unloaded, CommandRequest)
    assert (unloaded.order_id, unloaded.by) == ("KWL-NRL-1", "NRL crew 2")
    reported = command(command="airstrip_wind", icao="EGEN", wind=wind(120, 11, gust_m_s=16))
    assert isinstance(reported, CommandRequest)
    assert reported.wind is not None
    assert reported.wind.design_speed_m_s == 16


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"command": "unloaded", "order_id": "KWL-NRL-1"}, "unloaded needs by"),
        ({"command": "unloaded", "by": "crew"}, "unloaded needs order_id"),
        ({"command": "unloaded", "order_id": "KWL-NRL-1", "by": "crew\nFAKE LOG LINE"}, "data.by"),
        ({"command": "unloaded", "order_id": "KWL-NRL-1", "by": "x" * 81}, "data.by"),
        ({"command": "unloaded", "order_id": "../x", "by": "crew"}, "data.order_id"),
        ({"command": "airstrip_wind", "icao": "EGEN"}, "airstrip_wind needs wind"),
        ({"command": "airstrip_wind", "icao": "EGEN", "wind": {"from_deg": 1, "speed_m_s": 2}}, "give measured_at"),
        ({"command": "airstrip_wind", "icao": "EGEN", "wind": wind(1, 2), "by": "crew"}, "takes no by"),
        ({"command": "abort", "icao": "EGEN"}, "abort takes no icao"),
        ({"command": "status", "order_id": "KWL-NRL-1"}, "status takes no order_id"),
    ],
)
def test_a_leg_command_missing_or_with_a_field_it_does_not_take_is_refused(data: dict[str, Any], reason: str) -> None:
    refused = command(**data)
    assert isinstance(refused, Refused)
    assert any(reason in r for r in refused.reasons), refused.reasons
    assert refused.request_id == "c-1"


# ---- what the daemon checks before the leg's go/no-go -----------------------------------------------------------

ON_THE_GROUND = VehicleState(position=Location(58.957, -2.905, 0.0, AltFrame.ABSOLUTE))


def test_a_leg_the_aircraft_can_fly_has_no_problems_and_is_planned_for_the_winds_it_came_with() -> None:
    request = read_leg()
    assert leg_order_problems(request, LEGS, PLANE, ON_THE_GROUND, link_up=True) == []
    flight = leg_flight_or_problem(request, LEGS["kirkwall-north-ronaldsay"], PLANE)
    assert isinstance(flight, LegDelivery)
    assert (flight.order_id, flight.parcel_kg, flight.follows) == ("KWL-NRL-1", 2.0, None)
    assert flight.plan.landing.end.name.endswith("03")  # into the wind from 030
    assert flight.wind_aloft.speed_m_s == 10
    assert flight.winds["EGEN"].measured_at == datetime(2026, 12, 1, 9, 35, tzinfo=UTC)


def test_every_reason_the_daemon_will_not_take_a_leg_is_given() -> None:
    request = read_leg(
        leg={"order_id": "X-1", "leg": "newquay-st-marys", "parcel_kg": 900.0},
    )
    problems = leg_order_problems(request, LEGS, PLANE, VehicleState(armed=True), link_up=True)
    assert problems == [
        "leg 'newquay-st-marys' is not one this aircraft is configured for "
        "(it flies: kirkwall-north-ronaldsay, north-ronaldsay-kirkwall)",
        f"load 900 kg is over this aircraft's {PLANE.max_payload_kg:g} kg",
        "the vehicle is armed: not on the ground at its departure airstrip",
        "the vehicle has not reported a position",
    ]
    foreign = read_leg(airstrip_winds={"EGEN": wind(30, 5), "EGES": wind(30, 4), "EGHE": wind(0, 1)})
    assert leg_order_problems(foreign, LEGS, PLANE, ON_THE_GROUND, link_up=False) == [
        "airstrip_winds: EGHE is not an airstrip of leg kirkwall-north-ronaldsay (EGEN, EGES, EGPA)",
        "the autopilot link is down",
    ]
    assert leg_order_problems(read_leg(), LEGS, QUAD, ON_THE_GROUND, link_up=True)[0] == (
        "this aircraft is a multirotor: it flies drops, not island legs"
    )


def test_a_destination_with_no_runway_for_its_wind_is_refused_with_the_runways_numbers() -> None:
    crosswind = read_leg(airstrip_winds={"EGEN": wind(120, 14), "EGES": wind(30, 4)})
    problem = leg_flight_or_problem(crosswind, LEGS["kirkwall-north-ronaldsay"], PLANE)
    assert isinstance(problem, str)
    assert problem.startswith("no plan for leg kirkwall-north-ronaldsay: ")
    assert "crosswind" in problem
    assert "03" in problem
    assert "21" in problem
    missing = leg_flight_or_problem(
        read_leg(airstrip_winds={"EGEN": wind(30, 5)}), LEGS["kirkwall-north-ronaldsay"], PLANE
    )
    assert missing == (
        "no plan for leg kirkwall-north-ronaldsay: no measured wind for Sanday (EGES): a runway cannot be chosen"
    )


# ---- the CLI's mistakes, caught before anything is sent -----------------------------------------------------------

BROKER = ["--broker", "mqtt://127.0.0.1:1", "--drone", DRONE]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["leg", "unloaded", "KWL-NRL-1", "--by", "crew"], "give --journal (a leg flown without the daemon) or --broker"),
        (["leg", "unloaded", "KWL-NRL-1", "--by", "crew", "--journal", "j.sqlite", *BROKER], "give --journal"),
        (["leg", "unloaded", "KWL-NRL-1", "--by", "crew", "--broker", "mqtt://127.0.0.1:1"], "--broker needs --drone"),
        (["leg", "report-wind", *BROKER], "give at least one --airstrip-wind"),
        (["leg", "report-wind", *BROKER, "--airstrip-wind", "EGEN=030/4"], "say when it was measured"),
        (["leg", "report-wind", *BROKER, "--airstrip-wind", "EGN=030/4@2026-12-01T09:40Z"], "expected ICAO=FROM/SPEED"),
        (["order", "leg", "kirkwall-north-ronaldsay", "--order-id", "A-1", "--parcel-kg", "2", "--aloft-wind",
          "250/10", *BROKER, "--airstrip-wind", "EGEN=030/4"], "say when it was measured"),
        (["order", "leg", "../etc", "--order-id", "A-1", "--parcel-kg", "2", "--aloft-wind", "250/10", *BROKER],
         "leg A-1: leg: String should match pattern"),
        (["order", "leg", "kirkwall-north-ronaldsay", "--order-id", "A-1", "--parcel-kg", "2", "--aloft-wind",
          "west", *BROKER], "wind 'west': expected FROM/SPEED"),
    ],
)  # fmt: skip
def test_the_leg_commands_refuse_a_mistake_before_sending_anything(arguments: list[str], said: str) -> None:
    """Test that the CLI's leg orders and commands say what is wrong (exit 1) before they reach for the broker
    (which is not there: port 1)."""
    from typer.testing import CliRunner

    from flightctl.cli import app

    result = CliRunner().invoke(app, arguments, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert said in " ".join(result.output.split()), result.output


def test_an_airstrip_wind_goes_to_the_leg_flying_only_if_it_is_one_of_its_airstrips_and_newer() -> None:
    """Test the daemon's answer to a reported airstrip wind, as data: taken for the leg's own airstrips when it is
    newer than the one held; refused with no leg flying, for another airstrip, or when it is older."""
    from flightctl.daemon.leg_commands import airstrip_wind
    from flightctl.delivery.runway_choice import SurfaceWind

    flight = leg_flight_or_problem(read_leg(), LEGS["kirkwall-north-ronaldsay"], PLANE)
    assert isinstance(flight, LegDelivery)

    def report(icao: str, at: str) -> CommandRequest:
        request = command(
            command="airstrip_wind", icao=icao, wind={"from_deg": 120, "speed_m_s": 11, "measured_at": at}
        )
        assert isinstance(request, CommandRequest)
        return request

    newer = report("EGEN", "2026-12-01T10:00:00Z")
    taken = airstrip_wind(flight, "KWL-NRL-1", {}, newer)
    assert (taken.ok, taken.result, taken.order_id) == (
        True,
        "EGEN 120 deg at 11 m/s passed to leg KWL-NRL-1",
        "KWL-NRL-1",
    )
    assert airstrip_wind(None, None, {}, newer).result == "no island leg in progress"
    foreign = airstrip_wind(flight, "KWL-NRL-1", {}, report("EGHE", "2026-12-01T10:00:00Z"))
    assert (foreign.ok, foreign.result) == (
        False,
        "EGHE is not an airstrip of leg Kirkwall to North Ronaldsay (EGPA, EGEN, EGES)",
    )
    older = airstrip_wind(flight, "KWL-NRL-1", {}, report("EGEN", "2026-12-01T09:00:00Z"))  # the order's is 09:35
    assert not older.ok
    assert older.result.startswith("older than the EGEN wind already held (030 deg at 5 m/s")
    held = {"EGEN": SurfaceWind.parse("030/5@2026-12-01T10:30Z")}
    assert not airstrip_wind(flight, "KWL-NRL-1", held, newer).ok, "a wind reported since the order counts too"
