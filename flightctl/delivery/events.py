"""The vocabulary of a delivery: its states and the names of what the journal records.

Every name the sequencer writes and every name ``History`` reads is one of these enums, so a typo is a type
error rather than a silently broken "never release twice". The values are the strings journals have always
held, so journals written before the enums existed read the same.
"""

from __future__ import annotations

import enum


class DeliveryState(enum.StrEnum):
    PREFLIGHT = "PREFLIGHT"
    UPLOADING = "UPLOADING"
    ARMING = "ARMING"
    ENROUTE = "ENROUTE"
    ON_STATION = "ON_STATION"
    RELEASING = "RELEASING"
    RELEASED = "RELEASED"
    RETURNING = "RETURNING"
    ABORTING = "ABORTING"
    # The link was lost and did not come back within the controller's bound: the vehicle follows its own
    # fallback (the gate hold times out, the mission brings it home) and the parcel is presumed on board.
    # Not final: a controller started again with the same journal picks the delivery up from the vehicle.
    OUT_OF_CONTACT = "OUT_OF_CONTACT"
    LANDED = "LANDED"
    FAILED = "FAILED"
    # An island leg (a fixed-wing aircraft, airstrip to airstrip). The destination went out of limits en route:
    # on to the alternate, or back to the origin, by the leg's rule.
    DIVERTING = "DIVERTING"
    ARRIVED = "ARRIVED"  # landed and disarmed at the destination airstrip: the delivery event
    UNLOADED = "UNLOADED"  # the ground crew confirmed the unload


class AbortCause(enum.StrEnum):
    """Why a delivery turned back, as far as the customer is concerned (ABORTING's ``cause``): a token of the
    contract the tracking page words ("because of the wind"); the operator's sentence is ``reason``."""

    WIND = "wind"  # above the profile's limit
    BATTERY = "battery"  # low voltage, or too little energy to get home with the reserve
    DROP_POINT = "drop_point"  # the release was not safe or did not happen there
    OTHER = "other"  # anything else: the autopilot, the airspace, an operator, the link


class ParcelWhereabouts(enum.StrEnum):
    """What OUT_OF_CONTACT says of the parcel (its detail's ``parcel``): the ground tells the customer from this,
    so it is a token of the contract, not a sentence to reword."""

    DELIVERED = "delivered"  # released before the link was lost
    ON_BOARD = "on_board"  # presumed on board: not released when the link was lost


# States with no way out in the table.
TERMINAL = frozenset({DeliveryState.LANDED, DeliveryState.FAILED, DeliveryState.UNLOADED})
# The flight is over: nothing is left for the controller to fly (a leg that ARRIVED waits only for its unload).
FLOWN = TERMINAL | {DeliveryState.ARRIVED}
# States in which the controller's loop ends; a restart resumes OUT_OF_CONTACT, never the flown ones.
LOOP_ENDS = FLOWN | {DeliveryState.OUT_OF_CONTACT}
ON_THE_GROUND = frozenset({DeliveryState.PREFLIGHT, DeliveryState.UPLOADING, DeliveryState.ARMING})
IN_FLIGHT_SUPERVISED = frozenset(
    {DeliveryState.ENROUTE, DeliveryState.ON_STATION, DeliveryState.RELEASING, DeliveryState.RELEASED}
)


class EventKind(enum.StrEnum):
    STATE = "state"  # a transition; the name is the DeliveryState entered
    COMMAND = "command"  # something about to be commanded, journaled before it is sent
    OBSERVATION = "observation"  # something seen or measured
    CHECK = "check"  # a go/no-go or interlock check, with its verdict and its line


class Command(enum.StrEnum):
    GRIPPER_GRAB = "gripper_grab"
    FENCE_SETUP = "fence_setup"
    SET_MODE = "set_mode"
    SET_CURRENT = "set_current"
    ARM = "arm"
    DISARM = "disarm"
    RELEASE_AUTHORISED = "release_authorised"  # the go-ahead at the gate (set-current to the drop)
    WINCH_LOWER = "winch_lower"
    GRIPPER_RELEASE = "gripper_release"
    WINCH_RETRACT = "winch_retract"
    WINCH_RELAX = "winch_relax"
    GO_AROUND = "go_around"  # a VTOL landed for a payload place: climb back out and on with the mission


class Observation(enum.StrEnum):
    PLAN = "plan"  # what was planned (delivery/plan_record.py), journaled as the go/no-go starts, for reports
    GRIPPER_GRAB_FAILED = "gripper_grab_failed"
    WIND_SOURCES = "wind_sources"  # whether the autopilot can estimate wind (drag fusion), read at preflight
    TELEMETRY_INCOMPLETE = "telemetry_incomplete"
    UPLOADED = "uploaded"
    ENERGY_AT_START = "energy_at_start"
    MISSION_STARTED = "mission_started"
    RESUMED = "resumed"
    LINK_LOST = "link_lost"
    LINK_RECOVERED = "link_recovered"
    REMOTE_ID_LOST = "remote_id_lost"  # in flight: the transmitter silent or failing, or the operator data stale
    REMOTE_ID_RECOVERED = "remote_id_recovered"
    STEP_FAILED = "step_failed"
    ABORT_ACTION_FAILED = "abort_action_failed"
    WINCH_LOWERING = "winch_lowering"
    WINCH_RETRACTING = "winch_retracting"


class CheckStage(enum.StrEnum):
    PREFLIGHT = "preflight"
    FENCE = "fence"
    INTERLOCKS = "interlocks"
