"""Where a delivery stands, for people and the daemon's feed: its state and the distance to where it is going."""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.events import DeliveryState
from flightctl.delivery.history import History
from flightctl.delivery.planner import DeliveryPlan
from flightctl.geo import Location, distance_m
from flightctl.vehicle.telemetry import VehicleState


@dataclass
class DeliveryProgress:
    state: DeliveryState
    distance_to_go_m: float | None
    relative_alt_m: float | None
    battery_v: float | None
    battery_pct: int | None
    mission_seq: int | None


def heading_for(plan: DeliveryPlan | LegDelivery, history: History) -> Location:
    """Where the aircraft is going now: the drop point or home for a delivery; the destination's landing point
    for a leg, or the diversion's once it diverts."""
    if isinstance(plan, LegDelivery):
        diversion = plan.diversion() if history.state is DeliveryState.DIVERTING else None
        return (diversion or plan.plan.sequences[0]).aim_point
    home_bound = history.released or history.state is DeliveryState.ABORTING
    return plan.site.home() if home_bound else plan.order.drop_location()


def progress_of(
    plan: DeliveryPlan | LegDelivery, history: History, delivery_state: DeliveryState, state: VehicleState
) -> DeliveryProgress:
    target = heading_for(plan, history)
    return DeliveryProgress(
        state=delivery_state,
        distance_to_go_m=None if state.position is None else distance_m(state.position, target),
        relative_alt_m=state.relative_alt_m,
        battery_v=state.battery_voltage_v,
        battery_pct=state.battery_remaining_pct,
        mission_seq=state.mission_current_seq,
    )
