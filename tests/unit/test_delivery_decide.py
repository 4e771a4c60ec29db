"""The delivery's decisions as data: journal history + plan + what was observed -> actions. No vehicle at all."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.actions import (
    Abort,
    AbortHow,
    Enter,
    FailOnGround,
    MarkReleased,
    Note,
    RecordInterlocks,
    ReleaseGripper,
    SetCurrent,
    Winch,
    resolve_abort,
)
from flightctl.delivery.decide import Limits, Observed, Persistence, decide
from flightctl.delivery.events import AbortCause, Command, DeliveryState, EventKind, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import JournalEvent
from flightctl.delivery.machine import Trigger, next_state
from flightctl.delivery.order import DeliveryOrder, Site, VehicleProfile
from flightctl.delivery.outcome import DeliveryOutcome
from flightctl.delivery.planner import DeliveryPlan, plan_delivery
from flightctl.delivery.resume import Start, start_decision
from flightctl.geo import AltFrame, offset
from flightctl.vehicle.payload import ReleaseEvidence
from flightctl.vehicle.telemetry import VehicleState

SITE = read_yaml_model(named_config("sites", "kirkwall"), Site)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)
PLACE = plan_delivery(read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder), SITE, PROFILE)
HEIGHT = plan_delivery(read_yaml_model(named_config("orders", "kirkwall-1200m-height"), DeliveryOrder), SITE, PROFILE)
WINCH = plan_delivery(read_yaml_model(named_config("orders", "kirkwall-2000m-winch"), DeliveryOrder), SITE, PROFILE)
EVIDENCE = ReleaseEvidence("status text", "Gripper load released")
_ids = itertools.count(1)


def event(kind: EventKind, state: DeliveryState, name: str, ms: int | None = None, **detail: Any) -> JournalEvent:
    return JournalEvent(next(_ids), "KWL-1", "2026-11-28T00:00:00Z", ms, kind, state, name, detail)


def entered(state: DeliveryState, ms: int = 0, **detail: Any) -> JournalEvent:
    return event(EventKind.STATE, state, state, ms, **detail)


def commanded(state: DeliveryState, command: Command, ms: int = 0, **detail: Any) -> JournalEvent:
    return event(EventKind.COMMAND, state, command, ms, **detail)


def noted(state: DeliveryState, observation: Observation, ms: int = 0, **detail: Any) -> JournalEvent:
    return event(EventKind.OBSERVATION, state, observation, ms, **detail)


def flown_to(state: DeliveryState, ms: int = 0) -> list[JournalEvent]:
    """A journal that took off normally and has just entered ``state`` at ``ms``."""
    events = [
        entered(DeliveryState.PREFLIGHT),
        entered(DeliveryState.UPLOADING),
        noted(DeliveryState.UPLOADING, Observation.UPLOADED, mission_hash="abc"),
        entered(DeliveryState.ARMING),
        noted(DeliveryState.PREFLIGHT, Observation.WIND_SOURCES, vehicle=True),
        noted(DeliveryState.ARMING, Observation.ENERGY_AT_START, consumed_wh=1.0),
        commanded(DeliveryState.ARMING, Command.ARM),
    ]
    if state is DeliveryState.ARMING:
        return events
    events += [entered(DeliveryState.ENROUTE, 1_000), noted(DeliveryState.ENROUTE, Observation.MISSION_STARTED, 2_000)]
    if state is not DeliveryState.ENROUTE:
        events.append(entered(state, ms))
    return events


def history_of(*parts: JournalEvent | list[JournalEvent]) -> History:
    events: list[JournalEvent] = []
    for part in parts:
        events.extend(part if isinstance(part, list) else [part])
    return History.of(events)


def flying(
    plan: DeliveryPlan, ms: int = 10_000, seq: int | None = None, distance_m: float = 0.5, **changes: Any
) -> VehicleState:
    """Hovering steadily over ``plan``'s drop point at its drop altitude, a healthy pack, light wind."""
    position = offset(plan.order.drop_location(), bearing_deg=45, distance_m=distance_m).with_alt(40, AltFrame.ABSOLUTE)
    state = VehicleState(
        armed=True,
        mode="AUTO",
        position=position,
        groundspeed_m_s=0.2,
        relative_alt_m=plan.drop_alt_m,
        time_boot_ms=ms,
        battery_voltage_v=12.5,
        battery_consumed_wh=20.0,
        wind_speed_m_s=2.0,
        mission_current_seq=plan.gate_seq if seq is None else seq,
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def run(plan: DeliveryPlan, history: History, *observations: Observed, limits: Limits | None = None) -> list[Any]:
    """Decide on each observation in turn with one memory; the last decision."""
    persistence = Persistence()
    actions: list[Any] = []
    for seen in observations:
        actions = decide(plan, history, seen, persistence, limits or Limits())
    return actions


# ---- where a controller starts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "armed", "start"),
    [
        (None, False, Start.FRESH),
        (None, True, Start.REFUSE),
        (DeliveryState.PREFLIGHT, False, Start.FRESH),
        (DeliveryState.UPLOADING, False, Start.FRESH),
        (DeliveryState.UPLOADING, True, Start.REFUSE),
        (DeliveryState.ARMING, False, Start.FRESH),
        (DeliveryState.ENROUTE, True, Start.RESUME_FLYING),
        (DeliveryState.ENROUTE, False, Start.FOUND_LANDED),
        (DeliveryState.ON_STATION, True, Start.RESUME_FLYING),
        (DeliveryState.RELEASING, True, Start.RESUME_FLYING),
        (DeliveryState.RELEASED, True, Start.RESUME_FLYING),
        (DeliveryState.RETURNING, True, Start.RESUME_FLYING),
        (DeliveryState.RETURNING, False, Start.FOUND_LANDED),
        (DeliveryState.ABORTING, True, Start.RESUME_FLYING),
        (DeliveryState.OUT_OF_CONTACT, True, Start.RESUME_FLYING),
        (DeliveryState.OUT_OF_CONTACT, False, Start.FOUND_LANDED),
        (DeliveryState.LANDED, False, Start.FINISHED),
        (DeliveryState.LANDED, True, Start.FINISHED),
        (DeliveryState.FAILED, False, Start.FINISHED),
    ],
)
def test_start_from_every_state(last: DeliveryState | None, armed: bool, start: Start) -> None:
    """Test that the journal's last state and the vehicle's arming decide how a controller starts."""
    history = History() if last is None else history_of(entered(last))
    assert start_decision(history, armed) is start


