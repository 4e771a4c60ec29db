"""Go/no-go on the battery and the wind, and the in-flight wind from two sources: decisions on data."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from flightctl.delivery.decide import Observed, wind_in_flight
from flightctl.delivery.history import History
from flightctl.delivery.order import WindRules
from flightctl.delivery.planner import plan_delivery
from flightctl.delivery.wind import GRAVITY_M_S2, GroundWind, own_wind_estimate, vehicle_estimates_wind
from flightctl.errors import ConfigError
from flightctl.vehicle.telemetry import VehicleState
from tests.unit.test_delivery_planning import PROFILE, SITE, go_no_go, healthy_state, order

PLAN = plan_delivery(order("kirkwall-1500m-place"), SITE, PROFILE)
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def failed(**state_changes: object) -> dict[str, str]:
    state = healthy_state()
    for name, value in state_changes.items():
        setattr(state, name, value)
    return {c.name: c.detail for c in go_no_go(PLAN, state).failed}


def test_a_pack_below_the_abort_voltage_is_a_nogo_on_the_abort_threshold() -> None:
    """Test that the in-flight abort voltage is go/no-go's threshold too: a GO is never followed by that abort."""
    assert failed(battery_voltage_v=10.6) == {"battery voltage": "10.60 V (abort below 10.8 V)"}
    assert failed(battery_voltage_v=10.8) == {}


def test_a_pack_at_15_percent_is_a_nogo_naming_the_energy() -> None:
    """Test that a pack with 15 % left cannot fly a route that needs more, with the numbers."""
    problems = failed(battery_remaining_pct=15)
    assert set(problems) == {"energy"}
    assert "has 24.0 Wh" in problems["energy"]


def test_energy_already_used_on_this_pack_counts() -> None:
    """Test that a second order on the pack the first one used is judged on what is left (the lower measure)."""
    problems = failed(battery_consumed_wh=120.0, battery_remaining_pct=70)
    assert "has 40.0 Wh" in problems["energy"]


def test_no_battery_figures_is_a_nogo_not_a_full_pack() -> None:
    """Test that no voltage and no remaining capacity are NO-GOs that say what is missing."""
    problems = failed(battery_voltage_v=None, battery_remaining_pct=None, battery_consumed_wh=None)
    assert problems["battery voltage"] == "the autopilot reports no battery voltage"
    assert "reports no remaining capacity" in problems["energy"]


def test_an_unreported_remaining_capacity_may_be_judged_by_consumed_energy_when_the_profile_says_so() -> None:
    """Test the profile's way to judge a pack reported without a remaining figure."""
    assert "reports no remaining capacity" in failed(battery_remaining_pct=None)["energy"]
    lenient = PROFILE.model_copy(
        update={"battery": PROFILE.battery.model_copy(update={"unreported_remaining": "judge_by_consumed"})}
    )
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, lenient)
    state = healthy_state()
    state.battery_remaining_pct = None
    assert go_no_go(plan, state).go


def test_no_ground_wind_is_a_nogo_saying_the_wind_is_unknown() -> None:
    """Test that without a ground measurement the wind is unknown, not calm (the EKF's 0 on the ground is not read)."""
    verdict = go_no_go(PLAN, healthy_state(), wind_m_s=None)
    assert {c.name: c.detail for c in verdict.failed} == {
        "ground wind": "no ground wind measurement for the depot: the wind is unknown"
    }


def test_a_stale_or_strong_ground_wind_is_a_nogo() -> None:
    """Test the measurement's age and speed against the profile's limits."""
    stale = GroundWind(3.0, datetime.now(UTC) - timedelta(hours=2), "station")
    verdict = go_no_go(PLAN, healthy_state(), ground_wind=stale)
    assert "(station) is 120 min old (limit 30 min)" in {c.name: c.detail for c in verdict.failed}["ground wind"]
    strong = {c.name: c.detail for c in go_no_go(PLAN, healthy_state(), wind_m_s=11.0).failed}
    assert strong["ground wind"].startswith("11.0 m/s (limit 10 m/s), station")


def test_the_energy_is_planned_with_the_measured_ground_wind_as_headwind() -> None:
    """Test that a stronger measured wind needs more energy (the EKF's 0 on the ground plays no part)."""
    calm = go_no_go(PLAN, healthy_state(), wind_m_s=0.0)
    windy = go_no_go(PLAN, healthy_state(), wind_m_s=8.0)
    energy = {
        v: next(c.detail for c in verdict.checks if c.name == "energy")
        for v, verdict in (("calm", calm), ("windy", windy))
    }
    assert energy["calm"] != energy["windy"]


def test_nothing_to_estimate_wind_in_flight_is_a_nogo() -> None:
    """Test that a vehicle without drag fusion and a profile without a drag model cannot fly: no wind rule works."""
    blind = PROFILE.model_copy(update={"wind": WindRules()})
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, blind)
    verdict = go_no_go(plan, healthy_state(), vehicle_estimates_wind=False)
    assert "nothing can estimate the wind in flight" in {c.name: c.detail for c in verdict.failed}["wind in flight"]
    assert go_no_go(plan, healthy_state(), vehicle_estimates_wind=True).go


