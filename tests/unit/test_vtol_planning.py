"""A VTOL's delivery plan: the multirotor's shape, with its own take-off, hover, transitions and landing."""

from __future__ import annotations

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.order import DeliveryMethod, VehicleProfile
from flightctl.delivery.planner import VTOL_HOVER_FROM_M, plan_delivery
from flightctl.delivery.routing import PlanningError
from flightctl.delivery.wind import vehicle_estimates_wind
from flightctl.dialect import mavlink as m
from flightctl.geo import distance_m
from flightctl.missions.model import MissionType
from tests.unit.test_delivery_planning import PROFILE, SITE, order

VTOL = read_yaml_model(named_config("profiles", "sitl-vtol"), VehicleProfile)
PLANE = read_yaml_model(named_config("profiles", "sitl-plane"), VehicleProfile)


def test_a_vtol_plan_takes_off_and_lands_on_its_lift_motors_and_hovers_from_short_of_the_drop() -> None:
    """Test the VTOL mission item by item where it differs from the quad's: VTOL take-off, airspeed, a point on
    the wing 300 m short of the drop, the transition to hover before the drop, the gate and release hold as the
    quad's, the transition to the wing after the climb, and a VTOL landing at the depot."""
    plan = plan_delivery(order("kirkwall-1200m-height"), SITE, VTOL)
    items = plan.mission.items(MissionType.MISSION)
    assert items[1].command == m.MAV_CMD_NAV_VTOL_TAKEOFF
    assert items[1].z == VTOL.cruise_alt_m
    assert (items[2].command, items[2].param1, items[2].param2) == (m.MAV_CMD_DO_CHANGE_SPEED, 0, 22)
    to_hover = next(i for i, item in enumerate(items) if item.command == m.MAV_CMD_DO_VTOL_TRANSITION)
    assert items[to_hover].param1 == 3
    short, above = items[to_hover - 1].location(), items[to_hover + 1].location()
    assert short is not None
    assert above is not None
    # The route's last corner past the school is under 600 m from the drop: the hover starts there.
    assert VTOL_HOVER_FROM_M <= distance_m(short, above) <= 2 * VTOL_HOVER_FROM_M
    assert to_hover + 2 == plan.gate_seq, "the transition to hover comes before the drop and the gate"
    assert items[plan.climb_seq + 1].command == m.MAV_CMD_DO_VTOL_TRANSITION
    assert items[plan.climb_seq + 1].param1 == 4
    assert items[plan.land_seq].command == m.MAV_CMD_NAV_VTOL_LAND
    assert plan.land_seq == len(items) - 1
    quad = plan_delivery(order("kirkwall-1200m-height"), SITE, PROFILE)
    assert [item.command for item in quad.mission.mission].count(m.MAV_CMD_DO_VTOL_TRANSITION) == 0


def test_on_a_long_last_leg_the_hover_starts_300_m_short_of_the_drop() -> None:
    """Test that a straight 2 km run gets a point on the wing 300 m short of the drop, where it slows to hover."""
    the_order = order("kirkwall-2000m-winch").model_copy(update={"method": DeliveryMethod.RELEASE_AT_HEIGHT})
    plan = plan_delivery(the_order, SITE, VTOL)
    items = plan.mission.items(MissionType.MISSION)
    to_hover = next(i for i, item in enumerate(items) if item.command == m.MAV_CMD_DO_VTOL_TRANSITION)
    short, above = items[to_hover - 1].location(), items[to_hover + 1].location()
    assert short is not None
    assert above is not None
    assert distance_m(short, above) == pytest.approx(VTOL_HOVER_FROM_M, abs=1)


def test_a_fixed_wing_profile_is_refused_a_drop_and_pointed_at_legs() -> None:
    """Test that a plane is not planned onto a drop point: it delivers by landing at an airstrip."""
    with pytest.raises(PlanningError, match=r"fixed-wing: it delivers by landing at an airstrip \(flightctl leg\)"):
        plan_delivery(order("kirkwall-1200m-height"), SITE, PLANE)


def test_an_airspeed_sensor_in_use_is_a_wind_estimate() -> None:
    """Test that a wing's airspeed sensor counts as the autopilot estimating wind, as drag fusion does, and
    that neither configured means no estimate."""
    assert vehicle_estimates_wind({"EK3_DRAG_BCOEF_X": 0, "EK3_DRAG_BCOEF_Y": 0, "ARSPD_USE": 1})
    assert vehicle_estimates_wind({"EK3_DRAG_BCOEF_X": 17, "EK3_DRAG_BCOEF_Y": 17})
    assert not vehicle_estimates_wind({"EK3_DRAG_BCOEF_X": 0, "EK3_DRAG_BCOEF_Y": 0, "ARSPD_USE": 0})
