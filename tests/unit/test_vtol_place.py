"""A VTOL's payload place, as data: ArduPlane lands at the drop point and waits with its motors stopped; the
controller checks the interlocks on the ground, releases, and sends it around (what ArduPilot's Lua example,
plane_package_place.lua, does on a real aircraft). Every abort while it waits there goes around first."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.actions import Abort, AbortHow, GoAround, MarkReleased, RecordInterlocks, ReleaseGripper
from flightctl.delivery.decide import Observed
from flightctl.delivery.events import AbortCause, Command, DeliveryState
from flightctl.delivery.journal import JournalEvent
from flightctl.delivery.order import DeliveryMethod, DeliveryOrder, VehicleProfile
from flightctl.delivery.planner import plan_delivery
from flightctl.delivery.routing import PlanningError
from flightctl.dialect import mavlink
from flightctl.geo import distance_m
from flightctl.missions.model import MissionType
from tests.unit.test_delivery_decide import EVIDENCE, SITE, commanded, flown_to, flying, history_of, run

VTOL = read_yaml_model(named_config("profiles", "sitl-vtol"), VehicleProfile)
ORDER = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder)
PLAN = plan_delivery(ORDER, SITE, VTOL)


def on_the_ground(ms: int = 20_000, **changes: object) -> Observed:
    """Landed at the drop point, armed, motors stopped: ArduPlane has said "Land complete"."""
    state = flying(PLAN, ms, seq=PLAN.drop_seq, relative_alt_m=0.1, groundspeed_m_s=0.0, **changes)
    return Observed(state, place_touchdown=True)


def releasing(ms: int = 5_000) -> list[JournalEvent]:
    return flown_to(DeliveryState.RELEASING, ms)


def test_a_vtol_plan_places_the_parcel_between_the_hover_and_the_wing_home() -> None:
    items = PLAN.mission.items(MissionType.MISSION)
    place = items[PLAN.drop_seq]
    assert place.command == mavlink.MAV_CMD_NAV_PAYLOAD_PLACE
    assert distance_m(place.location(), ORDER.drop_location()) < 0.5
    transitions = [n for n, item in enumerate(items) if item.command == mavlink.MAV_CMD_DO_VTOL_TRANSITION]
    assert transitions[0] < PLAN.gate_seq < PLAN.drop_seq < PLAN.climb_seq < transitions[1]


def test_a_vtol_winch_order_is_refused_at_planning_saying_why() -> None:
    winch = read_yaml_model(named_config("orders", "kirkwall-2000m-winch"), DeliveryOrder)
    assert winch.method is DeliveryMethod.WINCH
    with pytest.raises(PlanningError, match="ArduPlane has no winch driver"):
        plan_delivery(winch, SITE, VTOL)


def test_descending_to_the_place_waits_for_the_touchdown() -> None:
    history = history_of(releasing())
    descending = Observed(flying(PLAN, 9_000, seq=PLAN.drop_seq, relative_alt_m=6.0))
    assert run(PLAN, history, descending) == []


def test_on_the_ground_in_the_zone_it_releases_once_the_interlocks_pass() -> None:
    history = history_of(releasing())
    actions = run(PLAN, history, on_the_ground())
    assert [type(a) for a in actions] == [RecordInterlocks, ReleaseGripper]
    verdict = actions[0]
    assert verdict.ok
    assert verdict.line == "all interlocks satisfied"


def test_on_the_ground_outside_the_zone_it_goes_around_with_the_parcel() -> None:
    history = history_of(releasing())

    def outside(ms: int) -> Observed:
        state = flying(PLAN, ms, seq=PLAN.drop_seq, distance_m=9.0, relative_alt_m=0.1, groundspeed_m_s=0.0)
        return replace(on_the_ground(), vehicle=state)

    # Still settling: a failure counts once it has held for the settling time from when it was first seen.
    assert run(PLAN, history, outside(30_000), outside(45_000)) == []
    actions = run(PLAN, history, outside(30_000), outside(51_000))
    assert [type(a) for a in actions] == [RecordInterlocks, GoAround, Abort]
    assert not actions[0].ok
    assert "outside the drop zone (9.0 m from the drop point)" in actions[0].line
    assert actions[2] == Abort(
        "release interlock violated on the ground at the drop point: no release",
        AbortHow.LEAVE_TO_VEHICLE,
        AbortCause.DROP_POINT,
    )


def test_a_controller_started_again_on_the_ground_waits_for_the_position_to_settle_then_releases() -> None:
    """Test a controller that starts watching long after the go-ahead, with the aircraft already on the ground:
    a position it does not yet trust is not a violation until it has lasted the settling time; once trusted, the
    release goes ahead."""
    history = history_of(releasing())
    doubted = replace(on_the_ground(300_000), position_doubts=("not yet holding for 5 s",))
    assert run(PLAN, history, doubted) == []
    trusted = on_the_ground(306_000)
    actions = run(PLAN, history, doubted, trusted)
    assert [type(a) for a in actions] == [RecordInterlocks, ReleaseGripper]


def test_released_on_the_ground_it_goes_around_once_and_then_heads_home() -> None:
    released = history_of(flown_to(DeliveryState.RELEASED, 21_000))
    assert run(PLAN, released, on_the_ground(22_000)) == [
        GoAround("released on the ground at the drop point: climbing out")
    ]
    gone = history_of(flown_to(DeliveryState.RELEASED, 21_000), commanded(DeliveryState.RELEASED, Command.GO_AROUND))
    assert run(PLAN, gone, on_the_ground(23_000)) == []
    climbing = Observed(flying(PLAN, 30_000, seq=PLAN.climb_seq), place_touchdown=True)
    assert [type(a).__name__ for a in run(PLAN, gone, climbing)] == ["Enter"]


def test_the_release_confirmed_on_the_ground_is_marked() -> None:
    history = history_of(releasing(), commanded(DeliveryState.RELEASING, Command.GRIPPER_RELEASE, 20_000))
    assert run(PLAN, history, replace(on_the_ground(), release_evidence=EVIDENCE)) == [MarkReleased(EVIDENCE)]


def test_an_abort_while_waiting_on_the_ground_goes_around_first() -> None:
    """Test that a release not confirmed in time, and a battery abort, on the ground at the drop point are a
    go-around and the mission's own way home (set-current on the ground would not lift it)."""
    history = history_of(releasing(), commanded(DeliveryState.RELEASING, Command.GRIPPER_RELEASE, 20_000))
    late = run(PLAN, history, on_the_ground(5_000 + int(VTOL.drop.release_confirm_timeout_s * 1000) + 1_000))
    assert late == [
        GoAround("release not confirmed in time: returning with the parcel"),
        Abort("release not confirmed in time: returning with the parcel", AbortHow.LEAVE_TO_VEHICLE,
              AbortCause.DROP_POINT),
    ]  # fmt: skip
    low = VTOL.battery_abort_voltage_v - 0.5
    battery = run(PLAN, history, on_the_ground(21_000, battery_voltage_v=low),
                  on_the_ground(25_000, battery_voltage_v=low))  # fmt: skip
    assert [type(a) for a in battery] == [GoAround, Abort]
    assert battery[1].how is AbortHow.LEAVE_TO_VEHICLE
    assert battery[1].cause is AbortCause.BATTERY


def test_in_the_air_an_abort_is_the_usual_return() -> None:
    """Test that the same battery abort during the descent (no touchdown said) is the usual one: no go-around."""
    history = history_of(releasing())
    low = VTOL.battery_abort_voltage_v - 0.5
    descending = [
        Observed(flying(PLAN, ms, seq=PLAN.drop_seq, relative_alt_m=6.0, battery_voltage_v=low))
        for ms in (9_000, 13_000)
    ]
    (abort,) = run(PLAN, history, *descending)
    assert isinstance(abort, Abort)
    assert abort.how is AbortHow.RTL
