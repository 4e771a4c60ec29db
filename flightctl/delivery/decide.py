"""The delivery's decisions, as data: no vehicle, no journal, no I/O.

``decide`` maps (journal history, plan, what was just observed) to the actions to take now. The sequencer is
the thin loop around it: it observes, asks, journals each action before carrying it out, and applies what it
journaled to the history, so a controller started again from the journal decides exactly as the one that died.

Aborts, and how each one brings the vehicle home (``AbortHow``, chosen by the rule, never read from a text):
- battery below the abort voltage, or below the energy to get home plus the reserve: RTL (ArduPilot takes
  the nearest of home and the rally points);
- an operator's abort, wind above the limit,
  interlock violated, release not confirmed, geofence breach, mode taken by someone
  else, mission changed elsewhere: back along the planned route with the parcel (the mission's return leg
  keeps clear of no-fly zones; RTL flies straight);
- the gate or release hold ended without a go-ahead, link lost: left to the vehicle (the mission itself goes
  home with the parcel);
- in any case, a vehicle already in RTL/LAND/SMART_RTL is left to the autopilot, and a return along the route
  from any mode but AUTO becomes RTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from flightctl.delivery.actions import (
    Abort,
    AbortHow,
    Action,
    Enter,
    FailOnGround,
    GoAround,
    MarkReleased,
    Note,
    RecordInterlocks,
    ReleaseGripper,
    SetCurrent,
    Winch,
    resolve_abort,
)
from flightctl.delivery.energy import available_energy_wh, energy_to_home
from flightctl.delivery.events import (
    FLOWN,
    IN_FLIGHT_SUPERVISED,
    ON_THE_GROUND,
    AbortCause,
    Command,
    DeliveryState,
    Observation,
    ParcelWhereabouts,
)
from flightctl.delivery.history import History
from flightctl.delivery.interlocks import release_interlocks
from flightctl.delivery.machine import Trigger
from flightctl.delivery.order import DeliveryMethod, RemoteIdLossRule, VehicleKind, VehicleProfile
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.geo import distance_m
from flightctl.vehicle.payload import ReleaseEvidence
from flightctl.vehicle.telemetry import VehicleState


@dataclass(frozen=True)
class Limits:
    """How long things may take before they count (vehicle seconds unless named otherwise)."""

    persist_s: float = 3.0  # a low battery or high wind must last this long: one gust or sag is not a trend
    settle_s: float = 20.0  # time to settle at a hold before a failed interlock counts as a violation
    mission_start_s: float = 30.0  # armed in AUTO, the mission must have begun by then
    link_lost_give_up_s: float = 300.0  # controller's clock: how long to wait for a lost link to come back


@dataclass(frozen=True)
class Observed:
    """What the loop saw just now."""

    vehicle: VehicleState
    link_lost_s: float | None = None  # controller seconds since the link was lost; None while it is up
    mission_changed_elsewhere: bool = False
    release_evidence: ReleaseEvidence | None = None  # since the release was authorised or commanded
    gripper_closed: bool | None = None  # the gripper servo at its grab PWM; None: unknown
    own_wind_m_s: float | None = None  # our own estimate from lean angle (smoothed); None: none made
    position_doubts: tuple[str, ...] = ()  # reasons not to trust the position for a release (position_trust)
    operator_abort: str | None = None  # an operator asked for an abort, with this reason
    # The newest surface wind reported for each airstrip of an island leg, by ICAO: where it may land now.
    airstrip_winds: Mapping[str, SurfaceWind] = field(default_factory=dict)
    # What the autopilot last said of its failsafes ("GCS Failsafe On: RTL"), newest last: which one acted.
    failsafe_texts: tuple[str, ...] = ()
    # What is wrong with Remote ID now (vehicle.remote_id's problems); None when this flight has none to watch.
    remote_id_problems: tuple[str, ...] | None = None
    # A VTOL's payload place: ArduPlane said "Land complete" since the release was authorised (it has landed at
    # the drop point, stopped its motors, and waits for the release and a go-around).
    place_touchdown: bool = False


class Persistence:
    """When each condition was first seen (vehicle ms): the one piece of memory that is not in the journal.

    Lost on a restart, which only delays an abort by ``persist_s``."""

    def __init__(self) -> None:
        self._since: dict[str, int] = {}

    def held(self, name: str, condition: bool, now_ms: int, seconds: float) -> bool:
        if not condition:
            self._since.pop(name, None)
            return False
        return now_ms - self._since.setdefault(name, now_ms) >= seconds * 1000


# ---- the decision ------------------------------------------------------------------------------------------


def decide(
    plan: DeliveryPlan, history: History, seen: Observed, persistence: Persistence, limits: Limits = Limits()
) -> list[Action]:
    """The actions to take now, in order; [] means wait for the next observation."""
    state = history.state
    if state is None or state in FLOWN or state is DeliveryState.OUT_OF_CONTACT:
        return []
    link = _link_decision(plan, history, seen, limits)
    if link is not None:
        return link
    vehicle = seen.vehicle
    if not vehicle.armed and state not in ON_THE_GROUND:
        return [Enter(Trigger.TOUCHED_DOWN, {"released": history.released, "consumed_wh": vehicle.battery_consumed_wh})]
    if state is DeliveryState.ENROUTE and not history.mission_started:
        return mission_start(history, vehicle, limits)
    if state in IN_FLIGHT_SUPERVISED:
        remote_id = remote_id_in_flight(plan.profile, history, seen, persistence, limits)
        if remote_id:
            return _off_the_ground_first(
                plan,
                history,
                seen,
                [replace(a, how=resolve_abort(a.how, vehicle.mode)) if isinstance(a, Abort) else a for a in remote_id],
            )
        rule = abort_rule(plan, history, seen, persistence, limits)
        if rule is not None:
            resolved = replace(rule, how=resolve_abort(rule.how, vehicle.mode))
            return _off_the_ground_first(plan, history, seen, [resolved])
    seq = vehicle.mission_current_seq or 0
    if state is DeliveryState.ENROUTE:
        if seq >= plan.climb_seq:
            return [_not_released("the gate hold ended without a go-ahead", AbortHow.LEAVE_TO_VEHICLE)]
        return [Enter(Trigger.REACHED_GATE)] if seq >= plan.gate_seq else []
    if state is DeliveryState.ON_STATION:
        return _at_gate(plan, history, seen, seq, limits)
    if state is DeliveryState.RELEASING:
        if plan.order.method is DeliveryMethod.PAYLOAD_PLACE:
            placing = _placing(plan, history, seen, seq, persistence, limits)
            return _off_the_ground_first(plan, history, seen, placing)
        return _releasing_at_hold(plan, history, seen, seq, limits)
    if state is DeliveryState.RELEASED:
        return _after_release(plan, history, seen, seq)
    return []


def _link_decision(plan: DeliveryPlan, history: History, seen: Observed, limits: Limits) -> list[Action] | None:
    """None while the link is up and nothing about it needs saying."""
    state = history.state
    if seen.link_lost_s is None:
        if not history.link_lost:
            return None
        actions: list[Action] = [Note(Observation.LINK_RECOVERED)]
        if state is DeliveryState.ABORTING and not history.released:
            actions.append(SetCurrent(plan.climb_seq, Command.SET_CURRENT, "link recovered during an abort"))
        return actions
    if not history.link_lost:
        actions = [Note(Observation.LINK_LOST, {"plan": "the gate hold times out and the mission returns home"})]
        if state in (DeliveryState.ENROUTE, DeliveryState.ON_STATION, DeliveryState.RELEASING):
            actions.append(Enter(Trigger.ABORTED, {"reason": "link to the autopilot lost"}))
        return actions
    if seen.link_lost_s >= limits.link_lost_give_up_s:
        on_board = ParcelWhereabouts.DELIVERED if history.released else ParcelWhereabouts.ON_BOARD
        return [
            Enter(
                Trigger.LINK_GIVEN_UP,
                {
                    "reason": f"link to the autopilot lost for {seen.link_lost_s:.0f} s: outcome unknown",
                    "parcel": on_board.value,
                    "vehicle": "following its own fallback (gate hold timeout, then the mission's way home)",
                },
            )
        ]
    return []


def mission_start(history: History, vehicle: VehicleState, limits: Limits) -> list[Action]:
    """Armed in AUTO: a note once the mission has visibly begun, or a failure on the ground if it has not in time."""
    seq = vehicle.mission_current_seq or 0
    climbed = (vehicle.relative_alt_m or 0.0) > 2.0
    if seq > 1 or climbed:
        return [Note(Observation.MISSION_STARTED, {"mission_seq": seq, "relative_alt_m": vehicle.relative_alt_m})]
    if _in_state_s(history, vehicle) < limits.mission_start_s:
        return []
    return [
        FailOnGround(
            f"the mission did not start within {limits.mission_start_s:g} s of arming "
            f"(mission item {seq}, {vehicle.relative_alt_m or 0.0:.1f} m above home, mode {vehicle.mode})"
        )
    ]


def _not_released(reason: str, how: AbortHow) -> Abort:
    """An abort at the drop point: the release was not safe there, or did not happen."""
    return Abort(reason, how, AbortCause.DROP_POINT)


def remote_id_in_flight(
    profile: VehicleProfile, history: History, seen: Observed, persistence: Persistence, limits: Limits
) -> list[Action]:
    """Remote ID lost in flight (for ``persist_s``): journaled with what is wrong, then the profile's rule
    (``remote_id_lost``: return now, land here, or continue); its recovery journaled once it is back."""
    problems = seen.remote_id_problems
    if problems is None:
        return []
    lost = persistence.held("remote id", bool(problems), seen.vehicle.time_boot_ms or 0, limits.persist_s)
    if not problems and history.remote_id_lost:
        return [Note(Observation.REMOTE_ID_RECOVERED)]
    if not lost or history.remote_id_lost:
        return []
    rule = profile.remote_id_lost
    actions: list[Action] = [
        Note(Observation.REMOTE_ID_LOST, {"problems": list(problems), "rule": rule.value, "why": rule.why()})
    ]
    reason = f"Remote ID lost in flight: {problems[0]}"
    if rule is RemoteIdLossRule.LAND and profile.kind is not VehicleKind.FIXED_WING:
        actions.append(Abort(f"{reason}: landing here", AbortHow.LAND))
    elif rule is not RemoteIdLossRule.CONTINUE and not history.released:
        actions.append(Abort(reason, AbortHow.RTL))
    return actions


def abort_rule(
    plan: DeliveryPlan, history: History, seen: Observed, persistence: Persistence, limits: Limits = Limits()
) -> Abort | None:
    """The first abort rule that fires, with the way home it calls for (before the mode has a say) and its cause."""
    state, profile = seen.vehicle, plan.profile
    if seen.operator_abort is not None and not history.released:
        return Abort(f"operator abort: {seen.operator_abort}", AbortHow.RETURN_ALONG_ROUTE)
    now = state.time_boot_ms or 0
    voltage = state.battery_voltage_v
    low = voltage is not None and voltage < profile.battery_abort_voltage_v
    if persistence.held("low voltage", low, now, limits.persist_s):
        reason = f"battery {voltage:.2f} V below the abort voltage {profile.battery_abort_voltage_v:g} V"
        return Abort(reason, AbortHow.RTL, AbortCause.BATTERY)
    wind, source = wind_in_flight(history, seen)
    if persistence.held("wind", wind is not None and wind > profile.wind_limit_m_s, now, limits.persist_s):
        reason = f"wind {wind:.1f} m/s ({source}) above the limit {profile.wind_limit_m_s:g} m/s"
        return Abort(reason, AbortHow.RETURN_ALONG_ROUTE, AbortCause.WIND)
    needed, remaining = energy_home(plan, history, state, wind or 0.0)
    if needed is not None and remaining is not None:
        short = remaining < needed + profile.reserve_fraction * profile.usable_battery_wh
        if persistence.held("low energy", short, now, limits.persist_s):
            reason = f"battery {remaining:.1f} Wh left, {needed:.1f} Wh needed to get home plus the reserve"
            return Abort(reason, AbortHow.RTL, AbortCause.BATTERY)
    if state.fence_breached:
        return Abort("geofence breached", AbortHow.RETURN_ALONG_ROUTE)
    expected_modes = {"AUTO", "RTL"} if history.rtl_commanded else {"AUTO"}
    if state.mode is not None and state.mode not in expected_modes:
        reason = f"the autopilot switched to {state.mode} (failsafe or another station)"
        return Abort(reason, AbortHow.RETURN_ALONG_ROUTE)
    if seen.mission_changed_elsewhere:
        return Abort("the mission was changed by another station", AbortHow.RETURN_ALONG_ROUTE)
    return None


def wind_in_flight(history: History, seen: Observed) -> tuple[float | None, str]:
    """The larger of the autopilot's wind estimate (only when it can make one: without drag fusion ArduCopter
    reports 0) and our own, so one wrong source cannot hide a gale; with the source named."""
    candidates = []
    if history.vehicle_estimates_wind and seen.vehicle.wind_speed_m_s is not None:
        candidates.append((seen.vehicle.wind_speed_m_s, "autopilot estimate"))
    if seen.own_wind_m_s is not None:
        candidates.append((seen.own_wind_m_s, "own estimate from lean angle"))
    if not candidates:
        return None, "unknown"
    return max(candidates)


def energy_home(
    plan: DeliveryPlan, history: History, state: VehicleState, headwind_m_s: float
) -> tuple[float | None, float | None]:
    """(Wh needed to get home from here with the wind as a headwind, Wh left in the pack)."""
    if state.position is None:
        return None, None
    km_home = distance_m(state.position, plan.site.home()) / 1000.0
    parcel = 0.0 if history.released else plan.order.parcel_kg
    needed = energy_to_home(plan.profile, km_home=km_home, parcel_kg=parcel, headwind_m_s=headwind_m_s)
    return needed, available_energy_wh(plan.profile, state)


def _in_state_s(history: History, state: VehicleState) -> float:
    if history.state_entered_ms is None or state.time_boot_ms is None:
        return 0.0
    return max(0.0, (state.time_boot_ms - history.state_entered_ms) / 1000.0)


def _interlocks(
    plan: DeliveryPlan, history: History, seen: Observed, expected_alt_m: float | None, limits: Limits
) -> RecordInterlocks | None:
    """The interlock verdict to record: ok, or violated after the settle time; None while still settling.
    A position without reason for doubt is one of the interlocks: the zone check is only as good as it."""
    state = seen.vehicle
    result = release_interlocks(plan.order, plan.profile, state, expected_alt_m=expected_alt_m)
    failures = [*result.failures, *(f"position not trusted: {doubt}" for doubt in seen.position_doubts)]
    if failures and _in_state_s(history, state) < limits.settle_s:
        return None
    line = "; ".join(failures) if failures else result.describe()
    return RecordInterlocks(not failures, line, result.distance_to_drop_m)


def _at_gate(plan: DeliveryPlan, history: History, seen: Observed, seq: int, limits: Limits) -> list[Action]:
    if seq > plan.gate_seq:  # the hold timed out (or someone moved the mission on) without our go-ahead
        return [_not_released("the gate hold ended without a go-ahead", AbortHow.LEAVE_TO_VEHICLE)]
    if history.release_authorised:  # after a restart: never authorise a second time
        return [Enter(Trigger.RELEASE_AUTHORISED, {"note": "the release was authorised earlier (journal): not again"})]
    verdict = _interlocks(plan, history, seen, plan.profile.drop.approach_alt_m, limits)
    if verdict is None:
        return []
    if not verdict.ok:
        return [
            verdict,
            Abort(
                "release interlock violated at the gate: no release", AbortHow.RETURN_ALONG_ROUTE, AbortCause.DROP_POINT
            ),
        ]
    return [
        verdict,
        SetCurrent(plan.drop_seq, Command.RELEASE_AUTHORISED, "release interlocks satisfied at the gate"),
        Enter(Trigger.RELEASE_AUTHORISED),
    ]


def _placing(
    plan: DeliveryPlan, history: History, seen: Observed, seq: int, persistence: Persistence, limits: Limits
) -> list[Action]:
    """Payload place: a multirotor's ArduCopter releases at touchdown itself; a VTOL's ArduPlane lands and waits,
    and the controller checks the interlocks on the ground and releases. Either way we confirm the release, or
    bring the parcel home."""
    if seen.release_evidence is not None:
        return [MarkReleased(seen.release_evidence)]
    if _on_the_ground_at_place(plan, history, seen) and not history.commanded(Command.GRIPPER_RELEASE):
        verdict = _interlocks(plan, history, seen, None, limits)
        # On the ground nothing moves: a failure counts once it has held for the settling time from when this
        # controller first saw it (one started again there has only just begun to watch the position).
        failing = verdict is not None and not verdict.ok
        now_ms = seen.vehicle.time_boot_ms or 0
        if verdict is None or (
            failing and not persistence.held("interlocks on the ground", True, now_ms, limits.settle_s)
        ):
            return []
        persistence.held("interlocks on the ground", False, now_ms, limits.settle_s)
        if not verdict.ok:
            reason = "release interlock violated on the ground at the drop point: no release"
            return [verdict, _not_released(reason, AbortHow.LEAVE_TO_VEHICLE)]
        return [verdict, ReleaseGripper("landed at the drop point (payload place)")]
    if _in_state_s(history, seen.vehicle) > plan.profile.drop.release_confirm_timeout_s:
        return [
            Abort(
                "release not confirmed in time: returning with the parcel",
                AbortHow.RETURN_ALONG_ROUTE,
                AbortCause.DROP_POINT,
            )
        ]
    if seq >= plan.climb_seq:
        return [
            Abort(
                "the vehicle climbed away from the place without releasing",
                AbortHow.LEAVE_TO_VEHICLE,
                AbortCause.DROP_POINT,
            )
        ]
    return []


def _on_the_ground_at_place(plan: DeliveryPlan, history: History, seen: Observed) -> bool:
    """A VTOL landed for its payload place and not yet told to go around: motors stopped, waiting for us."""
    return (
        plan.profile.kind is VehicleKind.VTOL
        and plan.order.method is DeliveryMethod.PAYLOAD_PLACE
        and seen.place_touchdown
        and seen.vehicle.armed
        and not history.commanded(Command.GO_AROUND)
    )


def _off_the_ground_first(plan: DeliveryPlan, history: History, seen: Observed, actions: list[Action]) -> list[Action]:
    """An abort for a VTOL waiting on the ground at the drop point: it goes around first (ArduPlane then climbs
    out and flies the rest of the mission home by itself); moving its mission on would not lift it."""
    if not any(isinstance(a, Abort) for a in actions) or not _on_the_ground_at_place(plan, history, seen):
        return actions
    changed: list[Action] = []
    for action in actions:
        if isinstance(action, Abort):
            first = not any(isinstance(done, GoAround) for done in changed)
            changed += [GoAround(action.reason)] if first else []
            changed.append(replace(action, how=AbortHow.LEAVE_TO_VEHICLE))
        else:
            changed.append(action)
    return changed


def _releasing_at_hold(plan: DeliveryPlan, history: History, seen: Observed, seq: int, limits: Limits) -> list[Action]:
    """Release at height and winch: the controller commands each step at the release hold, journaled first."""
    state, drop, winch = seen.vehicle, plan.profile.drop, plan.order.method is DeliveryMethod.WINCH
    if history.commanded(Command.GRIPPER_RELEASE):
        if seen.release_evidence is not None:
            return [MarkReleased(seen.release_evidence)]
        if (
            seen.gripper_closed
            and history.resumed_count > 0
            and not history.commanded_in_this_run(Command.GRIPPER_RELEASE)
        ):
            # Journaled, then the controller died: the gripper is still closed, so the command never took.
            return [ReleaseGripper("the gripper is still closed after a restart: the release never took")]
        if _seconds_since(history, Command.GRIPPER_RELEASE, state) > drop.release_confirm_timeout_s:
            return [
                Abort(
                    "release not confirmed: returning with the parcel",
                    AbortHow.RETURN_ALONG_ROUTE,
                    AbortCause.DROP_POINT,
                )
            ]
        return []
    if seq >= plan.climb_seq:
        return [_not_released("the release hold ended without a release", AbortHow.LEAVE_TO_VEHICLE)]
    if winch and history.commanded(Command.WINCH_LOWER):
        if _seconds_since(history, Command.WINCH_LOWER, state) < drop.winch_length_m / drop.winch_rate_m_s:
            return []
        return [ReleaseGripper()]
    if seq != plan.release_hold_seq:
        return []
    verdict = _interlocks(plan, history, seen, plan.drop_alt_m, limits)
    if verdict is None:
        return []
    if not verdict.ok:
        return [
            verdict,
            Abort(
                "release interlock violated at the release height: no release",
                AbortHow.RETURN_ALONG_ROUTE,
                AbortCause.DROP_POINT,
            ),
        ]
    return [verdict, Winch(Command.WINCH_LOWER) if winch else ReleaseGripper()]


def _after_release(plan: DeliveryPlan, history: History, seen: Observed, seq: int) -> list[Action]:
    state = seen.vehicle
    if seq >= plan.climb_seq:
        return [Enter(Trigger.HEADING_HOME)]
    if plan.order.method is DeliveryMethod.PAYLOAD_PLACE:
        if _on_the_ground_at_place(plan, history, seen):
            return [GoAround("released on the ground at the drop point: climbing out")]
        return []  # the mission climbs away by itself (a VTOL once it has gone around)
    drop = plan.profile.drop
    if plan.order.method is DeliveryMethod.WINCH:
        if not history.commanded(Command.WINCH_RETRACT):
            return [Winch(Command.WINCH_RETRACT)]
        if not history.commanded(Command.WINCH_RELAX):
            if _seconds_since(history, Command.WINCH_RETRACT, state) < drop.winch_length_m / drop.winch_rate_m_s:
                return []
            return [Winch(Command.WINCH_RELAX)]
    if Command.SET_CURRENT in history.commands_in_state:
        return []  # sent; MISSION_CURRENT will show it
    return [SetCurrent(plan.climb_seq, Command.SET_CURRENT, "released")]


def _seconds_since(history: History, command: Command, state: VehicleState) -> float:
    at = history.commanded_ms.get(command)
    if at is None or state.time_boot_ms is None:
        return 0.0
    return max(0.0, (state.time_boot_ms - at) / 1000.0)
