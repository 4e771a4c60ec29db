"""The sequencer as the thin loop it is, against the scripted MAVLink peer: it journals what the machine and the
pure decisions say, sends only what they ask for, and never turns a MustStop into a note. No SITL.

Whole deliveries are flown against ArduPilot SITL (tests/sitl/); these are the starts and refusals a real
autopilot makes slow or awkward to reach.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flightctl.delivery.actions import Enter
from flightctl.delivery.events import Command, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import Journal
from flightctl.delivery.machine import IllegalTransition, Trigger
from flightctl.delivery.recorder import DeliveryRecorder
from flightctl.delivery.sequencer import DeliverySequencer
from flightctl.dialect import mavlink
from flightctl.link.connection import MavConnection
from flightctl.vehicle.params import ParamEncoding
from flightctl.vehicle.vehicle import Vehicle
from tests.support.param_store import INT8, INT32, ParamStore
from tests.support.peer import ScriptedPeer
from tests.unit.test_delivery_decide import PLACE

ORDER_ID = PLACE.order.order_id


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with await Journal.open(tmp_path / "journal.sqlite") as opened:
        yield opened


def vehicle_params(peer: ScriptedPeer) -> ParamStore:
    """What the payload's discovery reads: servo 9 drives the gripper (function 28), its grab and release PWMs."""
    values = {f"SERVO{n}_FUNCTION": (28.0 if n == 9 else 0.0, INT8) for n in range(1, 17)}
    values |= {"GRIP_GRAB": (1900.0, INT32), "GRIP_RELEASE": (1100.0, INT32)}
    return ParamStore(peer, values, ParamEncoding.C_CAST)  # ArduPilot casts integers to the float field


async def vehicle_on(connection: MavConnection, peer: ScriptedPeer, *, armed: bool) -> Vehicle:
    vehicle = Vehicle(connection)
    if armed:
        peer.base_mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    await vehicle.telemetry.wait_until(lambda s: s.armed is armed and s.mode is not None, timeout_s=2, what="state")
    return vehicle


async def flown_until_enroute(journal: Journal) -> None:
    """A journal as a controller leaves it when it died in flight: uploaded, armed, en route."""
    recorder = DeliveryRecorder(journal, ORDER_ID, History(), lambda: 1_000)
    await recorder.enter(Trigger.GROUND_PHASE_STARTED)
    await recorder.enter(Trigger.GO)
    await recorder.note(Observation.UPLOADED, mission_hash="abc")
    await recorder.enter(Trigger.UPLOADED)
    await recorder.command(Command.ARM)
    await recorder.enter(Trigger.ARMED)


def commands_sent(peer: ScriptedPeer) -> list[int]:
    return [m.command for m in peer.sent("COMMAND_LONG")] + [m.command for m in peer.sent("COMMAND_INT")]


async def test_a_vehicle_flying_under_no_delivery_is_refused_and_nothing_is_commanded(
    peer: ScriptedPeer, connection: MavConnection, journal: Journal
) -> None:
    vehicle = await vehicle_on(connection, peer, armed=True)
    outcome = await DeliverySequencer(vehicle, PLACE, journal).run()
    assert outcome.state is DeliveryState.FAILED
    events = await journal.events(ORDER_ID)
    assert [(e.name, e.detail.get("reason")) for e in events] == [
        ("FAILED", "the vehicle is already flying, not under this delivery")
    ]
    assert commands_sent(peer) == []
    assert peer.sent("MISSION_COUNT") == []


async def test_a_delivery_found_on_the_ground_after_a_restart_is_closed_as_landed_without_arming_again(
    peer: ScriptedPeer, connection: MavConnection, journal: Journal
) -> None:
    await flown_until_enroute(journal)
    vehicle_params(peer)
    vehicle = await vehicle_on(connection, peer, armed=False)
    outcome = await DeliverySequencer(vehicle, PLACE, journal).run()
    assert outcome.state is DeliveryState.LANDED
    events = await journal.events(ORDER_ID)
    assert [e.name for e in events[-2:]] == [Observation.RESUMED, "LANDED"]
    assert events[-1].detail["note"] == "found on the ground when supervision resumed"
    assert commands_sent(peer) == [], "nothing is commanded: not an arm, not a mode"
    assert peer.sent("MISSION_REQUEST_LIST") == [], "a landed vehicle's mission is not read"


async def test_an_action_the_machine_forbids_stops_the_loop_instead_of_being_retried(
    peer: ScriptedPeer, connection: MavConnection, journal: Journal
) -> None:
    """Test that an action entering a state the table does not allow raises (MustStop) out of the sequencer's
    step, and is neither journaled nor noted as a failed step to try again."""
    await flown_until_enroute(journal)
    vehicle = await vehicle_on(connection, peer, armed=True)
    sequencer = DeliverySequencer(vehicle, PLACE, journal)
    sequencer.history = History.of(await journal.events(ORDER_ID))
    sequencer.record.history = sequencer.history
    before = len(await journal.events(ORDER_ID))
    with pytest.raises(IllegalTransition, match="heading_home is not a legal transition in ENROUTE"):
        await sequencer._act_or_note(Enter(Trigger.HEADING_HOME))
    assert len(await journal.events(ORDER_ID)) == before
    assert sequencer.history.state is DeliveryState.ENROUTE
