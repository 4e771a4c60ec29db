"""`flightctl sim fleet`: N simulated aircraft, each an ArduPilot SITL with its own `flightctl run` daemon (its own
journal, broker account, system id and ports), one ground side (mosquitto with the shipped config and accounts,
or an active pair of them; a `flightctl relay` process; a registry), and orders dispatched from a demand model for
a given simulated time. Each order's customer page is followed as a browser would (``sitl.fleet_pages``).

Every part is the real one, run as it is deployed; this module only starts them, sends the orders and counts.
Deciding lives in data elsewhere: which orders arrive when (``ground.demand``), what the fleet is doing
(``ground.fleet_tally``). At the end the journals, the registry and the tally are compared into the fleet
report: every event each aircraft journaled must be in the registry once.

Stopping (the run's end, Ctrl-C, an error) stops everything it started, in reverse order, daemons by SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

from flightctl.config import configs_dir, named_config, read_yaml_model
from flightctl.delivery.journal import Journal
from flightctl.delivery.order import DeliveryOrder, VehicleKind, VehicleProfile
from flightctl.delivery.planner import kind_problem
from flightctl.delivery.wind import GroundWind
from flightctl.errors import FlightctlError
from flightctl.ground.broker_accounts import AccountKind, BrokerAccounts
from flightctl.ground.demand import DemandModel, PlannedOrder, assign, schedule
from flightctl.ground.dispatch import send_order
from flightctl.ground.fleet_tally import FleetTally, Latency, page_delays, page_latency
from flightctl.ground.registry import Registry
from flightctl.ground.registry_store import RegistryUnavailable
from flightctl.mqtt.broker import MqttClient, keep_connected, make_client
from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope
from flightctl.mqtt.contract import TOPIC_ROOT
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.daemon import DaemonProcess, write_daemon_config
from sitl.fleet_faults import Fault, FaultKind, FaultPlan, timeline
from sitl.fleet_pages import PageFollower
from sitl.fleet_plots import write_plots
from sitl.instance import SitlInstance
from sitl.locations import resolve_home
from sitl.mosquitto import Mosquitto
from sitl.postgres import PostgresServer
from sitl.relay_process import RelayProcess
from sitl.tcp_proxy import TcpProxy

log = logging.getLogger(__name__)
T = TypeVar("T")

SHIPPED_BROKER = configs_dir() / "mosquitto" / "flightctl.conf"
ANSWER_TIMEOUT_S = 60.0
SETTLE_SIM_S = 900.0  # simulated time the orders still in flight get to end after the last is dispatched
CATCH_UP_S = 60.0  # wall time the registry gets to hold what the journals hold
RESTART_DELAY_S = 2.0  # systemd's RestartSec for a killed daemon or relay (configs/systemd)
REGISTRY_WAIT_S = 60.0  # wall time a registry call rides out a registry restart for
FAILOVER_WAIT_S = 60.0  # wall time a broker failover's aircraft get to be heard through the other broker
BROKER_NAMES = ("a", "b")
COPTER, VTOL = "sitl-quad", "sitl-vtol"  # the profiles a simulated aircraft flies under
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
    brokers: int = 1  # 2: an active pair (each aircraft on one at a time; the relay reads both)
    vtol: int = 0  # how many of the aircraft (the last ones) are VTOLs: ArduPlane's QuadPlane, profile sitl-vtol

    def drones(self) -> list[str]:
        return [f"sim-{n + 1:02d}" for n in range(self.aircraft)]

    def profiles(self) -> dict[str, str]:
        """Each aircraft's profile (configs/profiles/): copters first, then the VTOLs."""
        copters = self.aircraft - self.vtol
        return {drone: COPTER if n < copters else VTOL for n, drone in enumerate(self.drones())}


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
    profile: str = COPTER


