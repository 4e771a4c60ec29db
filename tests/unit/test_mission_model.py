"""Mission items, plans, their hash, and the ArduPilot storage model used for verification."""

from __future__ import annotations

import math

import pytest

from flightctl.dialect import float32
from flightctl.dialect import mavlink as m
from flightctl.geo import AltFrame, Location, offset
from flightctl.missions.ardupilot import Firmware, Unstorable, stored_form
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from flightctl.missions.verify import compare_plans, expected_on_vehicle

KIRKWALL = Location(58.9582, -2.9609, 20.0, AltFrame.ABSOLUTE)
POINT = offset(KIRKWALL, bearing_deg=45, distance_m=300).with_alt(30.0, AltFrame.RELATIVE)


def stored(
    item: MissionItem, mission_type: MissionType = MissionType.MISSION, firmware: Firmware = Firmware.COPTER
) -> MissionItem:
    return stored_form(item, 1, mission_type, firmware)


def test_equal_items_are_equal_on_the_wire() -> None:
    """Test that items compare by their float32 wire form and NaN equals NaN."""
    a = MissionItem(m.MAV_CMD_NAV_WAYPOINT, param4=math.nan, z=0.1)
    b = MissionItem(m.MAV_CMD_NAV_WAYPOINT, param4=float("nan"), z=float32(0.1))
    assert a == b
    assert hash(a) == hash(b)
    assert a != MissionItem(m.MAV_CMD_NAV_WAYPOINT, param4=0.0, z=0.1)


def test_content_hash_ignores_home_and_sees_any_change() -> None:
    """Test that the plan hash ignores item 0 (the vehicle's home) and changes with a 1e-7 degree move."""
    plan = MissionPlan([MissionItem.home(KIRKWALL), MissionItem.takeoff(30), MissionItem.waypoint(POINT)])
    moved_home = MissionPlan([MissionItem.home(offset(KIRKWALL, bearing_deg=0, distance_m=5)), *plan.mission[1:]])
    assert plan.content_hash() == moved_home.content_hash()
    nudged = MissionItem.waypoint(POINT).with_location(
        Location(POINT.lat_deg + 1e-7, POINT.lon_deg, 30.0, AltFrame.RELATIVE)
    )
    assert plan.content_hash() != MissionPlan([*plan.mission[:2], nudged]).content_hash()
    assert plan.content_hash() != MissionPlan(plan.mission, rally=[MissionItem.rally_point(POINT)]).content_hash()


def test_location_keeps_its_frame() -> None:
    """Test that an item built from a relative location says so, and gives the location back."""
    item = MissionItem.waypoint(POINT)
    assert item.frame == m.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    assert item.location() == Location(POINT.lat_e7 / 1e7, POINT.lon_e7 / 1e7, 30.0, AltFrame.RELATIVE)
    assert MissionItem.return_to_launch().location() is None


# ---- the ArduPilot storage model (each rule from AP_Mission.cpp / MissionItemProtocol_*.cpp) ---------------


def test_do_command_frame_and_position_come_back_zero() -> None:
    """Test that a DO_ command sent with frame 3 comes back with frame 0 and no position (SITL-NOTES)."""
    sent = MissionItem(m.MAV_CMD_DO_CHANGE_SPEED, m.MAV_FRAME_GLOBAL_RELATIVE_ALT, 1, 7.3, -1, 5)
    back = stored(sent)
    assert (back.frame, back.x, back.y, back.z) == (m.MAV_FRAME_GLOBAL, 0, 0, 0.0)
    assert back.params == (1.0, float32(7.3), -1.0, 0.0)


def test_loiter_time_fills_direction_and_drops_fraction() -> None:
    """Test that LOITER_TIME keeps whole seconds (uint16) and fills param3 with the direction +-1."""
    back = stored(MissionItem.loiter_time(POINT, 12.7))
    assert back.params == (12.0, 0.0, 1.0, 0.0)
    assert back.frame == m.MAV_FRAME_GLOBAL_RELATIVE_ALT


def test_altitude_goes_through_centimetres() -> None:
    """Test that altitudes come back truncated to whole centimetres in float32."""
    back = stored(MissionItem.waypoint(POINT.with_alt(30.123456, AltFrame.RELATIVE)))
    assert back.z == float32(3012 * float32(0.01))


def test_loiter_turns_packs_fractional_turns_and_large_radius() -> None:
    """Test LOITER_TURNS: half a turn stored x256, a 300 m radius stored /10, direction in the sign."""
    back = stored(MissionItem(m.MAV_CMD_NAV_LOITER_TURNS, param1=0.5, param3=-300, param4=1).with_location(POINT))
    assert back.params == (0.5, 0.0, -300.0, 1.0)


