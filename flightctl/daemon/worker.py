"""The daemon's delivery side: takes orders, flies one at a time with the sequencer, answers through the outbox.

It knows nothing of MQTT. Requests come in typed (``mqtt.requests``); every answer (accepted, rejected, a
command's result) is a row in the journal's outbox, written before this returns, and the outbox pump sends
it whenever the broker is there. So a broker that is dead, slow or hostile cannot delay a decision here, and
the sequencer never waits on anything but the vehicle and the journal.

An order is a drop (``DeliveryPlan``) or an island leg (``LegDelivery``, for an aircraft whose config lists the
legs it flies); both are flown by the one sequencer. A leg's ground crew confirms the unload with a command, and
a new surface wind measured at one of the leg's airstrips reaches the leg in flight the same way.

One order at a time: an order is taken (checked, recorded) and answered only after go/no-go: accepted on GO,
before anything is uploaded; rejected with every reason otherwise. An order id seen before is never flown
again: the same order is acknowledged again, a different order under a used id is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flightctl.daemon import leg_commands
from flightctl.daemon.admission import order_problems, plan_or_problem
from flightctl.daemon.leg_admission import leg_flight_or_problem, leg_order_problems
from flightctl.daemon.order_rules import Repeat, abort_answer, answer_to_repeat, busy_reason, fails_the_order
from flightctl.daemon.telemetry_feed import DeliveryStatus
from flightctl.delivery.decide import Limits
from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.events import FLOWN, DeliveryState
from flightctl.delivery.flight_record import flight_record
from flightctl.delivery.history import History
from flightctl.delivery.journal import Journal, JournalError, OrderRecord
from flightctl.delivery.leg_files import LegSite
from flightctl.delivery.machine import Trigger
from flightctl.delivery.order import DeliveryOrder, Site, VehicleProfile
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.progress import DeliveryProgress
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.delivery.sequencer import DeliverySequencer
from flightctl.delivery.wind import GroundWind
from flightctl.errors import FlightctlError, MustStop, VehicleTimeout
from flightctl.link.connection import LinkState
from flightctl.link.tlog import recording, tlog_path
from flightctl.mqtt.answer_budget import AnswerBudget
from flightctl.mqtt.contract import MessageType
from flightctl.mqtt.requests import CommandRequest, DepotWind, OrderRequest, Refused
from flightctl.vehicle.vehicle import Vehicle

log = logging.getLogger(__name__)

# A flying delivery whose supervision failed (not the link: that has its own wait) is looked at again after this.
RETRY_SUPERVISION_S = 5.0
ORDERS_LOOKED_AT_ON_START = 10


@dataclass
class _Job:
    record: OrderRecord
    plan: DeliveryPlan | LegDelivery
    wind: GroundWind | None  # a drop's depot wind (a leg's winds are in its plan)
    accepted: bool = False
    abort_reason: str | None = None  # asked for before a sequencer was running
    # A leg's airstrips' newest surface winds reported since it was taken, handed to each sequencer it runs.
    airstrip_winds: dict[str, SurfaceWind] = field(default_factory=dict)
    sequencer: DeliverySequencer | None = field(default=None, repr=False)


class DeliveryWorker:
    def __init__(
        self,
        vehicle: Vehicle,
        journal: Journal,
        site: Site,
        profile: VehicleProfile,
        *,
        depot_radius_m: float,
        limits: Limits,
        on_change: Callable[[], None] = lambda: None,
        budget: AnswerBudget | None = None,
        tlog_folder: Path | None = None,
        legs: Mapping[str, LegSite] | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.legs = dict(legs or {})  # the island legs this aircraft flies, by the name an order gives
        self.tlog_folder = tlog_folder  # each flight's telemetry log goes here (none without it)
        self.journal = journal
        self.site = site
        self.profile = profile
        self.depot_radius_m = depot_radius_m
        self.limits = limits
        self.on_change = on_change  # the current order or its state changed (for the online message)
        self.budget = budget or AnswerBudget()  # answers to unwanted messages (see mqtt.answer_budget)
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._job: _Job | None = None  # taken, from the moment it passed the checks until it ended
        self._progress: DeliveryProgress | None = None
        # More to say in a status answer (the broker side's counters), set by whoever wires the daemon.
        self.extra_status: Callable[[], dict[str, Any]] = dict

    # ---- what the ground can see ------------------------------------------------------------------------------

    def status(self) -> DeliveryStatus:
        job, progress = self._job, self._progress
        remote_id = self.vehicle.remote_id.status().report()
        if job is None:
            return DeliveryStatus(remote_id=remote_id)
        sequencer = job.sequencer
        state = sequencer.state if sequencer is not None else None
        distance = progress.distance_to_go_m if progress is not None else None
        return DeliveryStatus(job.record.order_id, state, distance, remote_id)

    def _on_progress(self, progress: DeliveryProgress) -> None:
        changed = self._progress is None or self._progress.state is not progress.state
        self._progress = progress
        if changed:
            self.on_change()

    # ---- orders -----------------------------------------------------------------------------------------------

    async def refuse(self, what: MessageType, refused: Refused) -> None:
        """Answer a payload that could not be read as an order or a command."""
        if what is MessageType.ORDER:
            await self._reject(refused.order_id, refused.request_id, refused.reasons)
        else:
            await self._command_result(
                refused.request_id, None, ok=False, result="; ".join(refused.reasons), budgeted=True
            )

    async def take_order(self, request: OrderRequest) -> None:
        order_id = request.order_id
        known = await self.journal.order(order_id)
        if known is not None:
            await self._answer_again(request, known)
            return
        if self._job is not None:
            busy = busy_reason(self._job.record.order_id, self.status().state)
            await self._reject(order_id, request.request_id, [busy])
            return
        flight = self._leg_or_problems(request) if request.leg is not None else self._drop_or_problems(request)
        if isinstance(flight, list):
            await self._reject(order_id, request.request_id, flight)
            return
        body = request.model_dump(mode="json", exclude={"request_id"}, exclude_none=True)
        record = await self.journal.receive_order(order_id, request.request_id, body)
        wind = request.depot_wind.ground_wind() if request.depot_wind is not None else None
        self._start(_Job(record, flight, wind))

    def _drop_or_problems(self, request: OrderRequest) -> DeliveryPlan | list[str]:
        assert request.order is not None
        problems = order_problems(
            request.order,
            self.site,
            self.profile,
            self.vehicle.state.snapshot(),
            link_up=self.vehicle.connection.state is LinkState.CONNECTED,
            depot_radius_m=self.depot_radius_m,
            now_utc=datetime.now(UTC),
        )
        if problems:
            return problems
        plan = plan_or_problem(request.order, self.site, self.profile)
        return [plan] if isinstance(plan, str) else plan

    def _leg_or_problems(self, request: OrderRequest) -> LegDelivery | list[str]:
        assert request.leg is not None
        link_up = self.vehicle.connection.state is LinkState.CONNECTED
        vehicle = self.vehicle.state.snapshot()
        problems = leg_order_problems(request, self.legs, self.profile, vehicle, link_up=link_up)
        if problems:
            return problems
        flight = leg_flight_or_problem(request, self.legs[request.leg.leg], self.profile)
        return [flight] if isinstance(flight, str) else flight

    def _start(self, job: _Job) -> None:
        self._job = job
        self._progress = None
        self._jobs.put_nowait(job)
        self.on_change()

    async def _answer_again(self, request: OrderRequest, known: OrderRecord) -> None:
        order_id = request.order_id
        answer = answer_to_repeat(
            order_id,
            request.what(),
            known_body=known.body,
            known_answer=known.answer,
            known_reasons=known.reasons,
            known_request_id=known.request_id,
            known_received_utc=known.received_utc,
        )
        if answer.kind is Repeat.ACCEPTED_AGAIN:
            await self._answer_unwanted(
                order_id, MessageType.ORDER_ACCEPTED, request_id=request.request_id, duplicate=True, note=answer.note
            )
        else:
            await self._reject(order_id, request.request_id, answer.reasons)

    async def resume_open_order(self) -> None:
        """After a restart: an order that was taken and has not ended is picked up where the journal left it."""
        for record in await self.journal.latest_orders(ORDERS_LOOKED_AT_ON_START):
            if record.answer == "rejected":
                continue
            history = History.of(await self.journal.events(record.order_id))
            if history.state in FLOWN:
                if record.answer is None:
                    await self._reject_after_checks(record, history)
                try:
                    await self._record_flight(record.order_id, self._replanned(record)[0])
                except JournalError as exc:  # no plan, so no home to say it took off from: said, not hidden
                    log.warning("order %s: no flight record for the logbook: %s", record.order_id, exc)
                continue
            plan, wind = self._replanned(record)
            log.warning("resuming order %s (last state %s)", record.order_id, history.state)
            self._start(_Job(record, plan, wind, accepted=record.answer == "accepted"))
            return

    def _replanned(self, record: OrderRecord) -> tuple[DeliveryPlan | LegDelivery, GroundWind | None]:
        """An order taken before a restart, planned again from what the journal kept of it (the same order and
        the same winds give the same mission, which the sequencer checks against the aircraft's)."""
        body = record.body
        if "leg" in body:
            request = OrderRequest.model_validate({"request_id": record.request_id, **body})
            assert request.leg is not None
            site = self.legs.get(request.leg.leg)
            flight = (
                leg_flight_or_problem(request, site, self.profile)
                if site is not None
                else f"this aircraft's config no longer lists leg {request.leg.leg}"
            )
            if isinstance(flight, str):
                raise JournalError(f"leg {record.order_id} in the journal can no longer be planned: {flight}")
            return flight, None
        order = DeliveryOrder.model_validate(body["order"])
        plan = plan_or_problem(order, self.site, self.profile)
        if isinstance(plan, str):
            raise JournalError(f"order {record.order_id} in the journal can no longer be planned: {plan}")
        wind_record = body.get("depot_wind")
        return plan, DepotWind.model_validate(wind_record).ground_wind() if wind_record else None

    # ---- flying -----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fly each taken order to its end, one at a time. Raises only if the journal fails."""
        while True:
            job = await self._jobs.get()
            try:
                async with contextlib.AsyncExitStack() as flight:
                    if self.tlog_folder is not None:
                        path = tlog_path(self.tlog_folder, job.record.order_id)
                        await flight.enter_async_context(recording(self.vehicle.connection, path))
                    await self._fly(job)
                    await self._record_flight(job.record.order_id, job.plan)
            finally:
                self._job = None
                self._progress = None
                self.on_change()

    async def _fly(self, job: _Job) -> None:
        while True:
            sequencer = DeliverySequencer(
                self.vehicle,
                job.plan,
                self.journal,
                on_progress=self._on_progress,
                limits=self.limits,
                ground_wind=job.wind,
                on_go=lambda: self._accept(job),
            )
            job.sequencer = sequencer
            for icao, wind in job.airstrip_winds.items():
                sequencer.report_airstrip_wind(icao, wind)
            if job.abort_reason is not None:
                sequencer.request_abort(job.abort_reason)
            try:
                await sequencer.run()
            except MustStop:
                raise
            except FlightctlError as exc:
                if not await self._failed_step(sequencer, exc):
                    continue
            if sequencer.state is DeliveryState.OUT_OF_CONTACT:
                await self._link_back()
                continue
            break
        if not job.accepted:
            await self._reject_after_checks(job.record, sequencer.history)

    async def _failed_step(self, sequencer: DeliverySequencer, exc: FlightctlError) -> bool:
        """A step the sequencer could not carry out. On the ground the order fails (True: it is over); in the
        air the delivery is supervised again once the link is there (False)."""
        log.warning("order %s: %s", sequencer.order_id, exc)
        if fails_the_order(sequencer.state, vehicle_armed=self.vehicle.state.armed):
            await sequencer.record.enter(Trigger.GROUND_STEP_FAILED, reason=f"{type(exc).__name__}: {exc}")
            return True
        await self._link_back()
        await asyncio.sleep(RETRY_SUPERVISION_S)  # a vehicle that keeps failing the same step is not hammered
        return False

    async def _link_back(self) -> None:
        while True:
            try:
                await self.vehicle.connection.wait_state(LinkState.CONNECTED, timeout_s=3600)
            except VehicleTimeout:
                log.warning("autopilot link still down; still waiting")
                continue
            return

    async def _record_flight(self, order_id: str, plan: DeliveryPlan | LegDelivery) -> None:
        """The flight's logbook entry, once, through the outbox like any event (none for an order that never
        took off). Also looked for after a restart: a daemon stopped between the landing and this is not a
        flight missing from the operator's logbook."""
        home = plan.site.home() if isinstance(plan, DeliveryPlan) else plan.plan.home
        entry = flight_record(
            await self.journal.events(order_id), took_off_at=home, landed_at=self.vehicle.state.position
        )
        if entry is not None and await self.journal.enqueue_once(order_id, MessageType.FLIGHT_RECORD.value, entry):
            log.info("order %s: flight record for the logbook queued", order_id)

    async def _accept(self, job: _Job) -> None:
        await self.journal.answer_order(job.record.order_id, "accepted", [])
        await self._enqueue(job.record.order_id, MessageType.ORDER_ACCEPTED, request_id=job.record.request_id)
        job.accepted = True

    async def _reject_after_checks(self, record: OrderRecord, history: History) -> None:
        # Each line says it is a NO-GO and which check ("NO-GO wind: ..."), as the go/no-go report prints it.
        reasons = list(history.nogo) or [history.abort_reason or "failed before take-off"]
        await self.journal.answer_order(record.order_id, "rejected", reasons)
        await self._reject(record.order_id, record.request_id, reasons, budgeted=False)

    # ---- commands ---------------------------------------------------------------------------------------------

    async def command(self, request: CommandRequest) -> None:
        if request.command == "status":
            await self._command_result(
                request.request_id, "status", ok=True, result="status", status=self.report(), budgeted=True
            )
            return
        if request.command in ("unloaded", "airstrip_wind"):
            await self._leg_command(request)
            return
        reason = request.reason or "no reason given"
        job = self._job
        history = job.sequencer.history if job is not None and job.sequencer is not None else None
        answer = abort_answer(
            has_delivery=job is not None,
            state=None if history is None else history.state,
            released=history is not None and history.released,
        )
        if job is not None and answer.pass_on:
            job.abort_reason = reason
            if job.sequencer is not None:
                job.sequencer.request_abort(reason)
        order_id = None if job is None else job.record.order_id
        await self._command_result(request.request_id, "abort", ok=answer.ok, result=answer.result, order_id=order_id)

    async def _leg_command(self, request: CommandRequest) -> None:
        """``unloaded`` or ``airstrip_wind`` (daemon.leg_commands); a refusal is rationed like any unwanted answer."""
        job = self._job
        if request.command == "unloaded":
            answer = await leg_commands.unloaded(self.journal, request)
        else:
            flying, order_id = (job.plan, job.record.order_id) if job is not None else (None, None)
            held = job.airstrip_winds if job is not None else {}
            answer = leg_commands.airstrip_wind(flying, order_id, held, request)
            if answer.ok and job is not None and request.icao is not None and request.wind is not None:
                job.airstrip_winds[request.icao] = request.wind
                if job.sequencer is not None:
                    job.sequencer.report_airstrip_wind(request.icao, request.wind)
        await self._command_result(request.request_id, request.command, ok=answer.ok, result=answer.result,
                                   order_id=answer.order_id, budgeted=not answer.ok)  # fmt: skip

    def report(self) -> dict[str, Any]:
        status, state = self.status(), self.vehicle.state
        return {
            "order_id": status.order_id,
            "delivery_state": None if status.state is None else status.state.value,
            "distance_to_go_m": status.distance_to_go_m,
            "autopilot_link": self.vehicle.connection.state.value,
            "armed": state.armed,
            "mode": state.mode,
            "unanswered_messages": self.budget.unanswered_total,
            "remote_id": status.remote_id,
            **self.extra_status(),
        }

    # ---- the outbox -------------------------------------------------------------------------------------------

    async def _reject(
        self, order_id: str | None, request_id: str | None, reasons: list[str], *, budgeted: bool = True
    ) -> None:
        """Reject an order. ``budgeted``: it was turned away at intake (or unreadable), an answer a flood could
        multiply; an order that passed intake and then failed go/no-go is always answered."""
        if budgeted:
            await self._answer_unwanted(
                order_id, MessageType.ORDER_REJECTED, request_id=request_id, reasons=reasons, log_reasons=True
            )
            return
        log.warning("order %s rejected: %s", order_id, "; ".join(reasons))
        await self._enqueue(order_id, MessageType.ORDER_REJECTED, request_id=request_id, reasons=reasons)

    async def _command_result(
        self,
        request_id: str | None,
        command: str | None,
        *,
        ok: bool,
        result: str,
        order_id: str | None = None,
        budgeted: bool = False,
        **more: Any,
    ) -> None:
        data = {"request_id": request_id, "command": command, "ok": ok, "result": result, **more}
        if budgeted:
            await self._answer_unwanted(order_id, MessageType.COMMAND_RESULT, **data)
        else:
            await self._enqueue(order_id, MessageType.COMMAND_RESULT, **data)

    async def _answer_unwanted(
        self, order_id: str | None, type_: MessageType, *, log_reasons: bool = False, **data: Any
    ) -> None:
        """Answer, if the budget allows; otherwise count it (the next answer given says how many went before)."""
        verdict = self.budget.take(time.monotonic())
        if not verdict.answer:
            if verdict.first_unanswered:
                log.warning(
                    "more unwanted orders and commands than %g a minute: leaving them unanswered (counted) until "
                    "the budget refills", self.budget.per_minute,
                )  # fmt: skip
            return
        if verdict.unanswered_before:
            data["unanswered_before"] = verdict.unanswered_before
            log.warning("%d unwanted orders and commands went unanswered", verdict.unanswered_before)
        if log_reasons:
            log.warning("order %s rejected: %s", order_id, "; ".join(data.get("reasons", [])))
        await self._enqueue(order_id, type_, **data)

    async def _enqueue(self, order_id: str | None, type_: MessageType, **data: Any) -> None:
        await self.journal.enqueue(order_id, type_.value, data)
