"""MavConnection: the only reader of a link.

One task reads the transport, decodes with ``MavCodec`` and routes every message to

- listeners: plain callbacks run in the reader (telemetry state), which must be quick and never block;
- inboxes: per-waiter queues with a type set and a predicate (command ACKs, parameter values, mission
  requests...), registered *before* the request is sent so a fast answer is never missed.

It also sends our HEARTBEAT as an onboard controller, watches the vehicle's, and reports the link state.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from flightctl.dialect import MAVLinkMessage, enum_name, mavlink
from flightctl.errors import LinkClosed, VehicleTimeout
from flightctl.link.codec import CodecStats, MavCodec, SigningKey
from flightctl.link.inbox import Inbox, InboxScope, Predicate
from flightctl.link.rtt import RttEstimator
from flightctl.link.transport import Transport, TransportStats
from flightctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

Listener = Callable[[MAVLinkMessage], None]
EVERY_MESSAGE = "*"  # a listener for every message received (a telemetry log), whatever its type or sender

ONBOARD_COMPONENT_ID = mavlink.MAV_COMP_ID_ONBOARD_COMPUTER  # 191
# Heartbeat sources that are not an autopilot we could be controlling.
_NOT_A_VEHICLE = {
    mavlink.MAV_TYPE_GCS,
    mavlink.MAV_TYPE_ONBOARD_CONTROLLER,
    mavlink.MAV_TYPE_GIMBAL,
    mavlink.MAV_TYPE_ADSB,
    mavlink.MAV_TYPE_CAMERA,
}


class LinkState(enum.Enum):
    WAITING = "waiting"  # no vehicle heartbeat heard yet
    CONNECTED = "connected"
    LOST = "lost"  # heard before, silent for longer than the link timeout


@dataclass(frozen=True)
class VehicleIdentity:
    system_id: int
    component_id: int
    mav_type: int
    autopilot: int

    @property
    def type_name(self) -> str:
        return enum_name("MAV_TYPE", self.mav_type).removeprefix("MAV_TYPE_")


@dataclass(frozen=True)
class LinkStats:
    state: LinkState
    quality_pct: float | None  # share of the vehicle's frames that arrived, from its sequence numbers
    losses: int  # times the link went LOST
    recoveries: int
    codec: CodecStats
    transport: TransportStats
    inbox_overflows: int
    listener_errors: int


class MavConnection:
    """A MAVLink 2 connection to one vehicle over one transport. Use as ``async with``."""

    def __init__(
        self,
        transport: Transport,
        *,
        system_id: int = 1,
        component_id: int = ONBOARD_COMPONENT_ID,
        target_system: int | None = None,
        heartbeat_period_s: float = 1.0,
        link_timeout_s: float = 3.0,
        signing: SigningKey | None = None,
    ) -> None:
        # An onboard computer shares its vehicle's system id by convention. Posing as a GCS (255) would
        # keep ArduPilot's GCS failsafe from noticing that the real ground station went away.
        self.transport = transport
        self.codec = MavCodec(system_id, component_id, signing)
        self.heartbeat_period_s = heartbeat_period_s
        self.link_timeout_s = link_timeout_s
        self._wanted_system = target_system
        self.vehicle: VehicleIdentity | None = None
        self.last_heartbeat: MAVLinkMessage | None = None
        self._state = LinkState.WAITING
        self._state_changed = asyncio.Event()  # set and replaced on every change
        self._state_listeners: list[Callable[[LinkState], None]] = []
        self._last_vehicle_heartbeat_at: float | None = None
        self._inboxes: dict[str, list[Inbox]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._open = False
        self._entered = False
        self._losses = 0
        self._recoveries = 0
        self._inbox_overflows = 0
        self._listener_errors = 0
        self._last_seq: int | None = None
        self._seq_received = 0
        self._seq_lost = 0
        self._quality_window: deque[tuple[int, int]] = deque(maxlen=6)
        self._rtts: dict[str, RttEstimator] = {}

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> MavConnection:
        if self._entered:
            raise RuntimeError("MavConnection is not re-entrant: it is already open")
        self._entered = True
        try:
            await self.open()
        except BaseException:
            self._entered = False
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
        self._entered = False

    async def open(self) -> None:
        await self.transport.open()
        self._open = True
        self._tasks = [
            asyncio.create_task(self._read_forever(), name=f"mavlink reader {self.transport.url}"),
            asyncio.create_task(self._heartbeat_forever(), name=f"mavlink heartbeat {self.transport.url}"),
        ]

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        for task in self._tasks:
            failed = await cancel_and_wait(task)
            if failed is not None and not isinstance(failed, LinkClosed):
                raise failed
        self._tasks = []
        await self.transport.close()
        closed = LinkClosed(f"{self.transport.url}: connection closed")
        for inboxes in self._inboxes.values():
            for inbox in inboxes:
                inbox._close(closed)

    @property
    def is_open(self) -> bool:
        return self._open

    # ---- sending ---------------------------------------------------------------------------------------

    @property
    def target_system(self) -> int:
        """The vehicle's system id (the one asked for, else the one heard; 1 until then)."""
        if self._wanted_system is not None:
            return self._wanted_system
        return self.vehicle.system_id if self.vehicle is not None else 1

    @property
    def target_component(self) -> int:
        return self.vehicle.component_id if self.vehicle is not None else mavlink.MAV_COMP_ID_AUTOPILOT1

    def send(self, message: MAVLinkMessage) -> None:
        if not self._open:
            raise LinkClosed(f"{self.transport.url}: cannot send {message.get_type()}, connection is closed")
        self.transport.write(self.codec.encode(message))

    # ---- receiving -------------------------------------------------------------------------------------

    def is_from_vehicle(self, message: MAVLinkMessage) -> bool:
        return bool(message.get_srcSystem() == self.target_system)

    def inbox(
        self,
        types: str | Iterable[str],
        predicate: Predicate | None = None,
        *,
        what: str | None = None,
        maxsize: int = 256,
        from_vehicle: bool = True,
    ) -> InboxScope:
        """``with conn.inbox("COMMAND_ACK", pred) as acks: conn.send(...); await acks.next(1.0)``.

        Register before sending, so an answer that arrives at once is not missed; leaving the block
        unregisters, even on cancellation.
        """
        names = frozenset([types] if isinstance(types, str) else types)
        inbox = Inbox(self, names, predicate, what or "/".join(sorted(names)), maxsize, from_vehicle)
        return InboxScope(self, inbox)

    async def wait_message(
        self, types: str | Iterable[str], predicate: Predicate | None = None, *, timeout_s: float, what: str
    ) -> MAVLinkMessage:
        """The next message of ``types`` matching ``predicate``, or ``VehicleTimeout`` saying ``what``."""
        with self.inbox(types, predicate, what=what) as inbox:
            return await inbox.next(timeout_s)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, types: str | Iterable[str], *, maxsize: int = 64, from_vehicle: bool = True
    ) -> AsyncIterator[Inbox]:
        """A bounded stream of messages; the subscription ends with the block."""
        with self.inbox(types, None, maxsize=maxsize, from_vehicle=from_vehicle) as inbox:
            yield inbox

    def add_listener(self, types: str | Iterable[str], listener: Listener) -> Callable[[], None]:
        """Call ``listener`` in the reader for each message of ``types`` (``EVERY_MESSAGE``: all of them); returns
        the function that removes it."""
        names = [types] if isinstance(types, str) else list(types)
        for name in names:
            self._listeners.setdefault(name, []).append(listener)

        def remove() -> None:
            for name in names:
                with contextlib.suppress(ValueError):
                    self._listeners[name].remove(listener)

        return remove

    def _register(self, inbox: Inbox) -> None:
        for name in inbox.types:
            self._inboxes.setdefault(name, []).append(inbox)

    def _unregister(self, inbox: Inbox) -> None:
        for name in inbox.types:
            inboxes = self._inboxes.get(name, [])
            with contextlib.suppress(ValueError):
                inboxes.remove(inbox)
            if not inboxes:
                self._inboxes.pop(name, None)
        self._inbox_overflows += inbox.dropped

    def pending_waiters(self) -> int:
        """How many inboxes are registered (tests use it to prove nothing leaks)."""
        return sum(len(inboxes) for inboxes in self._inboxes.values())

    async def _read_forever(self) -> None:
        while True:
            data = await self.transport.read()  # LinkClosed ends the reader; nothing else may
            try:
                messages = self.codec.feed(data)
            except Exception:  # a codec bug must cost the bytes, not the link
                log.exception("%s: could not decode %d bytes", self.transport.url, len(data))
                continue
            for message in messages:
                self._route(message)

    def _route(self, message: MAVLinkMessage) -> None:
        name = message.get_type()
        if name == "HEARTBEAT":
            self._vehicle_heartbeat(message)
        vehicle = self.vehicle
        if vehicle is not None and (message.get_srcSystem(), message.get_srcComponent()) == (
            vehicle.system_id,
            vehicle.component_id,
        ):
            self._count_sequence(message.get_seq())
        for listener in (*self._listeners.get(name, ()), *self._listeners.get(EVERY_MESSAGE, ())):
            try:
                listener(message)
            except Exception:
                self._listener_errors += 1
                log.exception("listener for %s failed", name)
        for inbox in tuple(self._inboxes.get(name, ())):
            try:
                inbox._offer(message)
            except Exception:  # a waiter's predicate must never stop the reader
                self._listener_errors += 1
                log.exception("inbox %r failed on %s", inbox, name)

    def _vehicle_heartbeat(self, message: MAVLinkMessage) -> None:
        if self.vehicle is None:
            if message.autopilot == mavlink.MAV_AUTOPILOT_INVALID or message.type in _NOT_A_VEHICLE:
                return
            if self._wanted_system is not None and message.get_srcSystem() != self._wanted_system:
                return
            self.vehicle = VehicleIdentity(
                message.get_srcSystem(), message.get_srcComponent(), message.type, message.autopilot
            )
            log.info("%s: vehicle %s system %d", self.transport.url, self.vehicle.type_name, self.vehicle.system_id)
        elif (message.get_srcSystem(), message.get_srcComponent()) != (
            self.vehicle.system_id,
            self.vehicle.component_id,
        ):
            return
        self.last_heartbeat = message
        self._last_vehicle_heartbeat_at = asyncio.get_running_loop().time()
        if self._state is not LinkState.CONNECTED:
            if self._state is LinkState.LOST:
                self._recoveries += 1
                log.warning("%s: vehicle heartbeat back, link recovered", self.transport.url)
            self._set_state(LinkState.CONNECTED)

    @property
    def frames_lost(self) -> int:
        """Frames from the vehicle this link never received, by the gaps in their sequence numbers, since it
        opened: whether the radio has shown loss at all."""
        return self._seq_lost

    def _count_sequence(self, seq: int) -> None:
        if self._last_seq is not None:
            self._seq_lost += (seq - self._last_seq - 1) % 256
        self._last_seq = seq
        self._seq_received += 1

    # ---- link state ------------------------------------------------------------------------------------

    @property
    def state(self) -> LinkState:
        return self._state

    def on_state_change(self, listener: Callable[[LinkState], None]) -> Callable[[], None]:
        self._state_listeners.append(listener)
        return lambda: self._state_listeners.remove(listener)

    def _set_state(self, state: LinkState) -> None:
        if state is self._state:
            return
        self._state = state
        for listener in tuple(self._state_listeners):
            try:
                listener(state)
            except Exception:
                self._listener_errors += 1
                log.exception("link state listener failed")
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()

    async def wait_state(self, state: LinkState, *, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while self._state is not state:
                    await self._state_changed.wait()
        except TimeoutError:
            raise VehicleTimeout(
                f"{self.transport.url}: link not {state.value} within {timeout_s:g} s (it is {self._state.value})"
            ) from None

    async def wait_vehicle(self, *, timeout_s: float) -> VehicleIdentity:
        """Wait for the vehicle's first heartbeat."""
        await self.wait_state(LinkState.CONNECTED, timeout_s=timeout_s)
        assert self.vehicle is not None
        return self.vehicle

    async def _heartbeat_forever(self) -> None:
        heartbeat = mavlink.MAVLink_heartbeat_message(
            type=mavlink.MAV_TYPE_ONBOARD_CONTROLLER,
            autopilot=mavlink.MAV_AUTOPILOT_INVALID,
            base_mode=0,
            custom_mode=0,
            system_status=mavlink.MAV_STATE_ACTIVE,
            mavlink_version=3,
        )
        loop = asyncio.get_running_loop()
        check_period_s = min(self.heartbeat_period_s, self.link_timeout_s / 4)
        next_heartbeat = loop.time()
        next_quality = loop.time() + 1.0
        while True:
            now = loop.time()
            if now >= next_heartbeat:
                self.send(heartbeat)
                next_heartbeat = now + self.heartbeat_period_s
            if now >= next_quality:
                self._quality_window.append((self._seq_received, self._seq_lost))
                next_quality = now + 1.0
            heard = self._last_vehicle_heartbeat_at
            if self._state is LinkState.CONNECTED and heard is not None and now - heard > self.link_timeout_s:
                self._losses += 1
                log.warning("%s: no vehicle heartbeat for %.1f s, link lost", self.transport.url, now - heard)
                self._set_state(LinkState.LOST)
            await asyncio.sleep(check_period_s)

    def silent_s(self) -> float:
        """Seconds since the vehicle's last heartbeat (infinite before the first): is it still talking?"""
        heard = self._last_vehicle_heartbeat_at
        return float("inf") if heard is None else asyncio.get_running_loop().time() - heard

    def rtt(self, protocol: str, *, min_timeout_s: float, max_timeout_s: float) -> RttEstimator:
        """This link's round-trip estimate for one sub-protocol ("mission", "ftp", "command"), kept across
        transfers so the second one starts from what the first measured. The bounds are the caller's policy.

        Each sub-protocol keeps its own: ArduPilot answers MAVFTP from a worker thread that queues five
        requests and the mission protocol from its main loop, so their round trips differ. One not measured
        yet starts from the link's others, which share the radio."""
        estimator = self._rtts.get(protocol)
        if estimator is None:
            estimator = self._rtts[protocol] = RttEstimator(min_timeout_s=min_timeout_s, max_timeout_s=max_timeout_s)
        estimator.min_timeout_s, estimator.max_timeout_s = min_timeout_s, max_timeout_s
        for other in self._rtts.values():
            if estimator.measured:
                break
            estimator.start_from(other)
        return estimator

    def stats(self) -> LinkStats:
        quality: float | None = None
        if len(self._quality_window) >= 2:
            (received0, lost0), (received1, lost1) = self._quality_window[0], self._quality_window[-1]
            total = (received1 - received0) + (lost1 - lost0)
            quality = 100.0 * (received1 - received0) / total if total else None
        if self._state is LinkState.LOST:
            quality = 0.0
        return LinkStats(
            state=self._state,
            quality_pct=quality,
            losses=self._losses,
            recoveries=self._recoveries,
            codec=self.codec.stats,
            transport=self.transport.stats,
            inbox_overflows=self._inbox_overflows + sum(i.dropped for v in self._inboxes.values() for i in v),
            listener_errors=self._listener_errors,
        )

    def __repr__(self) -> str:
        return f"<MavConnection {self.transport.url} [{self._state.name}]>"