def test_payload_place_descent_in_centimetres() -> None:
    """Test that NAV_PAYLOAD_PLACE's max descent travels as whole centimetres."""
    back = stored(MissionItem.payload_place(POINT, max_descent_m=10.234))
    assert back.param1 == float32(1023 * float32(0.01))


def test_plane_waypoint_keeps_radius_bytes_only() -> None:
    """Test that ArduPlane keeps a waypoint's acceptance radius and pass-by distance (bytes) but not its delay."""
    back = stored(
        MissionItem(m.MAV_CMD_NAV_WAYPOINT, param1=5, param2=30, param3=400).with_location(POINT),
        firmware=Firmware.PLANE,
    )
    assert back.params == (0.0, 30.0, 255.0, 0.0)


@pytest.mark.parametrize(
    ("item", "result"),
    [
        (
            MissionItem.waypoint(POINT).with_location(POINT.with_alt(math.nan, AltFrame.RELATIVE)),
            m.MAV_MISSION_INVALID_PARAM7,
        ),
        (MissionItem(m.MAV_CMD_DO_CHANGE_SPEED, param2=math.nan), m.MAV_MISSION_INVALID_PARAM2),
        (MissionItem(m.MAV_CMD_DO_SET_SERVO, param1=9, param2=70000), m.MAV_MISSION_ERROR),
        (MissionItem(m.MAV_CMD_NAV_WAYPOINT, m.MAV_FRAME_LOCAL_NED, x=1, y=1), m.MAV_MISSION_UNSUPPORTED_FRAME),
        (
            MissionItem(m.MAV_CMD_NAV_WAYPOINT, m.MAV_FRAME_GLOBAL, x=910_000_000, y=0, z=10),
            m.MAV_MISSION_INVALID_PARAM5_X,
        ),
    ],
)
def test_items_ardupilot_would_refuse_are_refused_first(item: MissionItem, result: int) -> None:
    """Test that items ArduPilot would NACK raise Unstorable with that result, before any upload."""
    with pytest.raises(Unstorable) as caught:
        stored(item)
    assert caught.value.result == result


def test_fence_and_rally_storage() -> None:
    """Test fence items (frame 0, z 0, no autocontinue) and rally points (altitude in whole metres)."""
    vertex = MissionItem(m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, m.MAV_FRAME_GLOBAL_INT, 4, x=1, y=2, z=50)
    back = stored(vertex, MissionType.FENCE)
    assert (back.frame, back.param1, back.z, back.autocontinue) == (m.MAV_FRAME_GLOBAL, 4.0, 0.0, False)
    rally = stored(MissionItem.rally_point(POINT.with_alt(50.7, AltFrame.RELATIVE)), MissionType.RALLY)
    assert (rally.z, rally.frame) == (50.0, m.MAV_FRAME_GLOBAL_RELATIVE_ALT)
    with pytest.raises(Unstorable):
        stored(MissionItem.waypoint(POINT), MissionType.RALLY)


def test_verification_catches_real_differences_and_forgives_normalisation() -> None:
    """Test that compare_plans passes a read-back that differs only by ArduPilot's normalisation, and fails
    one where a position moved by 1e-7 degree."""
    plan = MissionPlan(
        [
            MissionItem.home(KIRKWALL),
            MissionItem.takeoff(30),
            MissionItem.waypoint(POINT),
            MissionItem.loiter_time(POINT, 10),
        ]
    )
    expected = expected_on_vehicle(plan, Firmware.COPTER)
    vehicle_home = MissionItem.home(offset(KIRKWALL, bearing_deg=90, distance_m=2))
    readback = MissionPlan([vehicle_home, *expected.mission[1:]])
    assert compare_plans(expected, readback, [MissionType.MISSION]) == []
    assert readback.mission[3] != plan.mission[3], "LOITER_TIME really was normalised"
    moved = readback.mission[2]
    tampered = MissionPlan(
        [
            vehicle_home,
            readback.mission[1],
            MissionItem(moved.command, moved.frame, x=moved.x + 1, y=moved.y, z=moved.z),
            readback.mission[3],
        ]
    )
    mismatches = compare_plans(expected, tampered, [MissionType.MISSION])
    assert [(x.seq, "x") for x in mismatches] == [(2, "x")]
    assert "x 5" in mismatches[0].detail
