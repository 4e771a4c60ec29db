"""The ground phase's decisions as data: how a delivery arms from what the last flight left, and its fence."""

from __future__ import annotations

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.ground_steps import FIRST_ITEM, NOT_AUTO, Arm, SetMode, StartAt, arm_steps, fence_values
from flightctl.delivery.order import DeliveryOrder, Site, VehicleProfile
from flightctl.delivery.planner import plan_delivery

SITE = read_yaml_model(named_config("sites", "kirkwall"), Site)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)


def test_a_vehicle_left_in_auto_leaves_it_first_so_the_new_mission_starts() -> None:
    """Test that a vehicle still in AUTO from the last landing is taken out of AUTO before anything else:
    asking AUTO of a vehicle already in it would not restart its mission (ArduCopter's ModeAuto::init)."""
    steps = arm_steps("AUTO")
    assert steps[0] == SetMode(NOT_AUTO, "leave AUTO so the new mission starts")
    assert steps[1:] == [StartAt(FIRST_ITEM, "start the new mission at its first item"), SetMode("AUTO"), Arm()]


@pytest.mark.parametrize("mode", ["STABILIZE", "GUIDED", "LAND", "RTL", None])
def test_any_other_mode_goes_straight_to_the_first_item_then_auto_then_arm(mode: str | None) -> None:
    """Test that from any mode but AUTO (or none reported yet) the steps are: first item, AUTO, arm, in that
    order, so arming is always the last thing done and always in AUTO."""
    assert arm_steps(mode) == [StartAt(FIRST_ITEM, "start the new mission at its first item"), SetMode("AUTO"), Arm()]


def test_the_fence_enforces_altitude_and_polygons_with_the_sites_ceiling() -> None:
    """Test the fence a delivery flies with: altitude and polygon fences (not the 150 m circle), the site's
    ceiling, return or land on a breach, enabled."""
    order = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder)
    values = fence_values(plan_delivery(order, SITE, PROFILE))
    assert values == {
        "FENCE_TYPE": 1 | 4,
        "FENCE_ALT_MAX": SITE.fence_alt_max_m,
        "FENCE_ACTION": 1,
        "FENCE_ENABLE": 1,
    }
