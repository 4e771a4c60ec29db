"""What the delivery's decisions ask the thin loop to do: plain values, carried out in order by the sequencer.

``decide`` (the flight) and ``resume`` (a controller started again) return lists of these; nothing here does
I/O. ``Enter`` names what happened (a ``Trigger``); the machine's table says which state that enters.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flightctl.delivery.events import AbortCause, Command, Observation
from flightctl.delivery.machine import Trigger
from flightctl.vehicle.payload import ReleaseEvidence

# Modes in which the autopilot is already bringing the vehicle home or down: an abort does not fight them.
AUTOPILOT_RETURNING = frozenset({"RTL", "LAND", "SMART_RTL"})


class AbortHow(enum.StrEnum):
    RTL = "rtl"
    RETURN_ALONG_ROUTE = "return_along_route"
    LEAVE_TO_VEHICLE = "leave_to_vehicle"  # the mission or the autopilot already brings it home
    LAND = "land"  # land where it is (LAND, QLAND on a VTOL): a rule that says land as soon as practicable


@dataclass(frozen=True)
class Enter:
    trigger: Trigger
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Note:
    observation: Observation
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordInterlocks:
    ok: bool
    line: str
    distance_m: float | None


@dataclass(frozen=True)
class Abort:
    reason: str  # for the operator
    how: AbortHow
    cause: AbortCause = AbortCause.OTHER  # for the customer


@dataclass(frozen=True)
class SetCurrent:
    """Move the mission on: the go-ahead at the gate (RELEASE_AUTHORISED) or the way home (SET_CURRENT)."""

    seq: int
    command: Command
    reason: str


@dataclass(frozen=True)
class ReleaseGripper:
    note: str = ""


@dataclass(frozen=True)
class Winch:
    command: Command  # WINCH_LOWER, WINCH_RETRACT or WINCH_RELAX


@dataclass(frozen=True)
class GoAround:
    """A VTOL on the ground at the drop point (a payload place): MAV_CMD_DO_GO_AROUND, after which ArduPlane
    climbs back to where the descent began and carries on with the mission (the climb, then home)."""

    reason: str


@dataclass(frozen=True)
class MarkReleased:
    evidence: ReleaseEvidence


@dataclass(frozen=True)
class FailOnGround:
    """Armed but the mission never began: disarm and fail, rather than hover over the depot."""

    reason: str


Action = (
    Enter
    | Note
    | RecordInterlocks
    | Abort
    | SetCurrent
    | ReleaseGripper
    | Winch
    | GoAround
    | MarkReleased
    | FailOnGround
)


def resolve_abort(how: AbortHow, mode: str | None) -> AbortHow:
    """The way home a rule asked for, given the mode the vehicle is in now."""
    if mode in AUTOPILOT_RETURNING:
        return AbortHow.LEAVE_TO_VEHICLE
    if how is AbortHow.RETURN_ALONG_ROUTE and mode != "AUTO":
        return AbortHow.RTL  # the return leg only flies in AUTO
    return how
