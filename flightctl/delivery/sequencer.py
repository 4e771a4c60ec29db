"""The delivery state machine: it supervises one delivery and decides release and abort.

    PREFLIGHT -> UPLOADING -> ARMING -> ENROUTE -> ON_STATION -> RELEASING -> RELEASED -> RETURNING -> LANDED
                                          \\______________ ABORTING (return with the parcel) ______/
    any step before take-off may end in FAILED (NO-GO, upload refused, vehicle refused to arm)

Every transition and every command that changes the vehicle or the parcel is journaled, on disk, before it
is acted on. A controller that died and starts again reads the journal and the vehicle: it never arms
twice, never uploads over a flying mission, never releases twice.

Aborts and the vehicle action each ends in:
- battery below the abort voltage or below the energy needed to get home: RTL (ArduPilot takes the nearest
  of home and the rally points);
- wind above the limit, interlock violated, release not confirmed: back along the planned route with the
  parcel (the mission's return leg, which keeps clear of no-fly zones; RTL flies straight);
- geofence breach or any other autopilot failsafe: the autopilot's own action (FENCE_ACTION...), journaled;
- link to the autopilot lost: the mission itself returns home with the parcel when the gate hold times out.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flightctl.delivery.energy import energy_to_home
from flightctl.delivery.interlocks import release_interlocks
from flightctl.delivery.journal import Journal, JournalError, JournalEvent
from flightctl.delivery.order import DeliveryMethod
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.preflight import preflight_checks
from flightctl.dialect import mavlink
from flightctl.errors import ConditionTimeout, FlightctlError
from flightctl.geo import AltFrame, Location, distance_m
from flightctl.link.connection import LinkState
from flightctl.missions.model import MissionPlan, MissionType
from flightctl.vehicle.mission import expected_on_vehicle
from flightctl.vehicle.telemetry import VehicleState
from flightctl.vehicle.vehicle import Vehicle

log = logging.getLogger(__name__)


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
    LANDED = "LANDED"
    FAILED = "FAILED"


TERMINAL = frozenset({DeliveryState.LANDED, DeliveryState.FAILED})
ON_THE_GROUND = frozenset({DeliveryState.PREFLIGHT, DeliveryState.UPLOADING, DeliveryState.ARMING})
# Conditions that must persist this long (vehicle time) before they abort: one gust or sag is not a trend.
PERSIST_S = 3.0
# How long the vehicle may take to settle at a hold before the interlocks count as violated.
SETTLE_S = 20.0
# Fence types ArduPilot should enforce: maximum altitude (1) and polygons (4). Not its 150 m circle (2).
FENCE_TYPE_ALT_AND_POLYGON = 5
FENCE_ACTION_RTL_OR_LAND = 1


@dataclass
class DeliveryProgress:
    state: DeliveryState
    distance_to_go_m: float | None
    relative_alt_m: float | None
    battery_v: float | None
    battery_pct: int | None
    mission_seq: int | None


@dataclass
class DeliveryOutcome:
    order_id: str
    state: DeliveryState
    delivered: bool
    abort_reason: str | None = None
    nogo: list[str] = field(default_factory=list)
    release_point: Location | None = None
    release_error_m: float | None = None
    phase_times_s: dict[str, float] = field(default_factory=dict)
    energy_used_wh: float | None = None

    def as_json(self) -> dict[str, Any]:
        point = self.release_point
        return {
            "order_id": self.order_id,
            "outcome": "delivered" if self.delivered else ("no-go" if self.nogo else "not delivered"),
            "final_state": self.state.value,
            "abort_reason": self.abort_reason,
            "nogo": self.nogo,
            "release_point": None if point is None else {"lat_deg": point.lat_deg, "lon_deg": point.lon_deg},
            "release_distance_from_target_m": None if self.release_error_m is None else round(self.release_error_m, 2),
            "phase_times_s": {k: round(v, 1) for k, v in self.phase_times_s.items()},
            "energy_used_wh": None if self.energy_used_wh is None else round(self.energy_used_wh, 2),
        }


@dataclass
class _History:
    """What the journal says happened to this order."""

    state: DeliveryState | None = None
    mission_hash: str | None = None
    release_started: bool = False
    released: bool = False
    abort_reason: str | None = None
    nogo: list[str] = field(default_factory=list)
    release_point: Location | None = None
    energy_at_start_wh: float | None = None
    armed_by_us: bool = False

    @classmethod
    def of(cls, events: list[JournalEvent]) -> _History:
        history = cls()
        for event in events:
            history.state = DeliveryState(event.state)
            detail = event.detail
            if event.name == "uploaded":
                history.mission_hash = detail.get("mission_hash")
            elif event.name in ("release_authorised", "gripper_release"):
                history.release_started = True
            elif event.kind == "state" and event.name == DeliveryState.RELEASED:
                history.released = True
                if "lat_deg" in detail:
                    history.release_point = Location(detail["lat_deg"], detail["lon_deg"], 0.0, AltFrame.ABSOLUTE)
            elif event.kind == "state" and event.name == DeliveryState.ABORTING:
                history.abort_reason = detail.get("reason")
            elif event.kind == "check" and detail.get("stage") == "preflight" and not detail.get("ok", True):
                history.nogo.append(detail.get("line", event.name))
            elif event.kind == "command" and event.name == "arm":
                history.armed_by_us = True
            elif event.name == "energy_at_start":
                history.energy_at_start_wh = detail.get("consumed_wh")
        return history


class DeliverySequencer:
    def __init__(
        self,
        vehicle: Vehicle,
        plan: DeliveryPlan,
        journal: Journal,
        *,
        on_progress: Callable[[DeliveryProgress], None] | None = None,
        tick_s: float = 0.25,
    ) -> None:
        self.vehicle = vehicle
        self.plan = plan
        self.journal = journal
        self.on_progress = on_progress
        self.tick_s = tick_s
        self.state: DeliveryState | None = None
        self.history = _History()
        self._link_lost = False
        self._since: dict[str, int] = {}  # condition name -> vehicle ms it was first seen
        self._entered_ms: int | None = None
        self._mode_expected: set[str] = {"AUTO"}
        self._texts_before_release = 0  # STATUSTEXT count when the release was authorised
        self._commanded_release_done = False

    @property
    def order_id(self) -> str:
        return self.plan.order.order_id

    # ---- journal-first primitives ----------------------------------------------------------------------

    def _vehicle_ms(self) -> int | None:
        return self.vehicle.state.time_boot_ms

    async def _record(self, kind: str, name: str, detail: dict[str, Any] | None = None) -> None:
        state = self.state.value if self.state is not None else DeliveryState.PREFLIGHT.value
        await self.journal.record(
            self.order_id, kind=kind, state=state, name=name, detail=detail, vehicle_ms=self._vehicle_ms()
        )

    async def _enter(self, state: DeliveryState, **detail: Any) -> None:
        self.state = state
        self._entered_ms = self._vehicle_ms()
        log.info("%s: %s %s", self.order_id, state.value, detail or "")
        await self._record("state", state.value, detail)
        self._report(self.vehicle.state)

    async def _command(self, name: str, detail: dict[str, Any] | None = None) -> None:
        """Journal that we are about to command ``name``; the caller then does it."""
        await self._record("command", name, detail)

    # ---- entry point -----------------------------------------------------------------------------------

    async def run(self) -> DeliveryOutcome:
        self.history = _History.of(await self.journal.events(self.order_id))
        last = self.history.state
        flying = self.vehicle.state.armed
        if last in TERMINAL:
            self.state = last
            return await self._outcome()
        if flying and last is DeliveryState.ARMING and self.history.armed_by_us:
            last = DeliveryState.ENROUTE  # we armed it and died before saying so: it is flying our mission
        if last is None or last in ON_THE_GROUND:
            if flying:
                self.state = last or DeliveryState.PREFLIGHT
                await self._enter(DeliveryState.FAILED, reason="the vehicle is already flying, not under this delivery")
                return await self._outcome()
            return await self._fresh_start()
        self.state = last
        await self.vehicle.payload.discover()
        await self._record(
            "observation", "resumed", {"vehicle_armed": flying, "mission_seq": self.vehicle.state.mission_current_seq}
        )
        if not flying:
            await self._enter(DeliveryState.LANDED, note="found on the ground when supervision resumed")
            return await self._outcome()
        if not await self._vehicle_flies_our_mission():
            await self._abort("the mission on the vehicle is not the one this delivery uploaded", rtl=True)
        return await self._supervise()

    async def _vehicle_flies_our_mission(self) -> bool:
        held = await self.vehicle.mission.download(MissionType.MISSION)
        return MissionPlan(held).content_hash() == self.history.mission_hash

    # ---- on the ground -----------------------------------------------------------------------------------

    async def _fresh_start(self) -> DeliveryOutcome:
        vehicle = self.vehicle
        await self._enter(DeliveryState.PREFLIGHT)
        await vehicle.payload.discover()
        await self._command("gripper_grab")
        parcel_gripped = True
        try:
            await vehicle.payload.grab()
        except FlightctlError as exc:
            parcel_gripped = False
            await self._record("observation", "gripper_grab_failed", {"error": str(exc)})
        try:
            await vehicle.telemetry.wait_until(
                lambda s: s.gps_fix_type is not None and s.ekf_flags is not None and s.home is not None,
                timeout_s=30,
                what="GPS, EKF and home reports",
            )
        except ConditionTimeout as exc:
            await self._record("observation", "telemetry_incomplete", {"error": str(exc)})
        verdict = preflight_checks(
            self.plan, vehicle.state.snapshot(), parcel_gripped=parcel_gripped, now_utc=datetime.now(UTC)
        )
        for check in verdict.checks:
            await self._record(
                "check",
                check.name,
                {"stage": "preflight", "ok": check.ok, "detail": check.detail, "line": check.line()},
            )
        if not verdict.go:
            self.history.nogo = [check.line() for check in verdict.failed]
            await self._enter(DeliveryState.FAILED, reason="NO-GO", failed=[c.name for c in verdict.failed])
            return await self._outcome()

        await self._enter(DeliveryState.UPLOADING)
        firmware = vehicle.firmware
        try:
            report = await vehicle.mission.upload_plan(self.plan.mission, firmware=firmware)
            await self._setup_fence()
        except FlightctlError as exc:
            await self._enter(DeliveryState.FAILED, reason=f"upload or fence setup failed: {exc}")
            return await self._outcome()
        mission_hash = MissionPlan(expected_on_vehicle(self.plan.mission, firmware).mission).content_hash()
        # The vehicle keeps its own home as item 0; the hash leaves it out, so this is what a read-back gives.
        self.history.mission_hash = mission_hash
        await self._record("observation", "uploaded", {"stored_hash": report.stored_hash, "mission_hash": mission_hash})

        await self._enter(DeliveryState.ARMING)
        consumed = vehicle.state.battery_consumed_wh
        await self._record("observation", "energy_at_start", {"consumed_wh": consumed})
        self.history.energy_at_start_wh = consumed
        try:
            await self._command("set_mode", {"mode": "AUTO"})
            await vehicle.commands.set_mode("AUTO")
            await self._command("arm")
            await vehicle.commands.arm()
        except FlightctlError as exc:
            await self._enter(DeliveryState.FAILED, reason=f"vehicle did not arm: {exc}")
            return await self._outcome()
        await self._enter(DeliveryState.ENROUTE)
        return await self._supervise()

    async def _setup_fence(self) -> None:
        values = {
            "FENCE_TYPE": FENCE_TYPE_ALT_AND_POLYGON,
            "FENCE_ALT_MAX": self.plan.site.fence_alt_max_m,
            "FENCE_ACTION": FENCE_ACTION_RTL_OR_LAND,
            "FENCE_ENABLE": 1,
        }
        await self._command("fence_setup", values)
        await self.vehicle.params.set_many(values)
        enabled = (await self.vehicle.params.get("FENCE_ENABLE")).value == 1
        await self._record(
            "check", "fence enabled", {"ok": enabled, "line": f"{'GO   ' if enabled else 'NO-GO'} fence enabled"}
        )
        if not enabled:
            raise FlightctlError("FENCE_ENABLE did not stay at 1")

    # ---- in the air --------------------------------------------------------------------------------------

    async def _supervise(self) -> DeliveryOutcome:
        updates = asyncio.Event()
        remove = self.vehicle.connection.add_listener(
            ("GLOBAL_POSITION_INT", "MISSION_CURRENT", "HEARTBEAT"), lambda _m: updates.set()
        )
        try:
            while self.state not in TERMINAL:
                try:
                    async with asyncio.timeout(self.tick_s * 4):
                        await updates.wait()
                except TimeoutError:
                    pass
                updates.clear()
                try:
                    await self._step(self.vehicle.state.snapshot())
                except JournalError:
                    raise  # without the journal nothing may be done: the mission's own gate takes over
                except FlightctlError as exc:
                    log.warning("%s: %s (will look again)", self.order_id, exc)
                    await self._record("observation", "step_failed", {"error": str(exc)})
        finally:
            remove()
        return await self._outcome()

    def _persisted(self, name: str, condition: bool, state: VehicleState, seconds: float = PERSIST_S) -> bool:
        """True once ``condition`` has held continuously for ``seconds`` of vehicle time."""
        now = state.time_boot_ms or 0
        if not condition:
            self._since.pop(name, None)
            return False
        first = self._since.setdefault(name, now)
        return now - first >= seconds * 1000

    def _in_state_s(self, state: VehicleState) -> float:
        if self._entered_ms is None or state.time_boot_ms is None:
            return 0.0
        return (state.time_boot_ms - self._entered_ms) / 1000.0

    async def _step(self, state: VehicleState) -> None:
        self._report(state)
        if await self._link_check():
            return
        current = self.state
        if not state.armed and current not in ON_THE_GROUND:
            await self._enter(DeliveryState.LANDED, released=self.history.released)
            return
        if current in (
            DeliveryState.ENROUTE,
            DeliveryState.ON_STATION,
            DeliveryState.RELEASING,
            DeliveryState.RELEASED,
        ):
            reason = self._abort_reason(state)
            if reason is not None:
                await self._abort(reason, rtl=reason.startswith("battery"))
                return
        seq = state.mission_current_seq or 0
        plan = self.plan
        if current is DeliveryState.ENROUTE:
            if seq >= plan.climb_seq:
                await self._abort("the gate hold ended without a go-ahead", rtl=False, command=False)
            elif seq >= plan.gate_seq:
                await self._enter(DeliveryState.ON_STATION)
        elif current is DeliveryState.ON_STATION:
            await self._at_gate(state, seq)
        elif current is DeliveryState.RELEASING:
            await self._releasing(state, seq)
        elif current is DeliveryState.RELEASED and seq >= plan.climb_seq:
            await self._enter(DeliveryState.RETURNING)

    async def _link_check(self) -> bool:
        """True while the link is down (nothing can be commanded)."""
        lost = self.vehicle.connection.state is LinkState.LOST
        if lost and not self._link_lost:
            self._link_lost = True
            await self._record(
                "observation", "link_lost", {"plan": "the gate hold times out and the mission returns home"}
            )
            if self.state in (DeliveryState.ENROUTE, DeliveryState.ON_STATION, DeliveryState.RELEASING):
                await self._enter(DeliveryState.ABORTING, reason="link to the autopilot lost")
        elif not lost and self._link_lost:
            self._link_lost = False
            await self._record("observation", "link_recovered")
            if self.state is DeliveryState.ABORTING and not self.history.released:
                await self._return_along_route("link recovered during an abort")
        return lost

    def _abort_reason(self, state: VehicleState) -> str | None:
        profile = self.plan.profile
        voltage = state.battery_voltage_v
        if self._persisted("low voltage", voltage is not None and voltage < profile.battery_abort_voltage_v, state):
            return f"battery {voltage:.2f} V below the abort voltage {profile.battery_abort_voltage_v:g} V"
        wind = state.wind_speed_m_s
        if self._persisted("wind", wind is not None and wind > profile.wind_limit_m_s, state):
            return f"wind {wind:.1f} m/s above the limit {profile.wind_limit_m_s:g} m/s"
        needed, remaining = self._energy_home(state)
        if needed is not None and remaining is not None:
            short = remaining < needed + profile.reserve_fraction * profile.usable_battery_wh
            if self._persisted("low energy", short, state):
                return f"battery {remaining:.1f} Wh left, {needed:.1f} Wh needed to get home plus the reserve"
        if state.fence_breached:
            return "geofence breached"
        if state.mode is not None and state.mode not in self._mode_expected:
            return f"the autopilot switched to {state.mode} (failsafe or another station)"
        if self.vehicle.mission.changed_elsewhere():
            return "the mission was changed by another station"
        return None

    def _energy_home(self, state: VehicleState) -> tuple[float | None, float | None]:
        if state.position is None or state.battery_consumed_wh is None:
            return None, None
        km_home = distance_m(state.position, self.plan.site.home()) / 1000.0
        parcel = 0.0 if self.history.released else self.plan.order.parcel_kg
        needed = energy_to_home(
            self.plan.profile, km_home=km_home, parcel_kg=parcel, headwind_m_s=state.wind_speed_m_s or 0.0
        )
        remaining = self.plan.profile.usable_battery_wh - state.battery_consumed_wh
        return needed, remaining

    async def _abort(self, reason: str, *, rtl: bool, command: bool = True) -> None:
        await self._enter(DeliveryState.ABORTING, reason=reason, with_parcel=not self.history.released)
        self.history.abort_reason = reason
        if not command or self.vehicle.state.mode in ("RTL", "LAND", "SMART_RTL"):
            return  # the mission or the autopilot already brings it home; fighting it would be worse
        try:
            if rtl or self.vehicle.state.mode != "AUTO":
                await self._rtl(reason)
            else:
                await self._return_along_route(reason)
        except JournalError:
            raise
        except FlightctlError as exc:
            await self._record("observation", "abort_action_failed", {"error": str(exc)})
            if not rtl:
                await self._rtl(f"{reason} (return along the route failed)")

    async def _rtl(self, reason: str) -> None:
        await self._command("set_mode", {"mode": "RTL", "reason": reason})
        self._mode_expected.add("RTL")
        await self.vehicle.commands.set_mode("RTL")

    async def _return_along_route(self, reason: str) -> None:
        await self._command("set_current", {"seq": self.plan.climb_seq, "reason": reason})
        await self.vehicle.mission.set_current(self.plan.climb_seq)

    # ---- the drop -----------------------------------------------------------------------------------------

    async def _settled_interlocks(self, state: VehicleState, expected_alt_m: float) -> bool | None:
        """True: release allowed. None: still settling. False: violated after the settle time (journaled)."""
        result = release_interlocks(self.plan.order, self.plan.profile, state, expected_alt_m=expected_alt_m)
        if result.ok:
            await self._record(
                "check",
                "release interlocks",
                {"ok": True, "line": result.describe(), "distance_m": result.distance_to_drop_m},
            )
            return True
        if self._in_state_s(state) < SETTLE_S:
            return None
        await self._record(
            "check",
            "release interlocks",
            {"ok": False, "line": result.describe(), "distance_m": result.distance_to_drop_m},
        )
        return False

    async def _at_gate(self, state: VehicleState, seq: int) -> None:
        plan = self.plan
        if seq > plan.gate_seq:  # the hold timed out (or someone moved the mission on) without our go-ahead
            await self._abort("the gate hold ended without a go-ahead", rtl=False, command=False)
            return
        if self.history.release_started:  # after a restart: never authorise a second time
            await self._enter(DeliveryState.RELEASING, note="release already authorised before the restart")
            return
        verdict = await self._settled_interlocks(state, plan.profile.drop.approach_alt_m)
        if verdict is None:
            return
        if not verdict:
            await self._abort("release interlock violated at the gate: no release", rtl=False)
            return
        self.history.release_started = True
        await self._command("release_authorised", {"set_current": plan.drop_seq})
        self._texts_before_release = self.vehicle.telemetry.status_count
        await self.vehicle.mission.set_current(plan.drop_seq)
        await self._enter(DeliveryState.RELEASING)

    async def _releasing(self, state: VehicleState, seq: int) -> None:
        plan, drop = self.plan, self.plan.profile.drop
        if plan.order.method is DeliveryMethod.PAYLOAD_PLACE:
            evidence = self.vehicle.payload.release_evidence(state, self._texts_before_release)
            if evidence is not None:
                await self._released(state, evidence.source, evidence.detail)
            elif self._in_state_s(state) > drop.release_confirm_timeout_s:
                await self._abort("release not confirmed in time: returning with the parcel", rtl=False)
            elif seq >= plan.climb_seq:
                await self._abort("the vehicle climbed away from the place without releasing", rtl=False, command=False)
            return
        if seq >= plan.climb_seq:
            await self._abort("the release hold ended without a release", rtl=False, command=False)
            return
        if seq != plan.release_hold_seq or self._commanded_release_done:
            return
        verdict = await self._settled_interlocks(state, plan.drop_alt_m)
        if verdict is None:
            return
        if not verdict:
            await self._abort("release interlock violated at the release height: no release", rtl=False)
            return
        await self._commanded_release(state)

    async def _commanded_release(self, state: VehicleState) -> None:
        payload, drop = self.vehicle.payload, self.plan.profile.drop
        self._commanded_release_done = True
        try:
            if self.plan.order.method is DeliveryMethod.WINCH:
                await self._command("winch_lower", {"length_m": drop.winch_length_m, "rate_m_s": drop.winch_rate_m_s})
                servo = await payload.winch(
                    mavlink.WINCH_RELATIVE_LENGTH_CONTROL, length_m=drop.winch_length_m, rate_m_s=drop.winch_rate_m_s
                )
                await self._record("observation", "winch_lowering", {"servo_us": servo})
                await self.vehicle.telemetry.sleep(drop.winch_length_m / drop.winch_rate_m_s)
            await self._command("gripper_release")
            evidence = await payload.release(timeout_s=drop.release_confirm_timeout_s)
            await self._released(self.vehicle.state.snapshot(), evidence.source, evidence.detail)
            if self.plan.order.method is DeliveryMethod.WINCH:
                await self._command("winch_retract", {"length_m": drop.winch_length_m})
                servo = await payload.winch(
                    mavlink.WINCH_RELATIVE_LENGTH_CONTROL, length_m=-drop.winch_length_m, rate_m_s=drop.winch_rate_m_s
                )
                await self._record("observation", "winch_retracting", {"servo_us": servo})
                await self.vehicle.telemetry.sleep(drop.winch_length_m / drop.winch_rate_m_s)
                await self._command("winch_relax")
                await payload.winch(mavlink.WINCH_RELAXED)
            await self._command("set_current", {"seq": self.plan.climb_seq, "reason": "released"})
            await self.vehicle.mission.set_current(self.plan.climb_seq)
        except FlightctlError as exc:
            if self.history.released:
                await self._record("observation", "after_release_step_failed", {"error": str(exc)})
                await self._return_along_route("a step after the release failed")
            else:
                await self._abort(f"release not confirmed: {exc}", rtl=False)

    async def _released(self, state: VehicleState, source: str, detail: str) -> None:
        self.history.released = True
        position = state.position
        point: dict[str, Any] = {"evidence": source, "detail": detail}
        if position is not None:
            point |= {
                "lat_deg": position.lat_deg,
                "lon_deg": position.lon_deg,
                "error_m": distance_m(position, self.plan.order.drop_location()),
            }
            self.history.release_point = position
        await self._enter(DeliveryState.RELEASED, **point)

    # ---- reporting ---------------------------------------------------------------------------------------

    def _report(self, state: VehicleState) -> None:
        if self.on_progress is None or self.state is None:
            return
        target = (
            self.plan.site.home()
            if self.history.released or self.state is DeliveryState.ABORTING
            else self.plan.order.drop_location()
        )
        self.on_progress(
            DeliveryProgress(
                state=self.state,
                distance_to_go_m=None if state.position is None else distance_m(state.position, target),
                relative_alt_m=state.relative_alt_m,
                battery_v=state.battery_voltage_v,
                battery_pct=state.battery_remaining_pct,
                mission_seq=state.mission_current_seq,
            )
        )

    async def _outcome(self) -> DeliveryOutcome:
        events = await self.journal.events(self.order_id)
        history = _History.of(events)
        phases: dict[str, float] = {}
        marks = [(e.name, e.vehicle_ms) for e in events if e.kind == "state" and e.vehicle_ms is not None]
        for (name, start), (_next, end) in itertools.pairwise(marks):
            phases[name] = phases.get(name, 0.0) + (end - start) / 1000.0
        consumed = self.vehicle.state.battery_consumed_wh
        energy = None
        if consumed is not None and history.energy_at_start_wh is not None:
            energy = consumed - history.energy_at_start_wh
        point = history.release_point
        return DeliveryOutcome(
            order_id=self.order_id,
            state=history.state or DeliveryState.FAILED,
            delivered=history.released,
            abort_reason=history.abort_reason,
            nogo=history.nogo,
            release_point=point,
            release_error_m=None if point is None else distance_m(point, self.plan.order.drop_location()),
            phase_times_s=phases,
            energy_used_wh=energy,
        )
