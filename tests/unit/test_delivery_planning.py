"""Orders, routing around no-fly zones, the planned mission's shape, energy and go/no-go."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import LineString

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.energy import air_km
from flightctl.delivery.order import DeliveryMethod, DeliveryOrder, Site, TimeWindow, VehicleProfile
from flightctl.delivery.planner import DeliveryPlan, plan_delivery
from flightctl.delivery.preflight import GoNoGo, preflight_checks
from flightctl.delivery.routing import LocalFrame, PlanningError, plan_route
from flightctl.delivery.wind import GroundWind
from flightctl.dialect import mavlink as m
from flightctl.errors import ConfigError
from flightctl.geo import AltFrame, Location, distance_m
from flightctl.missions.ardupilot import Firmware
from flightctl.missions.model import MissionType
from flightctl.missions.verify import expected_on_vehicle
from flightctl.vehicle.telemetry import EKF_NAV_READY, VehicleState

SITE = read_yaml_model(named_config("sites", "kirkwall"), Site)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)


def order(name: str) -> DeliveryOrder:
    return read_yaml_model(named_config("orders", name), DeliveryOrder)


def healthy_state() -> VehicleState:
    return VehicleState(
        gps_fix_type=3,
        gps_satellites=12,
        ekf_flags=EKF_NAV_READY,
        home=SITE.home(),
        wind_speed_m_s=0.0,  # on the ground the EKF says 0 whatever the wind: go/no-go must not read it
        time_boot_ms=1000,
        battery_voltage_v=12.6,
        battery_remaining_pct=100,
        battery_consumed_wh=0.5,
    )


def go_no_go(plan: DeliveryPlan, state: VehicleState, *, wind_m_s: float | None = 2.0, **changes: Any) -> GoNoGo:
    """Go/no-go with a fresh ground wind reading (or none), the vehicle able to estimate wind in flight."""
    now = datetime.now(UTC)
    ground = None if wind_m_s is None else GroundWind(wind_m_s, now - timedelta(minutes=5), "station")
    arguments: dict[str, Any] = {
        "parcel_gripped": True,
        "now_utc": now,
        "ground_wind": ground,
        "vehicle_estimates_wind": True,
    }
    return preflight_checks(plan, state, **(arguments | changes))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "order_id: 'a b'\ndrop: {lat: 58.95, lon: -2.93}\ndrop_zone: {radius_m: 5}\nmethod: winch\nparcel_kg: 1\n",
            "order_id: String should match pattern",
        ),
        (
            "order_id: X1\ndrop: {lat: 58.95, lon: -2.93}\ndrop_zone: {radius_m: 5, polygon: []}\nmethod: winch\nparcel_kg: 1\n",
            "not both or neither",
        ),
        (
            "order_id: X1\ndrop: {lat: 98.95, lon: -2.93}\ndrop_zone: {radius_m: 5}\nmethod: winch\nparcel_kg: 1\n",
            "drop.lat: Input should be less than or equal to 90",
        ),
        (
            "order_id: X1\ndrop: {lat: 58.95, lon: -2.93}\ndrop_zone: {radius_m: 5}\nmethod: catapult\nparcel_kg: 1\n",
            "method: Input should be",
        ),
        (
            "order_id: X1\ndrop: {lat: 58.95, lon: -2.93}\ndrop_zone: {radius_m: 5}\nmethod: winch\nparcel_kg: 1\ncustomer: bob\n",
            "customer: Extra inputs are not permitted",
        ),
        ("order_id: [\n", "not valid YAML"),
    ],
)
def test_bad_orders_are_rejected_with_field_and_reason(tmp_path: Path, text: str, message: str) -> None:
    """Test that a malformed order file names the file, the field and the problem."""
    path = tmp_path / "order.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        read_yaml_model(path, DeliveryOrder)
    assert str(path) in str(caught.value)


def test_example_orders_cover_every_method_1_to_3_km() -> None:
    """Test the shipped Kirkwall examples: every drop method, drop points 1-3 km from the depot (plus the NO-GO one)."""
    plans = [
        plan_delivery(order(p.stem), SITE, PROFILE) for p in sorted(named_config("orders", "x").parent.glob("*.yaml"))
    ]
    methods = {plan.order.method for plan in plans if 1.0 <= plan.outbound_km <= 3.0}
    assert methods == set(DeliveryMethod)


def test_straight_route_when_nothing_is_in_the_way() -> None:
    """Test that an unobstructed drop gets no intermediate waypoints."""
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, PROFILE)
    waypoints = [i for i in plan.mission.mission[3 : plan.gate_seq] if i.command == m.MAV_CMD_NAV_WAYPOINT]
    assert len(waypoints) == 1, "only the point above the drop"


def test_route_bends_around_the_no_fly_zone() -> None:
    """Test that the route to a drop behind the school keeps out of the school's polygon, both ways."""
    plan = plan_delivery(order("kirkwall-1200m-height"), SITE, PROFILE)
    frame = LocalFrame(SITE.home())
    school = frame.polygon(SITE.no_fly[0].polygon)
    path = [SITE.home(), *(loc for _seq, _i, loc in plan.mission.route() if (loc.lat_e7, loc.lon_e7) != (0, 0))]
    line = LineString([frame.xy(p.lat_deg, p.lon_deg) for p in path])
    assert not line.intersects(school)
    assert line.distance(school) >= 49.0
    assert plan.outbound_km > 1.2, "the detour is longer than the straight line"