def test_a_vehicle_we_armed_before_dying_is_resumed_not_refused() -> None:
    """Test that ARMING in the journal with our arm command, and the vehicle armed, resumes the flight."""
    history = history_of(entered(DeliveryState.ARMING), commanded(DeliveryState.ARMING, Command.ARM))
    assert start_decision(history, vehicle_armed=True) is Start.RESUME_FLYING


# ---- abort rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason", "how", "cause"),
    [
        (
            {"battery_voltage_v": 10.2},
            "battery 10.20 V below the abort voltage 10.8 V",
            AbortHow.RTL,
            AbortCause.BATTERY,
        ),
        ({"battery_consumed_wh": 150.0}, "Wh needed to get home plus the reserve", AbortHow.RTL, AbortCause.BATTERY),
        (
            {"wind_speed_m_s": 14.0},
            "wind 14.0 m/s (autopilot estimate) above the limit 10 m/s",
            AbortHow.RETURN_ALONG_ROUTE,
            AbortCause.WIND,
        ),
    ],
)
def test_persistent_conditions_abort_after_three_seconds(
    changes: dict[str, Any], reason: str, how: AbortHow, cause: AbortCause
) -> None:
    """Test that a low battery, an empty tank or high wind aborts once it has lasted 3 s of vehicle time, not on
    its first sample, with the way home the rule names and the cause a customer is told."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    persistence = Persistence()

    def at(ms: int, **extra: Any) -> list[Any]:
        return decide(PLACE, history, Observed(flying(PLACE, ms, seq=3, **extra)), persistence)

    assert at(10_000) == []
    assert at(11_000, **changes) == []
    assert at(13_000, **changes) == []
    actions = at(14_100, **changes)
    assert len(actions) == 1
    assert isinstance(actions[0], Abort)
    assert reason in actions[0].reason
    assert actions[0].how is how
    assert actions[0].cause is cause


def test_a_condition_that_clears_restarts_its_clock() -> None:
    """Test that a sag that recovers in between does not add up to an abort."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    low = {"battery_voltage_v": 10.2}
    actions = run(
        PLACE,
        history,
        Observed(flying(PLACE, 10_000, seq=3, **low)),
        Observed(flying(PLACE, 12_000, seq=3)),
        Observed(flying(PLACE, 13_500, seq=3, **low)),
        Observed(flying(PLACE, 14_500, seq=3, **low)),
    )
    assert actions == []


