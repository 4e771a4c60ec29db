"""On the ground, in order: preflight (grip, go/no-go), upload (mission, fence), arm from a known state.

Each step returns False after journaling FAILED with its reason; nothing later runs. An island leg has its own
preflight (``leg_preflight``: the aircraft on its runway, the airstrips' winds) and uploads with the leg's
flight parameters; upload and arm are the same steps.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.events import CheckStage, Command, DeliveryState, Observation
from flightctl.delivery.ground_steps import Arm, SetMode, StartAt, arm_steps, fence_values
from flightctl.delivery.history import History
from flightctl.delivery.journal import JournalEvent
from flightctl.delivery.leg_planner import flight_params
from flightctl.delivery.leg_preflight import LegBefore, leg_checks
from flightctl.delivery.machine import Trigger
from flightctl.delivery.order import VehicleKind
from flightctl.delivery.plan_record import plan_record
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.preflight import Check, GoNoGo, preflight_checks, remote_id_check
from flightctl.delivery.recorder import DeliveryRecorder
from flightctl.delivery.wind import AIRSPEED_PARAM, DRAG_PARAMS, GroundWind, vehicle_estimates_wind
from flightctl.errors import ConditionTimeout, FlightctlError, MustStop
from flightctl.missions.model import MissionPlan
from flightctl.missions.verify import expected_on_vehicle
from flightctl.vehicle.remote_id import ENFORCE_ARMING
from flightctl.vehicle.vehicle import Vehicle

# A broadcast the companion has just started is acknowledged by the transmitter within about 3 s (its report
# comes once a second, after ArduPilot has passed the data on): wait that long before calling it a NO-GO.
REMOTE_ID_SETTLE_S = 5.0


async def preflight(
    vehicle: Vehicle, plan: DeliveryPlan, record: DeliveryRecorder, ground_wind: GroundWind | None
) -> bool:
    await record.enter(Trigger.GROUND_PHASE_STARTED)
    await record.note(Observation.PLAN, **plan_record(plan))
    await vehicle.payload.discover()
    names = DRAG_PARAMS if plan.profile.kind is VehicleKind.MULTIROTOR else (*DRAG_PARAMS, AIRSPEED_PARAM)
    drag = {name: float((await vehicle.params.get(name)).value) for name in names}
    estimates_wind = vehicle_estimates_wind(drag)
    await record.note(Observation.WIND_SOURCES, vehicle=estimates_wind, own=plan.profile.wind.drag_bcoef_kg_m2, **drag)
    await record.command(Command.GRIPPER_GRAB)
    parcel_gripped = True
    try:
        await vehicle.payload.grab()
    except FlightctlError as exc:
        parcel_gripped = False
        await record.note(Observation.GRIPPER_GRAB_FAILED, error=str(exc))
    try:
        await vehicle.telemetry.wait_until(
            lambda s: s.gps_fix_type is not None and s.ekf_flags is not None and s.home is not None,
            timeout_s=30,
            what="GPS, EKF and home reports",
        )
    except ConditionTimeout as exc:
        await record.note(Observation.TELEMETRY_INCOMPLETE, error=str(exc))
    verdict = preflight_checks(
        plan,
        vehicle.state.snapshot(),
        parcel_gripped=parcel_gripped,
        now_utc=datetime.now(UTC),
        ground_wind=ground_wind,
        vehicle_estimates_wind=estimates_wind,
    )
    return await _verdict(verdict, record, vehicle)


async def remote_id_verdict(vehicle: Vehicle) -> Check | None:
    """The Remote ID check, when this aircraft flies with Remote ID: the companion has the operator's settings,
    or the autopilot enforces it (``DID_OPTIONS`` bit 0). Waits a few seconds of vehicle time for a broadcast
    that has only just started to be acknowledged; None when neither side asks for Remote ID."""
    enforced, port_problem = False, None
    with contextlib.suppress(FlightctlError):
        # A build without OpenDroneID has no DID_* parameters: fail fast, never fetch the whole list for them.
        enabled = (await vehicle.params.get("DID_ENABLE", list_fallback=False)).value
        options = (await vehicle.params.get("DID_OPTIONS", list_fallback=False)).value if enabled else 0
        enforced = int(options) & ENFORCE_ARMING != 0
    if vehicle.remote_id.settings is None and not enforced:
        return None
    try:
        port = int((await vehicle.params.get("DID_MAVPORT", list_fallback=False)).value)
        can = int((await vehicle.params.get("DID_CANDRIVER", list_fallback=False)).value)
        if port < 0 and can <= 0:
            port_problem = "the autopilot passes Remote ID to no transmitter (DID_MAVPORT -1, DID_CANDRIVER 0)"
    except FlightctlError as exc:
        port_problem = f"the autopilot has no OpenDroneID parameters (DID_MAVPORT: {exc})"
    with contextlib.suppress(ConditionTimeout):
        await vehicle.telemetry.wait_until(
            lambda _s: vehicle.remote_id.status().healthy, timeout_s=REMOTE_ID_SETTLE_S, what="Remote ID healthy"
        )
    # The autopilot's own reason: a pre-arm failure, or its warning of a lost transmitter or operator location
    # (never "ODID: transmitter OK").
    said = [t.text for t in vehicle.telemetry.status_log if "OpenDroneID" in t.text or t.text.startswith("ODID: lost")]
    return remote_id_check(vehicle.remote_id.status(), said[-1] if said else None, port_problem)


async def with_remote_id(vehicle: Vehicle, verdict: GoNoGo) -> GoNoGo:
    """``verdict`` with the Remote ID check added, when this aircraft flies with Remote ID."""
    remote_id = await remote_id_verdict(vehicle)
    return verdict if remote_id is None else GoNoGo((*verdict.checks, remote_id))


async def _verdict(verdict: GoNoGo, record: DeliveryRecorder, vehicle: Vehicle) -> bool:
    verdict = await with_remote_id(vehicle, verdict)
    for check in verdict.checks:
        await record.check(
            check.name, ok=check.ok, line=check.line(), stage=CheckStage.PREFLIGHT, detail=check.detail, **check.numbers
        )
    if not verdict.go:
        await record.enter(Trigger.NO_GO, reason="NO-GO", failed=[c.name for c in verdict.failed])
        return False
    return True


async def leg_preflight(vehicle: Vehicle, flight: LegDelivery, record: DeliveryRecorder) -> bool:
    """Go/no-go for an island leg from the aircraft on its runway (``leg_preflight.leg_checks``); a return leg
    also needs the unload of the leg it follows confirmed in the same journal."""
    await record.enter(Trigger.GROUND_PHASE_STARTED)
    await record.note(Observation.PLAN, **plan_record(flight))
    after_leg = None
    if flight.follows is not None:
        after_leg = leg_before(flight.follows, await record.journal.events(flight.follows), datetime.now(UTC))
    try:
        await vehicle.telemetry.wait_until(
            lambda s: s.position is not None and s.heading_deg is not None and s.gps_fix_type is not None
            and s.ekf_flags is not None,
            timeout_s=30,
            what="position, heading, GPS and EKF reports",
        )  # fmt: skip
    except ConditionTimeout as exc:
        await record.note(Observation.TELEMETRY_INCOMPLETE, error=str(exc))
    plan = flight.plan
    verdict, _ = leg_checks(
        plan.leg,
        plan.airstrips,
        plan.profile,
        vehicle.state.snapshot(),
        winds=flight.winds,
        wind_aloft=flight.wind_aloft,
        parcel_kg=flight.parcel_kg,
        now_utc=datetime.now(UTC),
        after_leg=after_leg,
    )
    return await _verdict(verdict, record, vehicle)


def leg_before(order_id: str, events: list[JournalEvent], now: datetime) -> LegBefore:
    """The leg a return leg follows, from its journal: its state, and how long ago it arrived."""
    arrived = next((e for e in events if e.entered is DeliveryState.ARRIVED), None)
    ago = None if arrived is None else (now - datetime.fromisoformat(arrived.at_utc)).total_seconds()
    return LegBefore(order_id, History.of(events).state, ago)


async def upload(vehicle: Vehicle, plan: DeliveryPlan | LegDelivery, record: DeliveryRecorder) -> bool:
    await record.enter(Trigger.GO)
    firmware = vehicle.firmware
    mission = plan.mission if isinstance(plan, DeliveryPlan) else plan.plan.mission
    settings = fence_values(plan) if isinstance(plan, DeliveryPlan) else flight_params(plan.plan)
    try:
        report = await vehicle.mission.upload_plan(mission, firmware=firmware)
        await _setup_fence(vehicle, settings, record)
    except MustStop:
        raise  # the journal failed: nothing more may be done, not even a FAILED
    except FlightctlError as exc:
        await record.enter(Trigger.UPLOAD_FAILED, reason=f"upload or fence setup failed: {exc}")
        return False
    # The vehicle keeps its own home as item 0; the hash leaves it out, so this is what a read-back gives.
    mission_hash = MissionPlan(expected_on_vehicle(mission, firmware).mission).content_hash()
    await record.note(Observation.UPLOADED, stored_hash=report.stored_hash, mission_hash=mission_hash)
    return True


async def _setup_fence(vehicle: Vehicle, values: dict[str, float], record: DeliveryRecorder) -> None:
    await record.command(Command.FENCE_SETUP, **values)
    await vehicle.params.set_many(values)
    enabled = (await vehicle.params.get("FENCE_ENABLE")).value == 1
    check = Check("fence enabled", enabled, "FENCE_ENABLE 1" if enabled else "FENCE_ENABLE did not stay at 1")
    await record.check(check.name, ok=check.ok, line=check.line(), stage=CheckStage.FENCE)
    if not enabled:
        raise FlightctlError("FENCE_ENABLE did not stay at 1")


async def arm(vehicle: Vehicle, record: DeliveryRecorder, *, outbound_time_s: float | None = None) -> bool:
    """Arm in AUTO with the new mission at its first item, whatever mode and item the last flight left
    (``ground_steps.arm_steps`` says how); each step is journaled before it is taken."""
    await record.enter(Trigger.UPLOADED)
    await record.note(Observation.ENERGY_AT_START, consumed_wh=vehicle.state.battery_consumed_wh)
    try:
        for step in arm_steps(vehicle.state.mode):
            if isinstance(step, SetMode):
                reason = {} if step.reason is None else {"reason": step.reason}
                await record.command(Command.SET_MODE, mode=step.mode, **reason)
                await vehicle.commands.set_mode(step.mode)
            elif isinstance(step, StartAt):
                await record.command(Command.SET_CURRENT, seq=step.seq, reason=step.reason)
                await vehicle.mission.set_current(step.seq)
            elif isinstance(step, Arm):
                await record.command(Command.ARM)
                await vehicle.commands.arm()
    except MustStop:
        raise
    except FlightctlError as exc:
        await record.enter(Trigger.ARM_FAILED, reason=f"vehicle did not arm: {exc}")
        return False
    # The planned time to the drop point: what a ground system can turn into an arrival time.
    detail = {} if outbound_time_s is None else {"outbound_time_s": round(outbound_time_s)}
    await record.enter(Trigger.ARMED, **detail)
    return True