def test_drop_inside_a_no_fly_zone_is_refused() -> None:
    """Test that a drop point inside a no-fly zone cannot be planned."""
    school = SITE.no_fly[0].polygon
    inside = Location(sum(p.lat for p in school) / 4, sum(p.lon for p in school) / 4, 40, AltFrame.RELATIVE)
    with pytest.raises(PlanningError, match="drop point is inside a no-fly zone"):
        plan_route(SITE.home(), inside, no_fly=[school], operating_area=SITE.operating_area, margin_m=50, alt_m=40)


def test_drop_outside_the_operating_area_is_refused() -> None:
    """Test that a drop point beyond the operating area cannot be planned."""
    far = Location(59.2, -2.96, 40, AltFrame.RELATIVE)
    with pytest.raises(PlanningError, match="drop point is outside the operating area"):
        plan_route(SITE.home(), far, no_fly=[], operating_area=SITE.operating_area, margin_m=50, alt_m=40)


@pytest.mark.parametrize("name", ["kirkwall-1500m-place", "kirkwall-1200m-height", "kirkwall-2000m-winch"])
def test_planned_mission_shape(name: str) -> None:
    """Test the gate and its way out: a timed hold above the drop, then a DO_JUMP to the climb (home with the
    parcel if no go-ahead comes); the drop items follow; it ends landing at the depot; ArduPilot can store it."""
    plan = plan_delivery(order(name), SITE, PROFILE)
    items = plan.mission.mission
    gate = items[plan.gate_seq]
    assert gate.command == m.MAV_CMD_NAV_LOITER_TIME
    assert gate.param1 == PROFILE.drop.gate_timeout_s
    assert items[plan.gate_seq + 1].command == m.MAV_CMD_DO_JUMP
    assert items[plan.gate_seq + 1].param1 == plan.climb_seq
    assert plan.drop_seq == plan.gate_seq + 2
    if plan.order.method is DeliveryMethod.PAYLOAD_PLACE:
        assert items[plan.drop_seq].command == m.MAV_CMD_NAV_PAYLOAD_PLACE
        assert plan.release_hold_seq is None
    else:
        assert plan.release_hold_seq is not None
        assert items[plan.release_hold_seq].command == m.MAV_CMD_NAV_LOITER_TIME
        assert items[plan.release_hold_seq + 1].param1 == plan.climb_seq
    assert not any(i.command == m.MAV_CMD_DO_GRIPPER for i in items), "no release the controller did not decide"
    assert items[plan.land_seq].command == m.MAV_CMD_NAV_LAND
    assert items[plan.land_seq].location() is not None
    expected = expected_on_vehicle(plan.mission, Firmware.COPTER)
    assert len(expected.mission) == len(items)
    assert plan.mission.items(MissionType.FENCE)[0].command == m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
    assert len(plan.mission.rally) == len(SITE.rally)