@pytest.mark.parametrize(
    ("changes", "changed_elsewhere", "reason", "how"),
    [
        ({"fence_breached": True}, False, "geofence breached", AbortHow.RETURN_ALONG_ROUTE),
        ({"mode": "LAND"}, False, "the autopilot switched to LAND", AbortHow.LEAVE_TO_VEHICLE),
        ({"mode": "LOITER"}, False, "the autopilot switched to LOITER", AbortHow.RTL),
        ({}, True, "the mission was changed by another station", AbortHow.RETURN_ALONG_ROUTE),
    ],
)
def test_immediate_aborts(changes: dict[str, Any], changed_elsewhere: bool, reason: str, how: AbortHow) -> None:
    """Test that a fence breach, a mode taken away and a mission changed elsewhere abort at once, each with the
    way home that fits the mode the vehicle is in."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    seen = Observed(flying(PLACE, seq=3, **changes), mission_changed_elsewhere=changed_elsewhere)
    [action] = run(PLACE, history, seen)
    assert isinstance(action, Abort)
    assert reason in action.reason
    assert action.how is how


def test_rtl_we_commanded_is_not_a_mode_taken_away() -> None:
    """Test that after our own RTL the vehicle in RTL raises no second abort."""
    history = history_of(
        flown_to(DeliveryState.RELEASED), commanded(DeliveryState.ABORTING, Command.SET_MODE, mode="RTL")
    )
    history.state = DeliveryState.RELEASED
    assert run(PLACE, history, Observed(flying(PLACE, seq=PLACE.drop_seq, mode="RTL"))) == []


@pytest.mark.parametrize(
    ("how", "mode", "resolved"),
    [
        (AbortHow.RETURN_ALONG_ROUTE, "AUTO", AbortHow.RETURN_ALONG_ROUTE),
        (AbortHow.RETURN_ALONG_ROUTE, "GUIDED", AbortHow.RTL),
        (AbortHow.RETURN_ALONG_ROUTE, "RTL", AbortHow.LEAVE_TO_VEHICLE),
        (AbortHow.RTL, "AUTO", AbortHow.RTL),
        (AbortHow.RTL, "LAND", AbortHow.LEAVE_TO_VEHICLE),
        (AbortHow.LEAVE_TO_VEHICLE, "AUTO", AbortHow.LEAVE_TO_VEHICLE),
    ],
)
def test_the_way_home_depends_on_the_mode(how: AbortHow, mode: str, resolved: AbortHow) -> None:
    """Test that the autopilot's own return is never fought and a route return needs AUTO."""
    assert resolve_abort(how, mode) is resolved


def test_no_abort_rule_runs_before_take_off_or_after_landing() -> None:
    """Test that a flat pack on the ground is not an in-flight abort (go/no-go's business)."""
    history = history_of(entered(DeliveryState.UPLOADING))
    assert run(PLACE, history, Observed(flying(PLACE, armed=False, battery_voltage_v=9.0))) == []


# ---- the gate and the drop ----------------------------------------------------------------------------------


def test_gate_authorises_once_the_interlocks_pass() -> None:
    """Test that a steady hover in the zone records the interlocks, sets the mission to the drop and enters
    RELEASING, in that order."""
    history = history_of(flown_to(DeliveryState.ON_STATION, 5_000))
    actions = run(PLACE, history, Observed(flying(PLACE, 6_000, relative_alt_m=PROFILE.drop.approach_alt_m)))
    assert actions == [
        RecordInterlocks(True, "all interlocks satisfied", pytest.approx(0.5, abs=0.01)),
        SetCurrent(PLACE.drop_seq, Command.RELEASE_AUTHORISED, "release interlocks satisfied at the gate"),
        Enter(Trigger.RELEASE_AUTHORISED),
    ]


