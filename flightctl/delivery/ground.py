"""On the ground, in order: preflight (grip, go/no-go), upload (mission, fence), arm from a known state.

Each step returns False after journaling FAILED with its reason; nothing later runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flightctl.delivery.events import CheckStage, Command, Observation
from flightctl.delivery.machine import Trigger
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.preflight import Check, preflight_checks
from flightctl.delivery.recorder import DeliveryRecorder
from flightctl.delivery.wind import DRAG_PARAMS, GroundWind, vehicle_estimates_wind
from flightctl.errors import ConditionTimeout, FlightctlError, MustStop
from flightctl.missions.model import MissionPlan
from flightctl.missions.verify import expected_on_vehicle
from flightctl.vehicle.vehicle import Vehicle

# Fence types ArduPilot should enforce: maximum altitude (1) and polygons (4). Not its 150 m circle (2).
FENCE_TYPE_ALT_AND_POLYGON = 5
FENCE_ACTION_RTL_OR_LAND = 1
# The mission's first real item: a new delivery always starts here, whatever the last one left current.
FIRST_ITEM = 1
# A mode every ArduPilot vehicle has that is not AUTO: leaving AUTO makes re-entering it start the mission.
NOT_AUTO = "GUIDED"


async def preflight(
    vehicle: Vehicle, plan: DeliveryPlan, record: DeliveryRecorder, ground_wind: GroundWind | None
) -> bool:
    await record.enter(Trigger.GROUND_PHASE_STARTED)
    await vehicle.payload.discover()
    drag = {name: float((await vehicle.params.get(name)).value) for name in DRAG_PARAMS}
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
    for check in verdict.checks:
        await record.check(check.name, ok=check.ok, line=check.line(), stage=CheckStage.PREFLIGHT, detail=check.detail)
    if not verdict.go:
        await record.enter(Trigger.NO_GO, reason="NO-GO", failed=[c.name for c in verdict.failed])
        return False
    return True


async def upload(vehicle: Vehicle, plan: DeliveryPlan, record: DeliveryRecorder) -> bool:
    await record.enter(Trigger.GO)
    firmware = vehicle.firmware
    try:
        report = await vehicle.mission.upload_plan(plan.mission, firmware=firmware)
        await _setup_fence(vehicle, plan, record)
    except MustStop:
        raise  # the journal failed: nothing more may be done, not even a FAILED
    except FlightctlError as exc:
        await record.enter(Trigger.UPLOAD_FAILED, reason=f"upload or fence setup failed: {exc}")
        return False
    # The vehicle keeps its own home as item 0; the hash leaves it out, so this is what a read-back gives.
    mission_hash = MissionPlan(expected_on_vehicle(plan.mission, firmware).mission).content_hash()
    await record.note(Observation.UPLOADED, stored_hash=report.stored_hash, mission_hash=mission_hash)
    return True


async def _setup_fence(vehicle: Vehicle, plan: DeliveryPlan, record: DeliveryRecorder) -> None:
    values = {
        "FENCE_TYPE": FENCE_TYPE_ALT_AND_POLYGON,
        "FENCE_ALT_MAX": plan.site.fence_alt_max_m,
        "FENCE_ACTION": FENCE_ACTION_RTL_OR_LAND,
        "FENCE_ENABLE": 1,
    }
    await record.command(Command.FENCE_SETUP, **values)
    await vehicle.params.set_many(values)
    enabled = (await vehicle.params.get("FENCE_ENABLE")).value == 1
    check = Check("fence enabled", enabled, "FENCE_ENABLE 1" if enabled else "FENCE_ENABLE did not stay at 1")
    await record.check(check.name, ok=check.ok, line=check.line(), stage=CheckStage.FENCE)
    if not enabled:
        raise FlightctlError("FENCE_ENABLE did not stay at 1")


async def arm(vehicle: Vehicle, record: DeliveryRecorder, *, outbound_time_s: float | None = None) -> bool:
    """Arm in AUTO with the new mission at its first item, whatever mode and item the last flight left.

    A vehicle still in AUTO from the last landing does not restart its mission when asked for AUTO again
    (ArduCopter's ModeAuto::init only runs on a mode change), and one that stopped mid-mission resumes where
    it stopped (MIS_RESTART 0). So: leave AUTO, set the current item to the first, then enter AUTO.
    """
    await record.enter(Trigger.UPLOADED)
    await record.note(Observation.ENERGY_AT_START, consumed_wh=vehicle.state.battery_consumed_wh)
    try:
        if vehicle.state.mode == "AUTO":
            await record.command(Command.SET_MODE, mode=NOT_AUTO, reason="leave AUTO so the new mission starts")
            await vehicle.commands.set_mode(NOT_AUTO)
        await record.command(Command.SET_CURRENT, seq=FIRST_ITEM, reason="start the new mission at its first item")
        await vehicle.mission.set_current(FIRST_ITEM)
        await record.command(Command.SET_MODE, mode="AUTO")
        await vehicle.commands.set_mode("AUTO")
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
