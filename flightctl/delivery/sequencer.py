"""The delivery state machine's thin loop: observe, ask ``decide``, journal, act.

    PREFLIGHT -> UPLOADING -> ARMING -> ENROUTE -> ON_STATION -> RELEASING -> RELEASED -> RETURNING -> LANDED
                                          \\______________ ABORTING (return with the parcel) ______/
    any step before take-off may end in FAILED (NO-GO, upload refused, vehicle refused to arm, mission did
    not start); a link lost for longer than the controller waits ends its run in OUT_OF_CONTACT

An island leg (``LegDelivery``, a fixed-wing aircraft) is flown by the same loop: its own go/no-go, then
    ENROUTE -> ARRIVED (landed at the destination) | DIVERTING -> LANDED (elsewhere) | ABORTING -> LANDED
with ``decide_leg`` deciding; the crew's unload confirmation (UNLOADED) comes later, from the ground.

The legal transitions are the table in ``delivery.machine``; every decision lives in ``delivery.decide`` and
``delivery.resume`` (pure, unit-tested as data). This module only gathers what the
vehicle reports, journals each action (``DeliveryRecorder``) before carrying it out, and carries it out.
A controller that died and starts again reads the journal and the vehicle: it never arms twice, never
uploads over a flying mission, never commands a release that already took.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from flightctl.delivery import ground
from flightctl.delivery.actions import (
    Abort,
    AbortHow,
    Action,
    Enter,
    FailOnGround,
    GoAround,
    MarkReleased,
    Note,
    RecordInterlocks,
    ReleaseGripper,
    SetCurrent,
    Winch,
)
from flightctl.delivery.decide import Limits, Observed, Persistence, decide
from flightctl.delivery.decide_leg import LegDelivery, decide_leg, leg_resume_actions
from flightctl.delivery.events import LOOP_ENDS, CheckStage, Command, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import Journal
from flightctl.delivery.machine import Trigger
from flightctl.delivery.order import VehicleKind
from flightctl.delivery.outcome import DeliveryOutcome
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.position_trust import PositionWatch, position_doubts
from flightctl.delivery.progress import DeliveryProgress, progress_of
from flightctl.delivery.recorder import DeliveryRecorder
from flightctl.delivery.resume import Start, resume_actions, start_decision
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.delivery.wind import GroundWind, OwnWindEstimate
from flightctl.dialect import mavlink
from flightctl.errors import FlightctlError, MustStop
from flightctl.geo import distance_m
from flightctl.link.connection import LinkState
from flightctl.missions.model import MissionPlan, MissionType
from flightctl.vehicle.vehicle import Vehicle

log = logging.getLogger(__name__)


# Decisions at most this often in vehicle time, however fast the vehicle streams: a 10 Hz telemetry feed for
# the ground must not double the work of the flight logic (and at any SITL speedup the rhythm is the same).
MIN_DECISION_INTERVAL_MS = 200


LAND_COMPLETE = "Land complete"


def _failsafe_acting(text: str) -> bool:
    """ArduPilot's words for a failsafe taking effect ("GCS Failsafe On: RTL"), not for one clearing."""
    words = text.lower()
    return "failsafe" in words and "off" not in words and "clear" not in words


def _too_soon(last_ms: int | None, now_ms: int | None) -> bool:
    return last_ms is not None and now_ms is not None and 0 <= now_ms - last_ms < MIN_DECISION_INTERVAL_MS