def test_gate_waits_while_settling_then_aborts_on_a_violation() -> None:
    """Test that outside the zone the gate waits out the settle time, then aborts along the route naming it."""
    history = history_of(flown_to(DeliveryState.ON_STATION, 5_000))
    far = {"distance_m": 30.0, "relative_alt_m": PROFILE.drop.approach_alt_m}
    assert run(PLACE, history, Observed(flying(PLACE, 10_000, **far))) == []
    verdict, abort = run(PLACE, history, Observed(flying(PLACE, 26_000, **far)))
    assert isinstance(verdict, RecordInterlocks)
    assert not verdict.ok
    assert "outside the drop zone (30.0 m from the drop point)" in verdict.line
    assert abort == Abort(
        "release interlock violated at the gate: no release", AbortHow.RETURN_ALONG_ROUTE, AbortCause.DROP_POINT
    )


def test_gate_hold_timing_out_leaves_the_way_home_to_the_mission() -> None:
    """Test that the mission moving past the gate without our go-ahead is an abort we do not command."""
    history = history_of(flown_to(DeliveryState.ON_STATION, 5_000))
    assert run(PLACE, history, Observed(flying(PLACE, seq=PLACE.gate_seq + 1))) == [
        Abort("the gate hold ended without a go-ahead", AbortHow.LEAVE_TO_VEHICLE, AbortCause.DROP_POINT)
    ]


def test_resume_at_the_gate_never_authorises_twice() -> None:
    """Test that a journal with the go-ahead already given moves to RELEASING without setting the mission again."""
    history = history_of(
        flown_to(DeliveryState.ON_STATION, 5_000),
        commanded(DeliveryState.ON_STATION, Command.RELEASE_AUTHORISED, 6_000),
        noted(DeliveryState.ON_STATION, Observation.RESUMED, 9_000),
    )
    [action] = run(PLACE, history, Observed(flying(PLACE, 9_500)))
    assert isinstance(action, Enter)
    assert action.trigger is Trigger.RELEASE_AUTHORISED


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (Observed(flying(PLACE, 9_000, seq=PLACE.drop_seq), release_evidence=EVIDENCE), [MarkReleased(EVIDENCE)]),
        (Observed(flying(PLACE, 9_000, seq=PLACE.drop_seq)), []),
        (
            Observed(flying(PLACE, 70_000, seq=PLACE.drop_seq)),
            [
                Abort(
                    "release not confirmed in time: returning with the parcel",
                    AbortHow.RETURN_ALONG_ROUTE,
                    AbortCause.DROP_POINT,
                )
            ],
        ),
        (
            Observed(flying(PLACE, 9_000, seq=PLACE.climb_seq)),
            [
                Abort(
                    "the vehicle climbed away from the place without releasing",
                    AbortHow.LEAVE_TO_VEHICLE,
                    AbortCause.DROP_POINT,
                )
            ],
        ),
    ],
)
def test_payload_place_confirms_or_brings_the_parcel_home(observed: Observed, expected: list[Any]) -> None:
    """Test that a payload place is confirmed by evidence, waited for, or aborted when it cannot have happened."""
    history = history_of(flown_to(DeliveryState.RELEASING, 5_000))
    assert run(PLACE, history, observed) == expected


def test_release_at_height_commands_the_gripper_at_the_hold_once_the_interlocks_pass() -> None:
    """Test that at the release hold the interlocks are recorded, then the gripper is told to open."""
    history = history_of(flown_to(DeliveryState.RELEASING, 5_000))
    actions = run(HEIGHT, history, Observed(flying(HEIGHT, 6_000, seq=HEIGHT.release_hold_seq)))
    assert [type(a) for a in actions] == [RecordInterlocks, ReleaseGripper]