@dataclass
class FaultRecord:
    at_min: float
    kind: str
    aircraft: str | None
    held_order: str | None  # the order the aircraft held when struck
    held_state: str | None = None  # and the state it last reported then
    outcome: str | None = None  # that order's end
    note: str = ""
    broker: str | None = None  # a broker fault: which broker
    took_s: float | None = None  # a broker failover: wall seconds until every aircraft was heard through the other
    pages_updated: int | None = None  # statuses that first showed on customers' pages while it lasted


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
    brokers: int = 1
    latency: Latency | None = None  # an event reaching the broker to its status showing on the customer's page
    latencies_s: list[float] | None = None  # each of those, for the plots
    timeline: list[dict[str, Any]] | None = None  # each order's acceptance and end, in simulated minutes
    ops: dict[str, Any] | None = None  # the relay's ops page at the end: each aircraft's newest state, order counts

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
    profile: VehicleProfile
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
    template = _shipped_order(planned.destination)
    return template.model_copy(update={"order_id": planned.order_id, "parcel_kg": planned.parcel_kg})


@functools.cache
def _shipped_order(name: str) -> DeliveryOrder:
    return read_yaml_model(named_config("orders", name), DeliveryOrder)


@functools.cache
def shipped_profile(name: str) -> VehicleProfile:
    return read_yaml_model(named_config("profiles", name), VehicleProfile)