class DeliverySequencer:
    def __init__(
        self,
        vehicle: Vehicle,
        plan: DeliveryPlan | LegDelivery,
        journal: Journal,
        *,
        on_progress: Callable[[DeliveryProgress], None] | None = None,
        tick_s: float = 0.25,
        limits: Limits | None = None,
        ground_wind: GroundWind | None = None,
        on_go: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.plan = plan
        self.journal = journal
        self.on_progress = on_progress
        self.tick_s = tick_s
        self.limits = limits or Limits()
        self.ground_wind = ground_wind  # the depot's measured wind, for go/no-go
        self._own_wind = OwnWindEstimate(plan.profile.wind)
        self._airstrip_winds: dict[str, SurfaceWind] = {}  # the newest reported for each airstrip of a leg
        self._failsafe_texts: deque[str] = deque(maxlen=5)  # what the autopilot said of its failsafes
        self._position = PositionWatch(plan.profile.position_trust)
        self._texts_seen = 0  # STATUSTEXTs already shown to the position watch
        self.history = History()
        self.record = DeliveryRecorder(journal, self.order_id, self.history, self._vehicle_ms, self._transition)
        self._persistence = Persistence()
        self._texts_after = 0  # STATUSTEXT count from which release evidence counts
        self._authorised_at_text = 0  # STATUSTEXT count at the release's go-ahead: a VTOL's touchdown counts after
        self._lost_since: float | None = None
        self.on_go = on_go  # awaited once go/no-go says GO, before anything is uploaded
        self._operator_abort: str | None = None
        self._wake = asyncio.Event()
        self._decide_now = False

    @property
    def order_id(self) -> str:
        return self.plan.order_id

    @property
    def state(self) -> DeliveryState | None:
        return self.history.state

    def _vehicle_ms(self) -> int | None:
        return self.vehicle.state.time_boot_ms

    # ---- entry point -----------------------------------------------------------------------------------

    async def run(self) -> DeliveryOutcome:
        self.history = History.of(await self.journal.events(self.order_id))
        self.record.history = self.history
        start = start_decision(self.history, self.vehicle.state.armed)
        if start is Start.REFUSE:
            await self.record.enter(
                Trigger.VEHICLE_NOT_OURS, reason="the vehicle is already flying, not under this delivery"
            )
        elif start is Start.FRESH:
            vehicle, plan, record = self.vehicle, self.plan, self.record
            if isinstance(plan, LegDelivery):
                checked = await ground.leg_preflight(vehicle, plan, record)
            else:
                checked = await ground.preflight(vehicle, plan, record, self.ground_wind)
            if (
                checked
                and await self._went()
                and await ground.upload(vehicle, plan, record)
                and await self._still_wanted()
                and await ground.arm(vehicle, record, outbound_time_s=plan.outbound_time_s)
            ):
                await self._supervise()
        elif start in (Start.FOUND_LANDED, Start.RESUME_FLYING):
            await self._resume(flying=start is Start.RESUME_FLYING)
        return self.outcome()

    def report_airstrip_wind(self, icao: str, wind: SurfaceWind) -> None:
        """A new surface wind measured at one of a leg's airstrips: the next decision sees it (the destination
        going out of limits diverts the aircraft, by the leg's rule)."""
        self._airstrip_winds[icao] = wind
        self._decide_now = True
        self._wake.set()

    def request_abort(self, reason: str) -> None:
        """An operator's abort: on the ground, nothing more is done; in flight, the next decision brings the
        parcel home along the route (``decide``'s rule, like every other abort)."""
        self._operator_abort = reason
        self._decide_now = True
        self._wake.set()

    async def _went(self) -> bool:
        if self.on_go is not None:
            await self.on_go()
        return await self._still_wanted()

    async def _still_wanted(self) -> bool:
        if self._operator_abort is None:
            return True
        await self.record.enter(
            Trigger.CANCELLED_ON_THE_GROUND, reason=f"operator abort before take-off: {self._operator_abort}"
        )
        return False

    def outcome(self) -> DeliveryOutcome:
        return DeliveryOutcome.from_history(self.order_id, self.history)

    async def _resume(self, *, flying: bool) -> None:
        vehicle = self.vehicle
        await vehicle.payload.discover()
        self._texts_after = vehicle.telemetry.status_count
        await self.record.note(Observation.RESUMED, vehicle_armed=flying, mission_seq=vehicle.state.mission_current_seq)
        ours = None
        if flying:
            held = await vehicle.mission.download(MissionType.MISSION)
            ours = MissionPlan(held).content_hash() == self.history.mission_hash
        state = vehicle.state.snapshot()
        if isinstance(self.plan, LegDelivery):
            actions = leg_resume_actions(self.plan, self.history, state, mission_is_ours=ours)
        else:
            actions = resume_actions(self.history, state, mission_is_ours=ours)
        for action in actions:
            await self._act(action)
        if flying:
            await self._supervise()

    # ---- the loop ------------------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        updates = self._wake
        remove = self.vehicle.connection.add_listener(
            ("GLOBAL_POSITION_INT", "MISSION_CURRENT", "HEARTBEAT", "SERVO_OUTPUT_RAW"), lambda _m: updates.set()
        )
        try:
            last_ms: int | None = None
            while self.history.state not in LOOP_ENDS:
                # Bounded: with the link down no message comes, and the loss itself must still be decided on.
                quiet = False
                try:
                    async with asyncio.timeout(self.tick_s * 4):
                        await updates.wait()
                except TimeoutError:
                    quiet = True
                updates.clear()
                now_ms = self.vehicle.state.time_boot_ms
                if not (quiet or self._decide_now) and _too_soon(last_ms, now_ms):
                    continue
                self._decide_now = False
                last_ms = now_ms
                seen = self._observe()
                self._report(seen)
                for action in self._decide(seen):
                    if not await self._act_or_note(action):
                        break
        finally:
            remove()

    def _decide(self, seen: Observed) -> list[Action]:
        if isinstance(self.plan, LegDelivery):
            return decide_leg(self.plan, self.history, seen, self._persistence, self.limits)
        return decide(self.plan, self.history, seen, self._persistence, self.limits)

    def _observe(self) -> Observed:
        vehicle = self.vehicle
        state = vehicle.state.snapshot()
        now = asyncio.get_running_loop().time()
        if vehicle.connection.state is LinkState.LOST:
            self._lost_since = self._lost_since if self._lost_since is not None else now
        else:
            self._lost_since = None
        payload = vehicle.payload
        evidence = None
        closed = None
        if payload.setup is not None and self.history.state is DeliveryState.RELEASING:
            evidence = payload.release_evidence(state, self._texts_after)
            if payload.servo_us(state, payload.setup.gripper_channel) is not None:
                closed = payload.gripper_at(state, payload.setup.grab_pwm)
        new_texts = vehicle.telemetry.texts_since(self._texts_seen)
        self._texts_seen = vehicle.telemetry.status_count
        self._failsafe_texts.extend(t.text for t in new_texts if _failsafe_acting(t.text))
        figures = self._position.update(state, new_texts)
        trust = self.plan.profile.position_trust
        doubts = position_doubts(trust, state, figures, min_satellites=self.plan.profile.min_satellites)
        return Observed(
            vehicle=state,
            own_wind_m_s=self._own_wind.update(state),
            position_doubts=tuple(doubts),
            link_lost_s=None if self._lost_since is None else now - self._lost_since,
            mission_changed_elsewhere=vehicle.mission.changed_elsewhere(),
            release_evidence=evidence,
            gripper_closed=closed,
            operator_abort=self._operator_abort,
            airstrip_winds=dict(self._airstrip_winds),
            failsafe_texts=tuple(self._failsafe_texts),
            remote_id_problems=None
            if vehicle.remote_id.settings is None
            else tuple(vehicle.remote_id.status().problems()),
            place_touchdown=self._placed(),
        )

    def _placed(self) -> bool:
        """ArduPlane's word that a VTOL has landed for its payload place: "Land complete" (quadplane.cpp,
        check_land_complete) since the go-ahead, or, for a controller started again while it waits there (the
        text went by before it), the landed state ON_GROUND at the place item."""
        plan, state = self.plan, self.vehicle.state
        if self.history.state not in (DeliveryState.RELEASING, DeliveryState.RELEASED, DeliveryState.ABORTING):
            return False
        texts = self.vehicle.telemetry.texts_since(self._authorised_at_text)
        if any(text.text.startswith(LAND_COMPLETE) for text in texts):
            return True
        at_place = isinstance(plan, DeliveryPlan) and state.mission_current_seq == plan.drop_seq
        return at_place and state.landed_state == mavlink.MAV_LANDED_STATE_ON_GROUND

    async def _act_or_note(self, action: Action) -> bool:
        """Carry out one action; a vehicle that did not do it is journaled and decided on again next time."""
        try:
            await self._act(action)
        except MustStop:
            raise  # without the journal nothing may be done: the mission's own gate takes over
        except FlightctlError as exc:
            log.warning("%s: %s failed: %s (will look again)", self.order_id, type(action).__name__, exc)
            command = getattr(action, "command", None)
            await self.record.note(
                Observation.STEP_FAILED, action=type(action).__name__, command=command, error=str(exc)
            )
            return False
        return True

    async def _act(self, action: Action) -> None:
        record, vehicle, plan = self.record, self.vehicle, self.plan
        if isinstance(action, Enter):
            await record.enter(action.trigger, **action.detail)
        elif isinstance(action, Note):
            await record.note(action.observation, **action.detail)
        elif isinstance(action, RecordInterlocks):
            await record.check(
                "release interlocks",
                ok=action.ok,
                line=action.line,
                stage=CheckStage.INTERLOCKS,
                distance_m=action.distance_m,
            )
        elif isinstance(action, Abort):
            await self._abort(action)
        elif isinstance(action, SetCurrent):
            await record.command(action.command, seq=action.seq, reason=action.reason)
            if action.command is Command.RELEASE_AUTHORISED:
                self._texts_after = self._authorised_at_text = vehicle.telemetry.status_count
            await vehicle.mission.set_current(action.seq)
        elif isinstance(action, ReleaseGripper):
            await record.command(Command.GRIPPER_RELEASE, note=action.note)
            self._texts_after = vehicle.telemetry.status_count
            await vehicle.payload.command_release()
        elif isinstance(action, Winch):
            await self._winch(action.command)
        elif isinstance(action, GoAround):
            await record.command(Command.GO_AROUND, reason=action.reason)
            await vehicle.commands.long(mavlink.MAV_CMD_DO_GO_AROUND, [0], label="go around")
        elif isinstance(action, MarkReleased) and isinstance(plan, DeliveryPlan):
            state = vehicle.state.snapshot()
            detail: dict[str, object] = {"evidence": action.evidence.source, "detail": action.evidence.detail}
            if state.position is not None:
                detail |= {
                    "lat_deg": state.position.lat_deg,
                    "lon_deg": state.position.lon_deg,
                    "error_m": distance_m(state.position, plan.order.drop_location()),
                }
            await record.enter(Trigger.RELEASE_CONFIRMED, **detail)
        elif isinstance(action, FailOnGround):
            await self._fail_on_ground(action.reason)

    async def _abort(self, action: Abort) -> None:
        record, vehicle = self.record, self.vehicle
        await record.enter(
            Trigger.ABORTED,
            reason=action.reason,
            with_parcel=not self.history.released,
            how=action.how,
            cause=action.cause,
        )
        plan = self.plan
        try:
            if action.how is AbortHow.RETURN_ALONG_ROUTE and isinstance(plan, DeliveryPlan):
                await record.command(Command.SET_CURRENT, seq=plan.climb_seq, reason=action.reason)
                await vehicle.mission.set_current(plan.climb_seq)
            elif action.how in (AbortHow.RTL, AbortHow.RETURN_ALONG_ROUTE):  # a leg's way back is an RTL
                await self._rtl(action.reason)
            elif action.how is AbortHow.LAND:
                mode = "QLAND" if plan.profile.kind is VehicleKind.VTOL else "LAND"
                await record.command(Command.SET_MODE, mode=mode, reason=action.reason)
                await vehicle.commands.set_mode(mode)
        except MustStop:
            raise
        except FlightctlError as exc:
            await record.note(Observation.ABORT_ACTION_FAILED, how=action.how, error=str(exc))
            if action.how is AbortHow.RETURN_ALONG_ROUTE:
                await self._rtl(f"{action.reason} (return along the route failed)")

    async def _rtl(self, reason: str) -> None:
        await self.record.command(Command.SET_MODE, mode="RTL", reason=reason)
        await self.vehicle.commands.set_mode("RTL")

    async def _winch(self, command: Command) -> None:
        payload, drop = self.vehicle.payload, self.plan.profile.drop
        await self.record.command(command, length_m=drop.winch_length_m, rate_m_s=drop.winch_rate_m_s)
        if command is Command.WINCH_RELAX:
            await payload.winch(mavlink.WINCH_RELAXED)
            return
        length = drop.winch_length_m if command is Command.WINCH_LOWER else -drop.winch_length_m
        servo = await payload.winch(
            mavlink.WINCH_RELATIVE_LENGTH_CONTROL, length_m=length, rate_m_s=drop.winch_rate_m_s
        )
        lowering = command is Command.WINCH_LOWER
        await self.record.note(Observation.WINCH_LOWERING if lowering else Observation.WINCH_RETRACTING, servo_us=servo)

    async def _fail_on_ground(self, reason: str) -> None:
        detail: dict[str, object] = {"reason": reason}
        try:
            await self.record.command(Command.DISARM, reason=reason)
            await self.vehicle.commands.disarm()
        except MustStop:
            raise
        except FlightctlError as exc:
            detail["disarm_error"] = str(exc)
        await self.record.enter(Trigger.MISSION_NEVER_STARTED, **detail)

    # ---- reporting ---------------------------------------------------------------------------------------

    def _transition(self, _state: DeliveryState) -> None:
        self._report(Observed(self.vehicle.state))

    def _report(self, seen: Observed) -> None:
        if self.on_progress is not None and self.history.state is not None:
            self.on_progress(progress_of(self.plan, self.history, self.history.state, seen.vehicle))