def test_release_at_height_waits_until_the_hold() -> None:
    """Test that nothing is released on the way down to the release hold."""
    history = history_of(flown_to(DeliveryState.RELEASING, 5_000))
    assert run(HEIGHT, history, Observed(flying(HEIGHT, 6_000, seq=HEIGHT.drop_seq))) == []


def test_winch_lowers_then_releases_after_the_lowering_time() -> None:
    """Test that a winch drop lowers first, and opens the gripper only when the line has had time to pay out."""
    history = history_of(flown_to(DeliveryState.RELEASING, 5_000))
    actions = run(WINCH, history, Observed(flying(WINCH, 6_000, seq=WINCH.release_hold_seq)))
    assert [type(a) for a in actions] == [RecordInterlocks, Winch]
    assert actions[1] == Winch(Command.WINCH_LOWER)
    history.apply(commanded(DeliveryState.RELEASING, Command.WINCH_LOWER, 6_000))
    lowering_s = PROFILE.drop.winch_length_m / PROFILE.drop.winch_rate_m_s
    assert (
        run(WINCH, history, Observed(flying(WINCH, 6_000 + int(lowering_s * 1000) - 100, seq=WINCH.release_hold_seq)))
        == []
    )
    assert run(WINCH, history, Observed(flying(WINCH, 6_000 + int(lowering_s * 1000), seq=WINCH.release_hold_seq))) == [
        ReleaseGripper()
    ]


def _released_but_unconfirmed(plan: DeliveryPlan, *, resumed: bool) -> History:
    events = [
        *flown_to(DeliveryState.RELEASING, 5_000),
        commanded(DeliveryState.RELEASING, Command.GRIPPER_RELEASE, 6_000),
    ]
    if resumed:
        events.append(noted(DeliveryState.RELEASING, Observation.RESUMED, 8_000))
    return history_of(events)


def test_a_commanded_release_is_confirmed_by_evidence() -> None:
    """Test that evidence after the gripper command marks the parcel released."""
    history = _released_but_unconfirmed(HEIGHT, resumed=False)
    seen = Observed(flying(HEIGHT, 7_000, seq=HEIGHT.release_hold_seq), release_evidence=EVIDENCE)
    assert run(HEIGHT, history, seen) == [MarkReleased(EVIDENCE)]


def test_a_commanded_release_without_evidence_aborts_after_the_confirm_time() -> None:
    """Test that no evidence within the confirm time brings the parcel home."""
    history = _released_but_unconfirmed(HEIGHT, resumed=False)
    seen = Observed(flying(HEIGHT, 6_000 + 61_000, seq=HEIGHT.release_hold_seq), gripper_closed=True)
    assert run(HEIGHT, history, seen) == [
        Abort("release not confirmed: returning with the parcel", AbortHow.RETURN_ALONG_ROUTE, AbortCause.DROP_POINT)
    ]


def test_in_this_run_a_closed_gripper_is_not_commanded_again() -> None:
    """Test that without a restart a release is commanded once: the gripper reading closed only waits."""
    history = _released_but_unconfirmed(HEIGHT, resumed=False)
    assert run(HEIGHT, history, Observed(flying(HEIGHT, 7_000, seq=HEIGHT.release_hold_seq), gripper_closed=True)) == []


@pytest.mark.parametrize(
    ("gripper_closed", "evidence", "expected"),
    [
        (None, None, []),  # no servo reading: wait, never guess
        (False, EVIDENCE, [MarkReleased(EVIDENCE)]),  # it opened before the controller died
        (True, None, [ReleaseGripper("the gripper is still closed after a restart: the release never took")]),
    ],
)
def test_resume_between_release_command_and_confirmation_reads_the_gripper_first(
    gripper_closed: bool | None, evidence: ReleaseEvidence | None, expected: list[Any]
) -> None:
    """Test that a controller restarted after journaling a release commands it again only when the gripper is
    seen still closed, and takes the open gripper as the release."""
    for plan in (HEIGHT, WINCH):
        history = _released_but_unconfirmed(plan, resumed=True)
        seen = Observed(
            flying(plan, 9_000, seq=plan.release_hold_seq), gripper_closed=gripper_closed, release_evidence=evidence
        )
        assert run(plan, history, seen) == expected


