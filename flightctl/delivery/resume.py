"""What a controller does first with an order, and what it does on finding its delivery after a restart.

Pure, like ``decide``: the journal's history and what the vehicle reports in, a ``Start`` or a list of actions
out. The sequencer only downloads the mission (to say whether it is ours) and carries the actions out.
"""

from __future__ import annotations

import enum

from flightctl.delivery.actions import Abort, AbortHow, Action, Enter, resolve_abort
from flightctl.delivery.events import FLOWN, ON_THE_GROUND, DeliveryState
from flightctl.delivery.history import History
from flightctl.delivery.machine import Trigger
from flightctl.vehicle.telemetry import VehicleState


class Start(enum.StrEnum):
    """What a controller does first with an order, from the journal and whether the vehicle is armed."""

    FINISHED = "finished"  # the journal says it is over: report the outcome
    FRESH = "fresh"  # nothing flown yet: preflight, upload, arm
    REFUSE = "refuse"  # the vehicle is flying but not under this delivery
    FOUND_LANDED = "found_landed"  # we were flying it, it is on the ground now
    RESUME_FLYING = "resume_flying"  # check the mission on board is ours, then supervise


def start_decision(history: History, vehicle_armed: bool) -> Start:
    last = history.state
    if last in FLOWN:
        return Start.FINISHED
    if vehicle_armed and last is DeliveryState.ARMING and history.armed_by_us:
        return Start.RESUME_FLYING  # we armed it and died before saying so: it is flying our mission
    if last is None or last in ON_THE_GROUND:
        return Start.REFUSE if vehicle_armed else Start.FRESH
    return Start.RESUME_FLYING if vehicle_armed else Start.FOUND_LANDED


def resume_actions(history: History, vehicle: VehicleState, *, mission_is_ours: bool | None) -> list[Action]:
    """On picking a delivery up again (``Start.FOUND_LANDED`` or ``RESUME_FLYING``): what to journal and do before
    supervising. ``mission_is_ours``: whether the mission on board hashes as the one this delivery uploaded
    (None when the vehicle is on the ground and it was not read)."""
    if not vehicle.armed:
        detail = {
            "note": "found on the ground when supervision resumed",
            "released": history.released,
            "consumed_wh": vehicle.battery_consumed_wh,
        }
        return [Enter(Trigger.FOUND_LANDED, detail)]
    actions: list[Action] = []
    if history.state is DeliveryState.ARMING:
        actions.append(Enter(Trigger.ARMED, {"note": "armed before the restart"}))
    if mission_is_ours is False:
        reason = "the mission on the vehicle is not the one this delivery uploaded"
        actions.append(Abort(reason, resolve_abort(AbortHow.RTL, vehicle.mode)))
    elif history.state is DeliveryState.OUT_OF_CONTACT:
        reason = "contact regained after the link was lost: bringing the parcel home"
        actions.append(Abort(reason, resolve_abort(AbortHow.RETURN_ALONG_ROUTE, vehicle.mode)))
    return actions