def test_headwind_stretches_the_air_distance() -> None:
    """Test the wind term: 5 m/s against 10 m/s doubles the air distance; wind as fast as cruise is impossible."""
    assert air_km(1.0, 10, 5) == pytest.approx(2.0)
    assert air_km(1.0, 10, 0) == pytest.approx(1.0)
    assert math.isinf(air_km(1.0, 10, 10))


def test_go_when_all_is_well() -> None:
    """Test that the 1.5 km example is a GO on a healthy vehicle, every check reported."""
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, PROFILE)
    verdict = go_no_go(plan, healthy_state())
    assert verdict.go, verdict.report()
    assert {c.name for c in verdict.checks} >= {
        "gps",
        "ekf",
        "home",
        "parcel gripped",
        "parcel mass",
        "battery voltage",
        "ground wind",
        "wind in flight",
        "energy",
        "operating area",
    }


def test_nogo_lists_every_failure_with_numbers() -> None:
    """Test that several problems at once are all reported, each with its numbers."""
    heavy = order("kirkwall-4500m-heavy").model_copy(
        update={"parcel_kg": 3.0, "window": TimeWindow(not_after=datetime.now(UTC) - timedelta(hours=1))}
    )
    plan = plan_delivery(heavy, SITE, PROFILE)
    state = healthy_state()
    state.gps_satellites = 4
    state.home = Location(58.97, -2.96, 20, AltFrame.ABSOLUTE)
    verdict = go_no_go(plan, state, wind_m_s=12.0, parcel_gripped=False)
    failed = {c.name: c.detail for c in verdict.failed}
    assert set(failed) == {"gps", "home", "parcel gripped", "parcel mass", "ground wind", "energy", "time window"}
    assert "4 satellites" in failed["gps"]
    assert "3 kg (limit 2.5 kg)" in failed["parcel mass"]
    assert "12.0 m/s (limit 10 m/s)" in failed["ground wind"]
    assert "has 159.5 Wh" in failed["energy"]
    assert "m from the depot" in failed["home"]


def test_a_site_names_the_time_zone_its_customers_read_and_a_wrong_one_is_refused(tmp_path: Path) -> None:
    """Test that the shipped site reads its customers' times in Europe/London, and a site file with a zone this
    machine does not know is refused naming the key."""
    assert SITE.timezone == "Europe/London"
    text = named_config("sites", "kirkwall").read_text().replace("timezone: Europe/London", "timezone: Orkney/Kirkwall")
    wrong = tmp_path / "site.yaml"
    wrong.write_text(text)
    with pytest.raises(ConfigError, match="timezone: Value error, 'Orkney/Kirkwall' is not a time zone this machine"):
        read_yaml_model(wrong, Site)


def test_a_local_frame_is_made_once_per_origin_and_thread_and_stays_exact() -> None:
    """Test that the projection for an origin is built once (it costs tens of milliseconds of the daemon's loop
    per order otherwise) and reused for every later plan from there, that another origin or another thread gets
    its own, and that the reused frame still maps the origin to (0, 0) and back."""
    depot = Location(58.9580, -2.9590, 0.0, AltFrame.ABSOLUTE)
    first, again = LocalFrame(depot), LocalFrame(depot)
    assert first._forward is again._forward  # the same transformers, not rebuilt
    assert LocalFrame(Location(59.3, -2.4, 0.0, AltFrame.ABSOLUTE))._forward is not first._forward
    elsewhere: list[LocalFrame] = []
    worker = threading.Thread(target=lambda: elsewhere.append(LocalFrame(depot)))
    worker.start()
    worker.join(timeout=30)
    assert elsewhere[0]._forward is not first._forward, "a pyproj Transformer is not shared between threads"
    x, y = again.xy(depot.lat_deg, depot.lon_deg)
    assert abs(x) < 1e-6
    assert abs(y) < 1e-6
    back = again.location(1000.0, 0.0, 0.0, AltFrame.ABSOLUTE)
    assert distance_m(back, depot) == pytest.approx(1000.0, abs=0.01)