def test_a_resent_release_is_not_sent_a_third_time() -> None:
    """Test that once this run has commanded the release again it waits for evidence."""
    history = _released_but_unconfirmed(HEIGHT, resumed=True)
    history.apply(commanded(DeliveryState.RELEASING, Command.GRIPPER_RELEASE, 9_000))
    assert run(HEIGHT, history, Observed(flying(HEIGHT, 9_500, seq=HEIGHT.release_hold_seq), gripper_closed=True)) == []


def test_after_a_winch_release_the_winch_comes_in_before_the_way_home() -> None:
    """Test the steps after a winch release: retract, relax after the retract time, then the way home, once."""
    history = history_of(flown_to(DeliveryState.RELEASED, 10_000))
    hold = WINCH.release_hold_seq
    assert run(WINCH, history, Observed(flying(WINCH, 10_100, seq=hold))) == [Winch(Command.WINCH_RETRACT)]
    history.apply(commanded(DeliveryState.RELEASED, Command.WINCH_RETRACT, 10_100))
    assert run(WINCH, history, Observed(flying(WINCH, 11_000, seq=hold))) == []
    assert run(WINCH, history, Observed(flying(WINCH, 18_200, seq=hold))) == [Winch(Command.WINCH_RELAX)]
    history.apply(commanded(DeliveryState.RELEASED, Command.WINCH_RELAX, 18_200))
    way_home = SetCurrent(WINCH.climb_seq, Command.SET_CURRENT, "released")
    assert run(WINCH, history, Observed(flying(WINCH, 18_300, seq=hold))) == [way_home]
    history.apply(commanded(DeliveryState.RELEASED, Command.SET_CURRENT, 18_300))
    assert run(WINCH, history, Observed(flying(WINCH, 18_400, seq=hold))) == []
    history.apply(noted(DeliveryState.RELEASED, Observation.STEP_FAILED, 18_500, command="set_current"))
    assert run(WINCH, history, Observed(flying(WINCH, 18_600, seq=hold))) == [way_home]
    assert run(WINCH, history, Observed(flying(WINCH, 19_000, seq=WINCH.climb_seq))) == [Enter(Trigger.HEADING_HOME)]


# ---- link, landing, the mission's start ---------------------------------------------------------------------


def test_link_loss_is_noted_and_aborts_then_gives_up_after_the_bound() -> None:
    """Test that a lost link aborts (the mission's gate brings the parcel home) and ends the controller's run in
    OUT_OF_CONTACT once the bound has passed, saying the parcel is presumed on board."""
    history = history_of(flown_to(DeliveryState.ON_STATION, 5_000))
    limits = Limits(link_lost_give_up_s=60)
    first = run(PLACE, history, Observed(flying(PLACE), link_lost_s=0.0), limits=limits)
    assert [type(a) for a in first] == [Note, Enter]
    assert first[1] == Enter(Trigger.ABORTED, {"reason": "link to the autopilot lost"})
    for action in first:
        history.apply(
            noted(DeliveryState.ON_STATION, action.observation)
            if isinstance(action, Note)
            else entered(next_state(history.state, action.trigger), 6_000, **action.detail)
        )
    assert run(PLACE, history, Observed(flying(PLACE), link_lost_s=30.0), limits=limits) == []
    [give_up] = run(PLACE, history, Observed(flying(PLACE), link_lost_s=61.0), limits=limits)
    assert isinstance(give_up, Enter)
    assert give_up.trigger is Trigger.LINK_GIVEN_UP
    assert give_up.detail["parcel"] == "on_board"
    assert "outcome unknown" in give_up.detail["reason"]


def test_link_back_during_an_abort_takes_the_route_home() -> None:
    """Test that when the link returns while aborting with the parcel, the mission is set to its way home."""
    history = history_of(
        flown_to(DeliveryState.ON_STATION, 5_000),
        noted(DeliveryState.ON_STATION, Observation.LINK_LOST),
        entered(DeliveryState.ABORTING, 6_000, reason="link to the autopilot lost"),
    )
    assert run(PLACE, history, Observed(flying(PLACE))) == [
        Note(Observation.LINK_RECOVERED),
        SetCurrent(PLACE.climb_seq, Command.SET_CURRENT, "link recovered during an abort"),
    ]