class SimFleet:
    def __init__(
        self,
        spec: FleetSpec,
        *,
        on_progress: Callable[[FleetProgress], None] = lambda _p: None,
        postgres: PostgresServer | None = None,
    ) -> None:
        """``postgres``: a server the caller runs (and reads after the run) for a ``spec.postgres`` registry;
        without one the fleet starts its own and stops it at the end."""
        if spec.aircraft < 1:
            raise FlightctlError("a fleet needs at least one aircraft")
        if spec.brokers not in (1, 2):
            raise FlightctlError(f"a fleet runs on one broker or an active pair of two, not {spec.brokers}")
        if not 0 <= spec.vtol <= spec.aircraft:
            raise FlightctlError(f"{spec.vtol} VTOLs in a fleet of {spec.aircraft} aircraft")
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
        self._brokers: dict[str, Mosquitto] = {}  # by name: "a", and "b" for a pair
        self._relay: RelayProcess | None = None
        self._postgres: PostgresServer | None = postgres
        self._pages: PageFollower | None = None

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
            brokers = self._brokers = await self._start_brokers(stack, accounts.folder)
            first = brokers["a"]
            urls = [b.url for b in brokers.values()]

            def endpoints(user: str) -> list[BrokerEndpoint]:
                return [
                    BrokerEndpoint.from_url(url, username=user, password=passwords[user], ca_file=first.ca_file)
                    for url in urls
                ]

            registry_url = str(self.spec.folder / "registry.sqlite")
            if self.spec.postgres:
                if self._postgres is None:
                    self._postgres = await stack.enter_async_context(PostgresServer())
                registry_url = self._postgres.url
            else:
                self._postgres = None
            relay = self._relay = RelayProcess(
                self.spec.folder / "relay",
                "relay-1",
                broker_url=urls[0],
                peer_urls=urls[1:],
                ca_file=first.ca_file,
                password=passwords["relay-1"],
                registry_url=registry_url,
            )
            await relay.start(brokers=len(urls))  # on every broker before any aircraft speaks
            stack.push_async_callback(relay.stop)
            self._ops_url = f"http://127.0.0.1:{relay.ops_port}/ops ({relay.ops[0]}:{relay.ops[1]})"
            pages = self._pages = PageFollower(relay.url)
            stack.push_async_callback(pages.close)
            registry = await stack.enter_async_context(await Registry.open(registry_url))
            for name, watched in zip(brokers, endpoints("operator-1"), strict=True):
                watching = asyncio.create_task(self._watch(watched, name), name=f"fleet watcher on {name}")
                stack.push_async_callback(_cancelled, watching)
            showing = asyncio.create_task(self._show(), name="fleet live view")
            stack.push_async_callback(_cancelled, showing)

            # All at once: most of a SITL's start is waiting for its simulated GPS and EKF (about 40 s at speedup
            # 1), so one after another a fleet of 14 took ten minutes to start. A launch that fails cancels the
            # rest; what any of them started is stopped by the stack.
            try:
                async with asyncio.TaskGroup() as launching:
                    for n, drone in enumerate(self.spec.drones()):
                        launching.create_task(
                            self._launch(stack, n, drone, urls, first.ca_file, passwords[drone]), name=f"launch {drone}"
                        )
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None  # the first that failed, as a start one by one would say
            self.aircraft.sort(key=lambda a: a.drone)
            await self._until_ready()

            self._flying_since = time.monotonic()
            cpu_before = self._cpu_base = _cpu_times(self.aircraft)
            self._phase = "flying"
            striking = asyncio.create_task(self._strike(), name="fleet faults")
            stack.push_async_callback(_cancelled, striking)
            await self._dispatch(registry, endpoints("dispatch-1"))
            self._phase = "settling"
            await self._settle()
            striking.cancel()
            costs = self._costs(cpu_before, time.monotonic() - self._flying_since)
            self._phase = "catching up"
            await self._caught_up(registry, CATCH_UP_S)
            ops = await relay.ops_view()
            self._phase = "stopping"
            for aircraft in self.aircraft:
                await aircraft.daemon.stop()
            records = await self._reconcile(registry)
            delays = page_delays(self.tally.arrived, pages.shown)
            shown = page_latency(delays, never_shown=len(await self._statuses_held(registry) - pages.shown.keys()))
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
            brokers=self.spec.brokers,
            latency=shown,
            latencies_s=delays,
            timeline=self._timeline(),
            ops=None if ops is None else {key: ops.get(key) for key in ("aircraft", "order_counts")},
        )
        write_report(report, self.spec.folder)
        write_plots(report, self.spec.folder / "plots")
        return report

    async def _start_brokers(self, stack: contextlib.AsyncExitStack, accounts: Path) -> dict[str, Mosquitto]:
        """One mosquitto, or an active pair sharing nothing but the accounts file and the TLS certificate (the
        aircraft and relays trust one CA, as an operator's pair behind one name would)."""
        started: dict[str, Mosquitto] = {}
        for name in BROKER_NAMES[: self.spec.brokers]:
            folder = self.spec.folder / f"broker-{name}"
            if started:
                folder.mkdir(parents=True, exist_ok=True)
                for part in ("ca.pem", "server.pem", "server.key"):
                    shutil.copy2(started["a"].folder / part, folder / part)
            started[name] = await stack.enter_async_context(
                Mosquitto(folder, template=SHIPPED_BROKER, accounts_folder=accounts)
            )
        return started

    async def _statuses_held(self, registry: Registry) -> set[tuple[str, int]]:
        """The (aircraft, seq) of every status the registry holds for the orders whose pages were followed."""
        assert self._pages is not None
        held = set()
        for followed in self._pages.orders.values():
            statuses = await patiently("statuses", functools.partial(registry.statuses, followed.order_id))
            held |= {(followed.drone, s.seq) for s in statuses}
        return held

    def _timeline(self) -> list[dict[str, Any]]:
        """Each order's acceptance and end, in simulated minutes from the start of the flying: the plots' bars."""
        assert self._flying_since is not None
        start, rate = self._flying_since, self.spec.speedup / 60

        def sim_min(wall: float | None) -> float | None:
            return None if wall is None else round((wall - start) * rate, 2)

        return [
            {"order_id": o.order_id, "drone": o.drone, "outcome": o.outcome.value,
             "accepted_min": sim_min(o.accepted_s), "ended_min": sim_min(o.ended_s)}
            for o in self.tally.orders.values()
        ]  # fmt: skip

    # ---- starting ------------------------------------------------------------------------------------------

    async def _launch(
        self, stack: contextlib.AsyncExitStack, n: int, drone: str, urls: list[str], ca_file: Path, password: str
    ) -> None:
        folder = self.spec.folder / drone
        profile_name = self.spec.profiles()[drone]
        profile = shipped_profile(profile_name)
        vtol = profile.kind is VehicleKind.VTOL
        sim = await stack.enter_async_context(
            SitlInstance(
                home=resolve_home(self.spec.home),
                vehicle="plane" if vtol else "copter",
                model="quadplane" if vtol else None,
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
            broker_url=urls[0],
            peer_urls=urls[1:],
            username=drone,
            password=password,
            ca_file=ca_file,
            rate_hz=1,
            profile=profile_name,
        )
        daemon = DaemonProcess(config)
        await daemon.start()
        stack.push_async_callback(_stopped, daemon)
        self.aircraft.append(Aircraft(drone, sim, daemon, folder / "daemon", radio, profile))

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
        """Each order when it is due, to the free aircraft able to fly it that has flown least (``assign``);
        orders wait for such an aircraft, and those still waiting when the simulated time is up are counted as
        unserved."""
        assert self._flying_since is not None
        waiting = schedule(self.spec.demand, self.spec.sim_s)
        fleet = {a.drone: a for a in self.aircraft}

        def able(planned: PlannedOrder, drone: str) -> bool:
            return kind_problem(order_for(planned), fleet[drone].profile) is None

        while waiting:
            self._sim_elapsed_s = (time.monotonic() - self._flying_since) * self.spec.speedup
            if self._sim_elapsed_s >= self.spec.sim_s:
                break
            due = [o for o in waiting if o.at_s <= self._sim_elapsed_s]
            self._queued = len(due)
            choice = assign(due, {d: fleet[d].sent for d in self.tally.idle()}, able)
            if choice is None:
                await self._wait_change(0.5)
                continue
            planned, drone = choice
            waiting.remove(planned)
            fleet[drone].sent += 1
            await self._send(registry, endpoints, drone, planned)
        self._unserved = len(waiting)  # the schedule holds only orders due within the run
        self._queued = 0

    async def _send(
        self, registry: Registry, endpoints: list[BrokerEndpoint], drone: str, planned: PlannedOrder
    ) -> None:
        order = order_for(planned)
        token = await patiently(
            "an order's registration", lambda: registry.register(order.order_id, f"customer-{order.order_id}", drone)
        )
        self.tally.sent(order.order_id, drone, planned.destination)
        assert self._pages is not None
        self._pages.follow(order.order_id, drone, token)  # the customer opens the page as dispatch tells them
        sent = False

        def on_sent() -> None:
            nonlocal sent
            sent = True

        wind = GroundWind(0.0, datetime.now(UTC), "sim fleet (calm)")  # measured now, as dispatch would send it
        try:
            await send_order(endpoints, drone, order, wind=wind, timeout_s=ANSWER_TIMEOUT_S, on_sent=on_sent)
        except FlightctlError as exc:
            if not sent:
                self._pages.unfollow(order.order_id)
                await patiently("an order's removal", lambda: registry.forget(order.order_id))
                self.tally.unsent(order.order_id, str(exc))
            log.warning("order %s to %s: %s", order.order_id, drone, exc)  # sent: its events will tell

    async def _settle(self) -> None:
        """The orders in flight get ``settle_sim_s`` of simulated time to end."""
        deadline = time.monotonic() + self.spec.settle_sim_s / self.spec.speedup
        while not self.tally.all_ended() and time.monotonic() < deadline:
            await self._wait_change(1.0)

    async def _watch(self, endpoint: BrokerEndpoint, broker: str) -> None:
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
                    self.tally.take(envelope, time.monotonic(), via=broker)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    log.warning("fleet watcher: %s on %s not counted: %s", envelope.type, message.topic, exc)
                self._changed.set()

        await keep_connected(
            # A session the broker keeps (and restores after a restart): no event missed while reconnecting.
            lambda: make_client(endpoint, client_id=f"fleet-watcher-{broker}", session_expiry_s=3600),
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
                view = None if aircraft is None else self.tally.aircraft[aircraft.drone]
                held = None if view is None else view.holding
                state = None if view is None or held is None else view.state
                record = FaultRecord(fault.at_min, fault.kind.value, fault.aircraft, held, state)
                self.struck.append(record)
                log.info("fault at %.1f simulated min: %s %s", fault.at_min, fault.kind.value, fault.aircraft or "")
                begun = time.monotonic()
                try:
                    ending = await self._begin(fault, aircraft, record, lasting)
                except (FlightctlError, OSError) as exc:
                    record.note = f"could not be struck: {exc}"
                    continue
                if ending is not None:
                    lasting.create_task(self._end_after(fault, ending, record, begun))

    async def _begin(
        self, fault: Fault, aircraft: Aircraft | None, record: FaultRecord, lasting: asyncio.TaskGroup
    ) -> Callable[[], Any] | None:
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
            record.broker, broker = self._busiest_broker()
            await broker.restart()
            record.note = "stopped and started again"
        elif kind is FaultKind.BROKER_FAILOVER:
            if len(self._brokers) < 2:
                record.note = "not struck: one broker (--pair for an active pair)"
                return None
            record.broker, broker = self._busiest_broker()
            other = next(name for name in self._brokers if name != record.broker)
            stopped = time.monotonic()
            await broker.stop()
            lasting.create_task(self._moved(record, other, stopped))
            return broker.start
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

    async def _end_after(self, fault: Fault, ending: Callable[[], Any], record: FaultRecord, begun: float) -> None:
        await asyncio.sleep(fault.for_s / self.spec.speedup)
        lasted = f"for {fault.for_s:g} s"
        try:
            result = ending()
            if asyncio.iscoroutine(result):
                await result
        except (FlightctlError, OSError) as exc:
            lasted += f"; could not be ended: {exc}"
        record.note = "; ".join(part for part in (lasted, record.note) if part)
        assert self._pages is not None
        record.pages_updated = self._pages.shown_between(begun, time.monotonic())

    def _busiest_broker(self) -> tuple[str, Mosquitto]:
        """The broker most aircraft were last heard through (the first, before any was heard)."""
        heard = Counter(a.broker for a in self.tally.aircraft.values() if a.broker is not None)
        name = max(self._brokers, key=lambda n: (heard.get(n, 0), n == BROKER_NAMES[0]))
        return name, self._brokers[name]

    async def _moved(self, record: FaultRecord, other: str, stopped: float) -> None:
        """How long until every aircraft was heard through ``other`` after its broker stopped at ``stopped``."""
        deadline = stopped + FAILOVER_WAIT_S
        while (behind := self.tally.moved_to(other, stopped)) and time.monotonic() < deadline:
            await self._wait_change(1.0)  # a wake-up a moment late costs nothing: the time comes from the tally
        if behind:
            record.note = f"not heard through {other} within {FAILOVER_WAIT_S:g} s: {', '.join(behind)}"
        else:  # when the last of them was first heard there, whenever this woke to see it
            heard = [a.broker_since for a in self.tally.aircraft.values() if a.broker_since is not None]
            record.took_s = round(max(heard) - stopped, 2)

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
            held = {d: set(await patiently("events seen", functools.partial(registry.seen_seqs, d))) for d in journaled}
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
                    profile=self.spec.profiles()[aircraft.drone],
                )
            )
        return records


async def patiently(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """A registry call through a registry restart (a fault the fleet strikes), as the relay rides one out: tried
    again until ``REGISTRY_WAIT_S``, then a FlightctlError saying what did not happen."""
    deadline = time.monotonic() + REGISTRY_WAIT_S
    while True:
        try:
            return await call()
        except RegistryUnavailable as exc:
            if time.monotonic() > deadline:
                raise FlightctlError(
                    f"the registry did not answer ({what}) within {REGISTRY_WAIT_S:g} s: {exc}"
                ) from exc
            await asyncio.sleep(0.5)


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
