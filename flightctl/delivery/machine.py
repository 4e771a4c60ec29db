"""The delivery's one state machine: every legal transition, as a table, and nothing else.

In the manner of h11's ``_state.py``: states and triggers are plain values, and ``TRANSITIONS`` maps (the state
a delivery is in, what happened) to the state it enters. Reading the table is reading the delivery. Callers
name what happened (a ``Trigger``), never the state to enter; ``next_state`` looks it up, and a trigger the
table does not hold for the current state raises ``IllegalTransition`` naming both, instead of writing a
journal that no decision expects (a RELEASED before a release was authorised, a PREFLIGHT after take-off).

Everything that enters a state goes through ``DeliveryRecorder.enter``, which asks this table first: the ground
phase, the supervising loop, a resume after a restart and the daemon's worker alike. The journal reader
(``History``) does not: what is on disk already happened, and a journal of an older version must still read.

``None`` stands for "no state yet": an order the journal has not seen.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from flightctl.delivery.events import DeliveryState
from flightctl.errors import MustStop

S = DeliveryState


class Trigger(enum.StrEnum):
    """What happened, that moves a delivery on."""

    # The ground phase.
    GROUND_PHASE_STARTED = "ground_phase_started"  # pre-flight begins (again, after a restart on the ground)
    GO = "go"  # every go/no-go check passed: upload
    NO_GO = "no_go"
    UPLOAD_FAILED = "upload_failed"
    UPLOADED = "uploaded"  # mission and fence on board, read back: arm
    ARM_FAILED = "arm_failed"
    ARMED = "armed"  # armed in AUTO at the first item (or found so after a restart)
    CANCELLED_ON_THE_GROUND = "cancelled_on_the_ground"  # an operator's abort before take-off
    VEHICLE_NOT_OURS = "vehicle_not_ours"  # armed, but not under this delivery: refused
    GROUND_STEP_FAILED = "ground_step_failed"  # a step raised with the vehicle disarmed on the ground
    # Flight.
    MISSION_NEVER_STARTED = "mission_never_started"  # armed, but the mission did not begin: disarmed, failed
    REACHED_GATE = "reached_gate"
    RELEASE_AUTHORISED = "release_authorised"  # interlocks satisfied at the gate (or authorised before a restart)
    RELEASE_CONFIRMED = "release_confirmed"  # evidence that the parcel left
    HEADING_HOME = "heading_home"  # released, and the mission's way home has begun
    ABORTED = "aborted"  # any abort rule, the link lost in a supervised phase, a mission not ours on resume
    LINK_GIVEN_UP = "link_given_up"  # the link stayed lost past the controller's bound
    TOUCHED_DOWN = "touched_down"  # disarmed after take-off, seen while supervising
    FOUND_LANDED = "found_landed"  # a restarted controller finds the vehicle on the ground
    # Island legs.
    DESTINATION_UNUSABLE = "destination_unusable"  # no runway there in limits any more: divert or return
    ARRIVED_AT_DESTINATION = "arrived_at_destination"  # landed and disarmed at the destination airstrip
    UNLOAD_CONFIRMED = "unload_confirmed"  # the ground crew says the hold is empty


_ON_THE_GROUND: tuple[S | None, ...] = (None, S.PREFLIGHT, S.UPLOADING, S.ARMING)
# Airborne states a restarted controller can find its delivery in (the journal's last state).
_AIRBORNE = (S.ENROUTE, S.ON_STATION, S.RELEASING, S.RELEASED, S.RETURNING, S.ABORTING, S.DIVERTING)


def _from(states: Iterable[S | None], trigger: Trigger, target: S) -> dict[tuple[S | None, Trigger], S]:
    return {(state, trigger): target for state in states}


TRANSITIONS: Mapping[tuple[S | None, Trigger], S] = {
    # Pre-flight starts from nothing, or again from any ground state a controller died in (nothing flew).
    **_from(_ON_THE_GROUND, Trigger.GROUND_PHASE_STARTED, S.PREFLIGHT),
    (S.PREFLIGHT, Trigger.GO): S.UPLOADING,
    (S.PREFLIGHT, Trigger.NO_GO): S.FAILED,
    (S.UPLOADING, Trigger.UPLOADED): S.ARMING,
    (S.UPLOADING, Trigger.UPLOAD_FAILED): S.FAILED,
    (S.ARMING, Trigger.ARMED): S.ENROUTE,
    (S.ARMING, Trigger.ARM_FAILED): S.FAILED,
    **_from((S.PREFLIGHT, S.UPLOADING, S.ARMING), Trigger.CANCELLED_ON_THE_GROUND, S.FAILED),
    **_from(_ON_THE_GROUND, Trigger.VEHICLE_NOT_OURS, S.FAILED),
    **_from(_ON_THE_GROUND, Trigger.GROUND_STEP_FAILED, S.FAILED),
    # Flight: the mission carries the vehicle; the controller follows it and acts at the gate and the drop.
    (S.ENROUTE, Trigger.MISSION_NEVER_STARTED): S.FAILED,
    (S.ENROUTE, Trigger.REACHED_GATE): S.ON_STATION,
    (S.ON_STATION, Trigger.RELEASE_AUTHORISED): S.RELEASING,
    (S.RELEASING, Trigger.RELEASE_CONFIRMED): S.RELEASED,
    (S.RELEASED, Trigger.HEADING_HOME): S.RETURNING,
    # An abort can come in any airborne state (one found after a restart included), and again during an abort
    # (a resume that finds a mission not ours turns a return along the route into RTL).
    **_from((*_AIRBORNE, S.OUT_OF_CONTACT), Trigger.ABORTED, S.ABORTING),
    **_from(_AIRBORNE, Trigger.LINK_GIVEN_UP, S.OUT_OF_CONTACT),
    **_from(_AIRBORNE, Trigger.TOUCHED_DOWN, S.LANDED),
    **_from((*_AIRBORNE, S.OUT_OF_CONTACT), Trigger.FOUND_LANDED, S.LANDED),
    # An island leg: the mission flies it and lands; the controller turns it away when the destination goes out
    # of limits, and a landing at the destination is the delivery. The crew's unload confirmation follows.
    (S.ENROUTE, Trigger.DESTINATION_UNUSABLE): S.DIVERTING,
    # (A controller that lost the link, or died, and finds the aircraft landed at the destination: arrived.)
    **_from((S.ENROUTE, S.ABORTING, S.OUT_OF_CONTACT), Trigger.ARRIVED_AT_DESTINATION, S.ARRIVED),
    (S.ARRIVED, Trigger.UNLOAD_CONFIRMED): S.UNLOADED,
}


class IllegalTransition(MustStop):
    """A trigger the table does not hold for the delivery's state: a bug in the caller, refused before anything
    is journaled."""

    def __init__(self, state: DeliveryState | None, trigger: Trigger) -> None:
        self.state = state
        self.trigger = trigger
        where = "before any state" if state is None else f"in {state.value}"
        super().__init__(f"{trigger.value} is not a legal transition {where}")


def next_state(state: DeliveryState | None, trigger: Trigger) -> DeliveryState:
    """The state ``trigger`` moves a delivery in ``state`` to; ``IllegalTransition`` when there is none."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise IllegalTransition(state, trigger) from None


def triggers_from(state: DeliveryState | None) -> frozenset[Trigger]:
    """What may happen next to a delivery in ``state`` (for reports and tests)."""
    return frozenset(trigger for (source, trigger) in TRANSITIONS if source == state)
