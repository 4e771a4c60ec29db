"""An island leg's decisions, as data: no vehicle, no journal, no I/O.

The mission flies the leg and lands by itself (``leg_planner``): the controller's part is to watch. It acts
when the destination goes out of limits en route (on to the alternate, or back to the origin, by the leg's
rule: the mission's current item is set to that airstrip's first landing sequence), when the battery runs
short (RTL: with RTL_AUTOLAND 2 the nearest airstrip's landing sequence), and when the aircraft has landed
(at the destination it ARRIVED, the delivery; anywhere else it LANDED with the load on board). A failsafe's
mode change and a fence breach are the autopilot's to fly: the controller journals them and leaves it be.
The link lost over the sea changes nothing: the mission lands at the destination without the controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flightctl.delivery.actions import Abort, AbortHow, Action, Enter, Note, SetCurrent
from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.decide import Limits, Observed, Persistence, mission_start, remote_id_in_flight
from flightctl.delivery.events import FLOWN, ON_THE_GROUND, AbortCause, Command, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.leg_planner import LandingSequence, LegPlan, landing_limits
from flightctl.delivery.legs import RunwayLostRule
from flightctl.delivery.machine import Trigger
from flightctl.delivery.order import VehicleProfile
from flightctl.delivery.runway_choice import CALM, SurfaceWind, usable_runways
from flightctl.geo import distance_m
from flightctl.vehicle.telemetry import VehicleState

# Landed this close to a landing sequence's NAV_LAND point, it landed on that runway.
ON_THE_RUNWAY_M = 600.0
# Modes the autopilot flies a leg in without the controller having a say: the mission, and the RTL to the
# nearest landing sequence (commanded, or a failsafe's).
LEG_MODES = frozenset({"AUTO", "RTL"})
# A landing at the destination is the delivery whether the mission or an RTL (to the nearest airstrip, which
# was the destination) brought it there; a diversion lands elsewhere by definition.
ARRIVES_FROM = (DeliveryState.ENROUTE, DeliveryState.ABORTING, DeliveryState.OUT_OF_CONTACT)


@dataclass(frozen=True)
class LegDelivery:
    """What is carried on a leg: the order's opaque id, its mass, the leg planned for it, and the winds it was
    planned on (each airstrip's measurement, by ICAO, and the forecast aloft) for go/no-go to judge again."""

    order_id: str
    plan: LegPlan
    parcel_kg: float
    winds: Mapping[str, SurfaceWind] = field(default_factory=dict)
    wind_aloft: SurfaceWind = CALM
    follows: str | None = None  # a return leg: the order id of the leg it turns around from

    @property
    def profile(self) -> VehicleProfile:
        return self.plan.profile

    @property
    def outbound_time_s(self) -> float:
        return self.plan.track_km * 1000 / self.plan.profile.cruise_speed_m_s

    def diversion(self) -> LandingSequence | None:
        """Where the leg's rule sends the aircraft when the destination is out of limits: the alternate's best
        landing sequence, or the origin's; None when the mission holds none there."""
        strips = self.plan.airstrips
        to = strips.alternate if self.plan.leg.when_destination_unusable is RunwayLostRule.DIVERT else strips.origin
        sequences = self.plan.sequences_at(to.icao)
        return sequences[0] if sequences else None


def decide_leg(
    flight: LegDelivery, history: History, seen: Observed, persistence: Persistence, limits: Limits
) -> list[Action]:
    """The actions to take now, in order; [] means wait for the next observation."""
    state = history.state
    if state is None or state in FLOWN or state is DeliveryState.OUT_OF_CONTACT:
        return []
    link = _link(history, seen, limits, over=_water_below(flight.plan, seen.vehicle))
    if link is not None:
        return link
    vehicle = seen.vehicle
    if not vehicle.armed and state not in ON_THE_GROUND:
        return [_landed(flight, state, vehicle)]
    if state is DeliveryState.ENROUTE and not history.mission_started:
        return mission_start(history, vehicle, limits)
    if state in (DeliveryState.ENROUTE, DeliveryState.DIVERTING):
        remote_id = remote_id_in_flight(flight.plan.profile, history, seen, persistence, limits)
        if remote_id:
            return remote_id  # its RTL flies to the nearest airstrip's landing sequence
        rule = _abort_rule(flight, history, seen, persistence, limits)
        if rule is not None:
            return [rule]
    if state is DeliveryState.ENROUTE:
        return _destination_still_usable(flight, seen)
    if state is DeliveryState.DIVERTING and Command.SET_CURRENT not in history.commands_in_state:
        # Journaled as DIVERTING, then the set-current did not take (or the controller died before it).
        target = flight.diversion()
        if target is not None and (vehicle.mission_current_seq or 0) < target.start_seq:
            return [SetCurrent(target.start_seq, Command.SET_CURRENT, f"divert to {target.end.name}")]
    return []


def leg_resume_actions(
    flight: LegDelivery, history: History, vehicle: VehicleState, *, mission_is_ours: bool | None
) -> list[Action]:
    """On picking a leg up again after a restart (or once the link is back): what to journal and do before
    watching. Landed: where, as a landing seen live (at the destination it ARRIVED). Flying: armed before the
    restart said so; a mission not ours is an RTL to the nearest airstrip; contact regained after the
    controller gave the link up is an abort left to the autopilot, which flies on to a landing sequence."""
    state = history.state
    if not vehicle.armed:
        landed = _landed(flight, state or DeliveryState.ENROUTE, vehicle)
        if landed.trigger is Trigger.ARRIVED_AT_DESTINATION:
            return [landed]
        return [Enter(Trigger.FOUND_LANDED, {**landed.detail, "note": "found on the ground when supervision resumed"})]
    actions: list[Action] = []
    if state is DeliveryState.ARMING:
        actions.append(Enter(Trigger.ARMED, {"note": "armed before the restart"}))
    if mission_is_ours is False:
        reason = "the mission on the aircraft is not the one this leg uploaded: to the nearest airstrip"
        actions.append(Abort(reason, AbortHow.RTL))
    elif state is DeliveryState.OUT_OF_CONTACT:
        reason = "contact regained after the link was lost: the autopilot flies on to its landing sequence"
        actions.append(Abort(reason, AbortHow.LEAVE_TO_VEHICLE))
    return actions


def _water_below(plan: LegPlan, vehicle: VehicleState) -> str | None:
    """The leg's named water crossing the aircraft is over (by its distance from the departure threshold)."""
    if vehicle.position is None:
        return None
    km = distance_m(vehicle.position, plan.home) / 1000.0
    return next((water.name for water in plan.leg.water if water.from_km <= km <= water.to_km), None)


def _link(history: History, seen: Observed, limits: Limits, *, over: str | None) -> list[Action] | None:
    if seen.link_lost_s is None:
        return [Note(Observation.LINK_RECOVERED)] if history.link_lost else None
    if not history.link_lost:
        detail = {"plan": "the mission flies on and lands at the destination by itself"}
        return [Note(Observation.LINK_LOST, detail | ({"over": over} if over else {}))]
    if seen.link_lost_s >= limits.link_lost_give_up_s:
        return [
            Enter(
                Trigger.LINK_GIVEN_UP,
                {
                    "reason": f"link to the autopilot lost for {seen.link_lost_s:.0f} s: outcome unknown",
                    "parcel": "on_board",
                    "vehicle": "flying its mission (or its failsafe) to a landing sequence",
                },
            )
        ]
    return []


def _landed(flight: LegDelivery, state: DeliveryState, vehicle: VehicleState) -> Enter:
    """Disarmed after take-off: where, by the nearest landing sequence's NAV_LAND point."""
    detail: dict[str, Any] = {"released": False, "consumed_wh": vehicle.battery_consumed_wh}
    nearest = _nearest_landing(flight.plan, vehicle)
    if nearest is not None:
        sequence, off_m = nearest
        strip = next(s for s in _strips(flight.plan) if s.icao == sequence.end.airstrip)
        detail |= {"airstrip": strip.name, "icao": strip.icao, "runway": sequence.end.designator}
        detail["from_landing_point_m"] = round(off_m, 1)
        if strip.icao == flight.plan.airstrips.destination.icao and state in ARRIVES_FROM:
            return Enter(Trigger.ARRIVED_AT_DESTINATION, detail)
    return Enter(Trigger.TOUCHED_DOWN, detail)


def _nearest_landing(plan: LegPlan, vehicle: VehicleState) -> tuple[LandingSequence, float] | None:
    position = vehicle.position
    if position is None:
        return None
    nearest = min(plan.sequences, key=lambda s: distance_m(position, s.aim_point))
    off_m = distance_m(position, nearest.aim_point)
    return (nearest, off_m) if off_m <= ON_THE_RUNWAY_M else None


def _strips(plan: LegPlan) -> tuple[Airstrip, Airstrip, Airstrip]:
    return (plan.airstrips.origin, plan.airstrips.destination, plan.airstrips.alternate)


def _abort_rule(
    flight: LegDelivery, history: History, seen: Observed, persistence: Persistence, limits: Limits
) -> Abort | None:
    state, profile = seen.vehicle, flight.plan.profile
    if seen.operator_abort is not None:
        return Abort(f"operator abort: {seen.operator_abort}", AbortHow.RTL)
    low = state.battery_voltage_v is not None and state.battery_voltage_v < profile.battery_abort_voltage_v
    if persistence.held("low voltage", low, state.time_boot_ms or 0, limits.persist_s):
        reason = (
            f"battery {state.battery_voltage_v:.2f} V below the abort voltage {profile.battery_abort_voltage_v:g} V"
        )
        return Abort(f"{reason}: to the nearest airstrip", AbortHow.RTL, AbortCause.BATTERY)
    if state.fence_breached:
        return Abort("the leg's corridor fence was breached: the autopilot's RTL to the nearest airstrip",
                     AbortHow.LEAVE_TO_VEHICLE)  # fmt: skip
    said = f': it said "{seen.failsafe_texts[-1]}"' if seen.failsafe_texts else ""
    if state.mode is not None and state.mode not in LEG_MODES:
        reason = f"the autopilot switched to {state.mode} (a failsafe or another station){said}"
        return Abort(reason, AbortHow.LEAVE_TO_VEHICLE)
    if state.mode == "RTL" and not history.rtl_commanded:
        reason = f"the autopilot switched to RTL (a failsafe){said}: it lands at the nearest airstrip"
        return Abort(reason, AbortHow.LEAVE_TO_VEHICLE)
    return None


def _destination_still_usable(flight: LegDelivery, seen: Observed) -> list[Action]:
    destination = flight.plan.airstrips.destination
    wind = seen.airstrip_winds.get(destination.icao)
    if wind is None or usable_runways(destination, wind, landing_limits(flight.plan.profile)):
        return []
    target = flight.diversion()
    rule = flight.plan.leg.when_destination_unusable
    reason = f"no runway at {destination.name} in limits for the wind now reported there, {wind.text()}"
    if target is None:
        return [Abort(f"{reason}, and no landing sequence for the {rule.value}", AbortHow.RTL, AbortCause.WIND)]
    detail = {"reason": reason, "rule": rule.value, "to": target.end.name, "wind": wind.text()}
    return [
        Enter(Trigger.DESTINATION_UNUSABLE, detail),
        SetCurrent(target.start_seq, Command.SET_CURRENT, f"{rule.value}: {target.end.name}"),
    ]