def test_drag_fusion_parameters_tell_whether_the_vehicle_estimates_wind() -> None:
    """Test the EK3_DRAG_BCOEF_X/Y rule: both set means the EKF estimates wind."""
    assert vehicle_estimates_wind({"EK3_DRAG_BCOEF_X": 9.5, "EK3_DRAG_BCOEF_Y": 9.5})
    assert not vehicle_estimates_wind({"EK3_DRAG_BCOEF_X": 0.0, "EK3_DRAG_BCOEF_Y": 0.0})
    assert not vehicle_estimates_wind({})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("fast", "expected SPEED or SPEED@TIME"),
        ("-3", "0 or more"),
        ("nan", "0 or more"),
        ("5@2026-11-28 10:00:00", "with its zone"),
        ("5@2030-01-01T00:00:00Z", "measured in the future"),
    ],
)
def test_ground_wind_text_is_validated(text: str, error: str) -> None:
    """Test that a malformed --depot-wind is refused with what is wrong."""
    with pytest.raises(ConfigError, match=error):
        GroundWind.parse(text, now=NOW)


def test_ground_wind_text_is_read_with_its_time() -> None:
    """Test SPEED and SPEED@TIME."""
    assert GroundWind.parse("7.5", now=NOW) == GroundWind(7.5, NOW, "command line")
    reading = GroundWind.parse("7.5@2026-11-28T11:40:00Z", now=NOW)
    assert reading.age_s(NOW) == 1200


RULES = WindRules(drag_bcoef_kg_m2=9.5, drag_mcoef_per_s=0.082)


def leaning_into(
    air_n: float, air_e: float, *, ground: tuple[float, float] = (0.0, 0.0), yaw_deg: float = 0.0
) -> VehicleState:
    """The attitude that holds ``ground`` velocity while moving through the air at (air_n, air_e)."""
    speed = math.hypot(air_n, air_e)
    force = 0.5 * 1.225 * speed**2 / 9.5 + 0.082 * speed
    north, east = (air_n / speed * force, air_e / speed * force) if speed else (0.0, 0.0)
    yaw = math.radians(yaw_deg)
    forward = north * math.cos(yaw) + east * math.sin(yaw)
    right = -north * math.sin(yaw) + east * math.cos(yaw)
    return VehicleState(
        armed=True,
        roll_deg=math.degrees(math.atan(right / GRAVITY_M_S2)),
        pitch_deg=math.degrees(math.atan(-forward / GRAVITY_M_S2)),
        yaw_deg=yaw_deg,
        velocity_ned_m_s=(ground[0], ground[1], 0.0),
    )


@pytest.mark.parametrize(
    ("state", "wind"),
    [
        (leaning_into(0.0, 0.0), 0.0),  # level hover in still air
        (leaning_into(11.0, 0.0), 11.0),  # holding still against 11 m/s from the north
        (leaning_into(6.0, 8.0, yaw_deg=130), 10.0),  # any heading: 10 m/s from the north-east
        (leaning_into(10.0, 0.0, ground=(10.0, 0.0)), 0.0),  # cruising at 10 m/s in still air
        (leaning_into(14.0, 0.0, ground=(10.0, 0.0)), 4.0),  # cruising north into 4 m/s from the north
    ],
)
def test_own_wind_estimate_from_lean_angle(state: VehicleState, wind: float) -> None:
    """Test the lean-angle estimate against the drag model it inverts, hovering and cruising, at any heading."""
    estimate = own_wind_estimate(state, RULES)
    assert estimate == pytest.approx(wind, abs=0.01)


def test_own_estimate_needs_a_drag_model_and_attitude() -> None:
    """Test that without the drag model or the attitude there is no estimate (None), not a zero."""
    assert own_wind_estimate(leaning_into(5.0, 0.0), WindRules()) is None
    assert own_wind_estimate(VehicleState(armed=True, velocity_ned_m_s=(0, 0, 0)), RULES) is None


def test_in_flight_wind_is_the_larger_source_and_ignores_a_blind_autopilot() -> None:
    """Test that the autopilot's 0 counts only when it can estimate wind, and the larger estimate wins."""
    blind, seeing = History(), History(vehicle_estimates_wind=True)
    calm_report = VehicleState(wind_speed_m_s=0.0)
    assert wind_in_flight(blind, Observed(calm_report)) == (None, "unknown")
    assert wind_in_flight(seeing, Observed(calm_report)) == (0.0, "autopilot estimate")
    assert wind_in_flight(seeing, Observed(calm_report, own_wind_m_s=12.0)) == (12.0, "own estimate from lean angle")
    assert wind_in_flight(blind, Observed(VehicleState(wind_speed_m_s=0.0), own_wind_m_s=3.0)) == (
        3.0,
        "own estimate from lean angle",
    )
