"""`flightctl sim fleet`: N simulated aircraft, each an ArduPilot SITL with its own `flightctl run` daemon (its own
journal, broker account, system id and ports), one ground side (mosquitto with the shipped config and accounts,
a `flightctl relay` process, a registry), and orders dispatched from a demand model for a given simulated time.

Every part is the real one, run as it is deployed; this module only starts them, sends the orders and counts.
Deciding lives in data elsewhere: which orders arrive when (``ground.demand``), what the fleet is doing
(``ground.fleet_tally``). At the end the journals, the registry and the tally are compared into the fleet
report: every event each aircraft journaled must be in the registry once.

Stopping (the run's end, Ctrl-C, an error) stops everything it started, in reverse order, daemons by SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from flightctl.config import configs_dir, named_config, read_yaml_model
from flightctl.delivery.journal import Journal
from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.wind import GroundWind
from flightctl.errors import FlightctlError
from flightctl.ground.broker_accounts import AccountKind, BrokerAccounts
from flightctl.ground.demand import DemandModel, PlannedOrder, schedule
from flightctl.ground.dispatch import send_order
from flightctl.ground.fleet_tally import FleetTally
from flightctl.ground.registry import Registry
from flightctl.mqtt.broker import MqttClient, keep_connected, make_client
from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope
from flightctl.mqtt.contract import TOPIC_ROOT
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.daemon import DaemonProcess, write_daemon_config
from sitl.fleet_faults import Fault, FaultKind, FaultPlan, timeline
from sitl.instance import SitlInstance
from sitl.locations import resolve_home
from sitl.mosquitto import Mosquitto
from sitl.postgres import PostgresServer
from sitl.relay_process import RelayProcess
from sitl.tcp_proxy import TcpProxy

log = logging.getLogger(__name__)

SHIPPED_BROKER = configs_dir() / "mosquitto" / "flightctl.conf"
ANSWER_TIMEOUT_S = 60.0
SETTLE_SIM_S = 900.0  # simulated time the orders still in flight get to end after the last is dispatched
CATCH_UP_S = 60.0  # wall time the registry gets to hold what the journals hold
RESTART_DELAY_S = 2.0  # systemd's RestartSec for a killed daemon or relay (configs/systemd)
METRES_PER_DEGREE_LAT = 111_320.0


@dataclass(frozen=True)
class FleetSpec:
    folder: Path
    aircraft: int
    sim_s: float  # simulated seconds orders are dispatched for
    speedup: float
    demand: DemandModel
    first_instance: int = 0
    postgres: bool = False
    home: str = "kirkwall"
    settle_sim_s: float = SETTLE_SIM_S
    faults: FaultPlan | None = None

    def drones(self) -> list[str]:
        return [f"sim-{n + 1:02d}" for n in range(self.aircraft)]


@dataclass
class ProcessCost:
    name: str
    kind: str  # "sitl" or "daemon"
    cpu_share: float  # of one core, over the flying time
    rss_mb: float


@dataclass
class AircraftRecord:
    drone: str
    journaled: int  # events in its journal's outbox
    in_registry: int  # of those, in the registry
    missing: list[int]  # journaled, not in the registry
    unknown: list[int]  # in the registry, never journaled (cannot happen without a forged event)
    orders: int
    overlaps: list[str]  # orders it accepted while holding another
    speedup: float | None


@dataclass
class FaultRecord:
    at_min: float
    kind: str
    aircraft: str | None
    held_order: str | None  # the order the aircraft held when struck
    outcome: str | None = None  # that order's end
    note: str = ""


@dataclass
class FleetReport:
    started_utc: str
    wall_s: float
    sim_s: float
    speedup_asked: float
    speedup_achieved: float | None  # the median of the aircraft's own
    counts: dict[str, int]
    unserved: int  # due within the run, but no aircraft was free before it ended
    orders: list[dict[str, Any]]
    aircraft: list[AircraftRecord]
    costs: list[ProcessCost]
    faults: list[FaultRecord]
    folder: str

    def holds(self) -> bool:
        """Nothing lost, nothing twice, no aircraft with two orders, every order ended."""
        return (
            all(not a.missing and not a.unknown and not a.overlaps for a in self.aircraft)
            and self.counts["sent"] == 0
            and self.counts["flying"] == 0
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"holds": self.holds()}


@dataclass
class Aircraft:
    drone: str
    sim: SitlInstance
    daemon: DaemonProcess
    folder: Path
    radio: TcpProxy  # the daemon's link to its autopilot, which a radio_cut cuts
    sent: int = 0


@dataclass
class FleetProgress:
    """What the live view shows, handed over about once a second."""

    tally: FleetTally
    sim_elapsed_s: float
    sim_s: float
    queued: int
    ops_url: str | None = None
    phase: str = "flying"


def order_for(planned: PlannedOrder) -> DeliveryOrder:
    """The shipped order the demand picked, as this order (its id, its parcel)."""
    template = read_yaml_model(named_config("orders", planned.destination), DeliveryOrder)
    return template.model_copy(update={"order_id": planned.order_id, "parcel_kg": planned.parcel_kg})


class SimFleet:
    def __init__(self, spec: FleetSpec, *, on_progress: Callable[[FleetProgress], None] = lambda _p: None) -> None:
        if spec.aircraft < 1:
            raise FlightctlError("a fleet needs at least one aircraft")
        self.spec = spec
        self.on_progress = on_progress
        self.tally = FleetTally(spec.drones())
        self.aircraft: list[Aircraft] = []
        self._changed = asyncio.Event()
        self._queued = 0
        self._unserved = 0
        self._flying_since: float | None = None
        self._sim_elapsed_s = 0.0
        self._phase = "starting"
        self._ops_url: str | None = None
        self._faults = timeline(spec.faults, spec.drones()) if spec.faults is not None else []
        self.struck: list[FaultRecord] = []
        self._cpu_spent: dict[tuple[str, str], float] = {}  # by processes since killed
        self._cpu_base: dict[int, float] = {}  # each process's CPU when the flying began
        self._broker: Mosquitto | None = None
        self._relay: RelayProcess | None = None
        self._postgres: PostgresServer | None = None

    async def run(self) -> FleetReport:
        started_utc = datetime.now(UTC).isoformat(timespec="seconds")
        started = time.monotonic()
        self.spec.folder.mkdir(parents=True, exist_ok=True)
        async with contextlib.AsyncExitStack() as stack:
            accounts = BrokerAccounts(self.spec.folder / "accounts")
            passwords = {d: await accounts.add(d, AccountKind.DRONE) for d in self.spec.drones()}
            passwords["relay-1"] = await accounts.add("relay-1", AccountKind.RELAY)
            passwords["dispatch-1"] = await accounts.add("dispatch-1", AccountKind.DISPATCH)
            passwords["operator-1"] = await accounts.add("operator-1", AccountKind.OPERATOR)
            broker = self._broker = await stack.enter_async_context(
                Mosquitto(self.spec.folder / "broker", template=SHIPPED_BROKER, accounts_folder=accounts.folder)
            )

            def endpoint(user: str) -> BrokerEndpoint:
                return BrokerEndpoint.from_url(
                    broker.url, username=user, password=passwords[user], ca_file=broker.ca_file
                )

            registry_url = str(self.spec.folder / "registry.sqlite")
            if self.spec.postgres:
                self._postgres = await stack.enter_async_context(PostgresServer())
                registry_url = self._postgres.url
            relay = self._relay = RelayProcess(
                self.spec.folder / "relay",
                "relay-1",
                broker_url=broker.url,
                ca_file=broker.ca_file,
                password=passwords["relay-1"],
                registry_url=registry_url,
            )
            await relay.start()
            stack.push_async_callback(relay.stop)
            self._ops_url = f"http://127.0.0.1:{relay.ops_port}/ops ({relay.ops[0]}:{relay.ops[1]})"
            registry = await stack.enter_async_context(await Registry.open(registry_url))
            watching = asyncio.create_task(self._watch(endpoint("operator-1")), name="fleet watcher")
            stack.push_async_callback(_cancelled, watching)
            showing = asyncio.create_task(self._show(), name="fleet live view")
            stack.push_async_callback(_cancelled, showing)

            for drone in self.spec.drones():
                await self._launch(stack, drone, broker, passwords[drone])
            await self._until_ready()

            self._flying_since = time.monotonic()
            cpu_before = self._cpu_base = _cpu_times(self.aircraft)
            self._phase = "flying"
            striking = asyncio.create_task(self._strike(), name="fleet faults")
            stack.push_async_callback(_cancelled, striking)
            await self._dispatch(registry, [endpoint("dispatch-1")])
            self._phase = "settling"
            await self._settle()
            striking.cancel()
            costs = self._costs(cpu_before, time.monotonic() - self._flying_since)
            self._phase = "catching up"
            await self._caught_up(registry, CATCH_UP_S)
            self._phase = "stopping"
            for aircraft in self.aircraft:
                await aircraft.daemon.stop()
            records = await self._reconcile(registry)
            self._phase = "done"
            self.on_progress(self._progress())
        report = FleetReport(
            started_utc=started_utc,
            wall_s=round(time.monotonic() - started, 1),
            sim_s=self.spec.sim_s,
            speedup_asked=self.spec.speedup,
            speedup_achieved=_median([r.speedup for r in records]),
            counts=self.tally.counts(),
            unserved=self._unserved,
            orders=[asdict(o) | {"outcome": o.outcome.value} for o in self.tally.orders.values()],
            aircraft=records,
            costs=costs,
            faults=self._fault_outcomes(),
            folder=str(self.spec.folder),
        )
        write_report(report, self.spec.folder)
        return report

    # ---- starting ------------------------------------------------------------------------------------------

    async def _launch(self, stack: contextlib.AsyncExitStack, drone: str, broker: Mosquitto, password: str) -> None:
        n = len(self.aircraft)
        folder = self.spec.folder / drone
        sim = await stack.enter_async_context(
            SitlInstance(
                home=resolve_home(self.spec.home),
                instance=self.spec.first_instance + n,
                speedup=self.spec.speedup,
                workdir=folder / "sitl",
            )
        )
        host, port = sim.serial2_url.removeprefix("tcp:").rsplit(":", 1)
        radio = await stack.enter_async_context(TcpProxy(host, int(port)))
        config = write_daemon_config(
            folder / "daemon",
            drone_id=drone,
            autopilot_url=f"tcp:127.0.0.1:{radio.port}",
            broker_url=broker.url,
            username=drone,
            password=password,
            ca_file=broker.ca_file,
            rate_hz=1,
        )
        daemon = DaemonProcess(config)
        await daemon.start()
        stack.push_async_callback(_stopped, daemon)
        self.aircraft.append(Aircraft(drone, sim, daemon, folder / "daemon", radio))

    async def _until_ready(self, timeout_s: float = 180) -> None:
        """Every daemon reporting its vehicle's position on GPS time: it can judge an order now."""
        try:
            async with asyncio.timeout(timeout_s):
                while not all(a.gps_first is not None for a in self.tally.aircraft.values()):
                    await self._wait_change(1.0)
        except TimeoutError:
            silent = [d for d, a in self.tally.aircraft.items() if a.gps_first is None]
            raise FlightctlError(f"no telemetry within {timeout_s:g} s from {', '.join(silent)}") from None

    # ---- flying --------------------------------------------------------------------------------------------

    async def _dispatch(self, registry: Registry, endpoints: list[BrokerEndpoint]) -> None:
        """Each order when it is due, to the free aircraft that has flown least; orders wait for a free one, and
        those still waiting when the simulated time is up are counted as unserved."""
        assert self._flying_since is not None
        waiting = deque(schedule(self.spec.demand, self.spec.sim_s))
        while waiting:
            self._sim_elapsed_s = (time.monotonic() - self._flying_since) * self.spec.speedup
            if self._sim_elapsed_s >= self.spec.sim_s:
                break
            due = [o for o in waiting if o.at_s <= self._sim_elapsed_s]
            self._queued = len(due)
            free = self.tally.idle()
            if not due or not free:
                await self._wait_change(0.5)
                continue
            planned = waiting.popleft()
            aircraft = min((a for a in self.aircraft if a.drone in free), key=lambda a: (a.sent, a.drone))
            aircraft.sent += 1
            await self._send(registry, endpoints, aircraft.drone, planned)
        self._unserved = len(waiting)  # the schedule holds only orders due within the run
        self._queued = 0

    async def _send(
        self, registry: Registry, endpoints: list[BrokerEndpoint], drone: str, planned: PlannedOrder
    ) -> None:
        order = order_for(planned)
        await registry.register(order.order_id, f"customer-{order.order_id}", drone)
        self.tally.sent(order.order_id, drone, planned.destination)
        sent = False

        def on_sent() -> None:
            nonlocal sent
            sent = True

        wind = GroundWind(0.0, datetime.now(UTC), "sim fleet (calm)")  # measured now, as dispatch would send it
        try:
            await send_order(endpoints, drone, order, wind=wind, timeout_s=ANSWER_TIMEOUT_S, on_sent=on_sent)
        except FlightctlError as exc:
            if not sent:
                await registry.forget(order.order_id)
                self.tally.unsent(order.order_id, str(exc))
            log.warning("order %s to %s: %s", order.order_id, drone, exc)  # sent: its events will tell

    async def _settle(self) -> None:
        """The orders in flight get ``settle_sim_s`` of simulated time to end."""
        deadline = time.monotonic() + self.spec.settle_sim_s / self.spec.speedup
        while not self.tally.all_ended() and time.monotonic() < deadline:
            await self._wait_change(1.0)

    async def _watch(self, endpoint: BrokerEndpoint) -> None:
        async def serve(client: MqttClient) -> None:
            await client.subscribe(f"{TOPIC_ROOT}/+/events", qos=1)
            await client.subscribe(f"{TOPIC_ROOT}/+/telemetry", qos=0)
            async for message in client.messages:
                try:
                    envelope = read_envelope(message.payload)
                except NotAnEnvelope as exc:
                    log.warning("fleet watcher: %s on %s", exc, message.topic)
                    continue
                try:  # one odd message costs its own count, never the watcher
                    self.tally.take(envelope, time.monotonic())
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.warning("fleet watcher: %s on %s not counted: %s", envelope.type, message.topic, exc)
                self._changed.set()

        await keep_connected(
            # A session the broker keeps (and restores after a restart): no event missed while reconnecting.
            lambda: make_client(endpoint, client_id="fleet-watcher", session_expiry_s=3600),
            serve,
            min_delay_s=0.5,
            max_delay_s=2,
        )

    async def _wait_change(self, at_most_s: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most_s):
                await self._changed.wait()

    async def _show(self) -> None:
        while True:
            if self._flying_since is not None and self._phase == "flying":
                self._sim_elapsed_s = (time.monotonic() - self._flying_since) * self.spec.speedup
            self.on_progress(self._progress())
            await asyncio.sleep(1.0)

    def _progress(self) -> FleetProgress:
        return FleetProgress(self.tally, self._sim_elapsed_s, self.spec.sim_s, self._queued, self._ops_url, self._phase)

    # ---- faults --------------------------------------------------------------------------------------------

    async def _strike(self) -> None:
        """Each fault when its simulated minute comes; those with a duration end on their own."""
        assert self._flying_since is not None
        async with asyncio.TaskGroup() as lasting:
            for fault in self._faults:
                due_wall = self._flying_since + fault.at_min * 60 / self.spec.speedup
                await asyncio.sleep(max(0.0, due_wall - time.monotonic()))
                aircraft = next((a for a in self.aircraft if a.drone == fault.aircraft), None)
                held = None if aircraft is None else self.tally.aircraft[aircraft.drone].holding
                record = FaultRecord(fault.at_min, fault.kind.value, fault.aircraft, held)
                self.struck.append(record)
                log.info("fault at %.1f simulated min: %s %s", fault.at_min, fault.kind.value, fault.aircraft or "")
                try:
                    ending = await self._begin(fault, aircraft, record)
                except (FlightctlError, OSError) as exc:
                    record.note = f"could not be struck: {exc}"
                    continue
                if ending is not None:
                    lasting.create_task(self._end_after(fault, ending, record))

    async def _begin(self, fault: Fault, aircraft: Aircraft | None, record: FaultRecord) -> Callable[[], Any] | None:
        """Strike ``fault``; what ends it, when it lasts."""
        kind = fault.kind
        if aircraft is not None:
            params = aircraft.sim.vehicle.params
            if kind is FaultKind.RADIO_CUT:
                aircraft.radio.cut()
                return aircraft.radio.restore
            if kind is FaultKind.DAEMON_KILL:
                self._count_spent(aircraft.drone, "daemon", aircraft.daemon.pid)
                await aircraft.daemon.kill()
                await asyncio.sleep(RESTART_DELAY_S)
                await aircraft.daemon.start()
                record.note = "SIGKILL, started again"
                return None
            amount = fault.amount()
            assert amount is not None
            if kind is FaultKind.GPS_GLITCH:
                await params.set("SIM_GPS1_GLTCH_X", amount / METRES_PER_DEGREE_LAT)
                return lambda: params.set("SIM_GPS1_GLTCH_X", 0.0)
            if kind is FaultKind.WIND:
                await params.set("SIM_WIND_SPD", amount)
                return lambda: params.set("SIM_WIND_SPD", 0.0)
            await params.set("SIM_BATT_VOLTAGE", amount)  # BATTERY: stays (a pack does not recover in flight)
            record.note = f"pack at {amount:g} V"
            return None
        if kind is FaultKind.BROKER_RESTART:
            assert self._broker is not None
            await self._broker.restart()
            record.note = "stopped and started again"
        elif kind is FaultKind.RELAY_KILL:
            assert self._relay is not None
            await self._relay.kill()
            await asyncio.sleep(RESTART_DELAY_S)
            await self._relay.start()
            record.note = "SIGKILL, started again"
        elif self._postgres is None:
            record.note = "not struck: a SQLite registry is a file (--postgres for a server to restart)"
        else:
            await self._postgres.restart()
            record.note = "stopped and started again"
        return None

    async def _end_after(self, fault: Fault, ending: Callable[[], Any], record: FaultRecord) -> None:
        await asyncio.sleep(fault.for_s / self.spec.speedup)
        try:
            result = ending()
            if asyncio.iscoroutine(result):
                await result
        except (FlightctlError, OSError) as exc:
            record.note = f"for {fault.for_s:g} s; could not be ended: {exc}"
            return
        record.note = f"for {fault.for_s:g} s"

    def _count_spent(self, drone: str, kind: str, pid: int | None) -> None:
        """The CPU a process about to be killed spent since the flying began, kept for the report."""
        if pid is not None:
            spent = _cpu_times_of(pid)
            if spent is not None:
                key = (drone, kind)
                self._cpu_spent[key] = self._cpu_spent.get(key, 0.0) + spent - self._cpu_base.pop(pid, 0.0)

    def _costs(self, before: dict[int, float], wall_s: float) -> list[ProcessCost]:
        """Each SITL's and daemon's CPU over the flying time (a restarted daemon's and its predecessors'), as a
        share of one core, and its memory now."""
        costs = []
        for a in self.aircraft:
            for kind, pid in (("sitl", a.sim.pid), ("daemon", a.daemon.pid)):
                now = None if pid is None else _cpu_times_of(pid)
                if pid is None or now is None:
                    continue
                with contextlib.suppress(psutil.Error):
                    rss_mb = psutil.Process(pid).memory_info().rss / 2**20
                    spent = now - before.get(pid, 0.0) + self._cpu_spent.get((a.drone, kind), 0.0)
                    costs.append(ProcessCost(a.drone, kind, round(spent / max(wall_s, 1e-6), 4), round(rss_mb, 1)))
        return costs

    def _fault_outcomes(self) -> list[FaultRecord]:
        for record in self.struck:
            if record.held_order is not None:
                record.outcome = self.tally.orders[record.held_order].outcome.value
        return self.struck

    # ---- the end -------------------------------------------------------------------------------------------

    async def _journaled(self) -> dict[str, list[int]]:
        journaled: dict[str, list[int]] = {}
        for aircraft in self.aircraft:
            async with await Journal.open(aircraft.folder / "journal.sqlite", reader=True) as journal:
                journaled[aircraft.drone] = await journal.outbox_seqs()
        return journaled

    async def _caught_up(self, registry: Registry, timeout_s: float) -> dict[str, set[int]]:
        """What the registry holds of each aircraft, once it holds all its journal does (or ``timeout_s``). Run
        while the daemons are up: what an aircraft journaled as it landed (its state, its flight record) is still
        on its way when the tally sees the landing."""
        deadline = time.monotonic() + timeout_s
        while True:
            journaled = await self._journaled()
            held = {d: set(await registry.seen_seqs(d)) for d in journaled}
            if all(held[d] >= set(seqs) for d, seqs in journaled.items()) or time.monotonic() > deadline:
                return held
            await asyncio.sleep(0.5)

    async def _reconcile(self, registry: Registry) -> list[AircraftRecord]:
        """Each aircraft's journal against the registry (the daemons stopped: nothing more comes)."""
        journaled = await self._journaled()
        held = await self._caught_up(registry, timeout_s=5)
        records = []
        for aircraft in self.aircraft:
            seqs, view = journaled[aircraft.drone], self.tally.aircraft[aircraft.drone]
            records.append(
                AircraftRecord(
                    drone=aircraft.drone,
                    journaled=len(seqs),
                    in_registry=len(held[aircraft.drone] & set(seqs)),
                    missing=sorted(set(seqs) - held[aircraft.drone]),
                    unknown=sorted(held[aircraft.drone] - set(seqs)),
                    orders=aircraft.sent,
                    overlaps=list(view.overlaps),
                    speedup=None if (s := view.speedup()) is None else round(s, 2),
                )
            )
        return records


def write_report(report: FleetReport, folder: Path) -> Path:
    path = folder / "fleet-report.json"
    path.write_text(json.dumps(report.as_json(), indent=1) + "\n")
    return path


def _cpu_times_of(pid: int) -> float | None:
    try:
        cpu = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return cpu.user + cpu.system


def _cpu_times(aircraft: list[Aircraft]) -> dict[int, float]:
    times = {}
    for a in aircraft:
        for pid in (a.sim.pid, a.daemon.pid):
            if pid is not None and (spent := _cpu_times_of(pid)) is not None:
                times[pid] = spent
    return times


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stopped(daemon: DaemonProcess) -> None:
    if daemon.process is not None and daemon.process.returncode is None:
        await daemon.stop()
