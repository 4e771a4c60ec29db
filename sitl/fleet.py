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
from dataclasses import asdict, dataclass, field
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
from sitl.instance import SitlInstance
from sitl.locations import resolve_home
from sitl.mosquitto import Mosquitto
from sitl.postgres import PostgresServer
from sitl.relay_process import RelayProcess

log = logging.getLogger(__name__)

SHIPPED_BROKER = configs_dir() / "mosquitto" / "flightctl.conf"
ANSWER_TIMEOUT_S = 60.0
SETTLE_SIM_S = 900.0  # simulated time the orders still in flight get to end after the last is dispatched
CATCH_UP_S = 60.0  # wall time the registry gets to hold what the journals hold


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
    notes: list[str] = field(default_factory=list)


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
            broker = await stack.enter_async_context(
                Mosquitto(self.spec.folder / "broker", template=SHIPPED_BROKER, accounts_folder=accounts.folder)
            )

            def endpoint(user: str) -> BrokerEndpoint:
                return BrokerEndpoint.from_url(
                    broker.url, username=user, password=passwords[user], ca_file=broker.ca_file
                )

            registry_url = str(self.spec.folder / "registry.sqlite")
            if self.spec.postgres:
                registry_url = (await stack.enter_async_context(PostgresServer())).url
            relay = RelayProcess(
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
            cpu_before = _cpu_times(self.aircraft)
            self._phase = "flying"
            await self._dispatch(registry, [endpoint("dispatch-1")])
            self._phase = "settling"
            await self._settle()
            costs = _costs(self.aircraft, cpu_before, time.monotonic() - self._flying_since)
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
        config = write_daemon_config(
            folder / "daemon",
            drone_id=drone,
            autopilot_url=sim.serial2_url,
            broker_url=broker.url,
            username=drone,
            password=password,
            ca_file=broker.ca_file,
            rate_hz=1,
        )
        daemon = DaemonProcess(config)
        await daemon.start()
        stack.push_async_callback(_stopped, daemon)
        self.aircraft.append(Aircraft(drone, sim, daemon, folder / "daemon"))

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
        calm = GroundWind(0.0, datetime.now(UTC), "sim fleet (calm)")
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
            await self._send(registry, endpoints, aircraft.drone, planned, calm)
        self._unserved = len(waiting) - sum(1 for o in waiting if o.at_s >= self.spec.sim_s)
        self._queued = 0

    async def _send(
        self, registry: Registry, endpoints: list[BrokerEndpoint], drone: str, planned: PlannedOrder, calm: GroundWind
    ) -> None:
        order = order_for(planned)
        await registry.register(order.order_id, f"customer-{order.order_id}", drone)
        self.tally.sent(order.order_id, drone, planned.destination)
        sent = False

        def on_sent() -> None:
            nonlocal sent
            sent = True

        wind = GroundWind(calm.speed_m_s, datetime.now(UTC), calm.source)
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
                self.tally.take(envelope, time.monotonic())
                self._changed.set()

        await keep_connected(
            lambda: make_client(endpoint, client_id="fleet-watcher"), serve, min_delay_s=0.5, max_delay_s=2
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

    # ---- the end -------------------------------------------------------------------------------------------

    async def _reconcile(self, registry: Registry) -> list[AircraftRecord]:
        """Each aircraft's journal against the registry, once the registry has caught up (or ``CATCH_UP_S``)."""
        journaled: dict[str, list[int]] = {}
        for aircraft in self.aircraft:
            async with await Journal.open(aircraft.folder / "journal.sqlite", reader=True) as journal:
                journaled[aircraft.drone] = await journal.outbox_seqs()
        deadline = time.monotonic() + CATCH_UP_S
        while True:
            held = {d: set(await registry.seen_seqs(d)) for d in journaled}
            if all(held[d] >= set(seqs) for d, seqs in journaled.items()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
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


def _cpu_times(aircraft: list[Aircraft]) -> dict[int, float]:
    times = {}
    for a in aircraft:
        for pid in (a.sim.pid, a.daemon.pid):
            if pid is not None:
                with contextlib.suppress(psutil.Error):
                    cpu = psutil.Process(pid).cpu_times()
                    times[pid] = cpu.user + cpu.system
    return times


def _costs(aircraft: list[Aircraft], before: dict[int, float], wall_s: float) -> list[ProcessCost]:
    after = _cpu_times(aircraft)
    costs = []
    for a in aircraft:
        for kind, pid in (("sitl", a.sim.pid), ("daemon", a.daemon.pid)):
            if pid is None or pid not in before or pid not in after:
                continue
            with contextlib.suppress(psutil.Error):
                rss_mb = psutil.Process(pid).memory_info().rss / 2**20
                share = (after[pid] - before[pid]) / max(wall_s, 1e-6)
                costs.append(ProcessCost(a.drone, kind, round(share, 4), round(rss_mb, 1)))
    return costs


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