def test_disarmed_in_flight_means_landed_with_the_energy_used() -> None:
    """Test that a disarmed vehicle after take-off ends the delivery in LANDED, recording the pack's use."""
    history = history_of(flown_to(DeliveryState.RETURNING, 50_000))
    [action] = run(PLACE, history, Observed(flying(PLACE, armed=False, battery_consumed_wh=33.0)))
    assert action == Enter(Trigger.TOUCHED_DOWN, {"released": False, "consumed_wh": 33.0})


def test_a_mission_that_does_not_start_fails_on_the_ground() -> None:
    """Test that armed in AUTO with the mission still at its start after the deadline is a named failure."""
    history = history_of(flown_to(DeliveryState.ARMING), entered(DeliveryState.ENROUTE, 1_000))
    still = {"seq": 0, "relative_alt_m": 0.0}
    assert run(PLACE, history, Observed(flying(PLACE, 20_000, **still))) == []
    [action] = run(PLACE, history, Observed(flying(PLACE, 31_500, **still)))
    assert isinstance(action, FailOnGround)
    assert "the mission did not start within 30 s of arming (mission item 0" in action.reason


def test_a_mission_that_starts_is_noted() -> None:
    """Test that the current item moving on is noted as the mission's start, once."""
    history = history_of(flown_to(DeliveryState.ARMING), entered(DeliveryState.ENROUTE, 1_000))
    [action] = run(PLACE, history, Observed(flying(PLACE, 3_000, seq=2, relative_alt_m=0.5)))
    assert isinstance(action, Note)
    assert action.observation is Observation.MISSION_STARTED


# ---- the outcome, from the journal alone --------------------------------------------------------------------


def test_outcome_is_rebuilt_from_the_journal_alone() -> None:
    """Test that the outcome (delivered, release point and error, energy, phase times) needs no vehicle."""
    history = history_of(
        flown_to(DeliveryState.RELEASING, 5_000),
        entered(DeliveryState.RELEASED, 8_000, lat_deg=58.95, lon_deg=-2.9, error_m=0.7),
        entered(DeliveryState.RETURNING, 10_000),
        entered(DeliveryState.LANDED, 70_000, consumed_wh=21.5),
    )
    outcome = DeliveryOutcome.from_history("KWL-1", history)
    assert outcome.delivered
    assert outcome.verdict == "delivered"
    assert outcome.release_error_m == 0.7
    assert outcome.energy_used_wh == pytest.approx(20.5)
    assert outcome.phase_times_s["RELEASING"] == pytest.approx(3.0)
    assert outcome.phase_times_s["RETURNING"] == pytest.approx(60.0)


def test_out_of_contact_outcome_says_unknown() -> None:
    """Test that a run ended by a lost link reports an unknown outcome, not a delivery or a failure."""
    history = history_of(
        flown_to(DeliveryState.ON_STATION, 5_000),
        entered(DeliveryState.ABORTING, 6_000, reason="link to the autopilot lost"),
        entered(DeliveryState.OUT_OF_CONTACT, 6_000, reason="link lost for 300 s: outcome unknown"),
    )
    outcome = DeliveryOutcome.from_history("KWL-1", history)
    assert not outcome.delivered
    assert outcome.verdict == "unknown: out of contact, parcel presumed on board"
    assert outcome.abort_reason == "link to the autopilot lost"


def test_an_operator_abort_brings_the_parcel_home_along_the_route() -> None:
    """Test that an operator's abort in flight is an abort along the route with the operator's reason, and that
    after the release it changes nothing (the vehicle is already on its way home)."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    [action] = run(PLACE, history, Observed(flying(PLACE, seq=3), operator_abort="customer cancelled"))
    assert action == Abort("operator abort: customer cancelled", AbortHow.RETURN_ALONG_ROUTE)
    released = history_of(flown_to(DeliveryState.RELEASED, 5_000))
    actions = run(PLACE, released, Observed(flying(PLACE, seq=PLACE.climb_seq), operator_abort="too late"))
    assert not any(isinstance(a, Abort) for a in actions)
