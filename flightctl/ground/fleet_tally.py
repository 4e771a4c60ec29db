"""What a fleet is doing, from what its aircraft publish: each aircraft's state and the order it holds, each
order's outcome, and the simulation's achieved speed. Pure: envelopes in, a view out (the live view, the
fleet report and their tests read the same tally).

An order ends delivered (LANDED after RELEASED, or ARRIVED/UNLOADED on a leg), aborted (LANDED without a
release, or FAILED), refused (order_rejected) or, when the run ends first, unfinished. Events are taken once
each by (aircraft, sequence number), whatever the broker delivered twice.
"""

from __future__ import annotations

import enum
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from flightctl.mqtt.consumer import SequenceTracker
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource


class Outcome(enum.StrEnum):
    SENT = "sent"  # published, not answered yet
    FLYING = "flying"  # accepted, not ended
    DELIVERED = "delivered"
    ABORTED = "aborted"
    REFUSED = "refused"
    UNSENT = "unsent"  # no broker took it (counted, never flown)


ENDED = frozenset({Outcome.DELIVERED, Outcome.ABORTED, Outcome.REFUSED, Outcome.UNSENT})


@dataclass
class OrderView:
    order_id: str
    drone: str
    destination: str
    outcome: Outcome = Outcome.SENT
    states: list[str] = field(default_factory=list)
    reason: str | None = None  # a refusal's or an abort's first reason
    accepted_s: float | None = None  # wall time its acceptance arrived
    ended_s: float | None = None  # wall time its end arrived


@dataclass
class AircraftView:
    drone: str
    state: str | None = None  # the last delivery state it reported
    holding: str | None = None  # the order it accepted and has not ended
    events: int = 0  # distinct events (by sequence number)
    overlaps: list[str] = field(default_factory=list)  # orders accepted while it held another: must stay empty
    gps_first: tuple[datetime, float] | None = None  # (autopilot time, wall time) of its first GPS-timed sample
    gps_last: tuple[datetime, float] | None = None
    broker: str | None = None  # the broker its telemetry last came through (of an active pair)
    broker_since: float | None = None  # wall time of its first sample through that broker, this time

    def speedup(self) -> float | None:
        """Simulated seconds per wall second, from its GPS-timed telemetry (SITL's clock runs at the speedup)."""
        if self.gps_first is None or self.gps_last is None or self.gps_last[1] - self.gps_first[1] < 1.0:
            return None
        return (self.gps_last[0] - self.gps_first[0]).total_seconds() / (self.gps_last[1] - self.gps_first[1])


class FleetTally:
    def __init__(self, drones: list[str]) -> None:
        self.aircraft = {drone: AircraftView(drone) for drone in drones}
        self.orders: dict[str, OrderView] = {}
        self._sequences = {drone: SequenceTracker(start_after=0) for drone in drones}
        self.arrived: dict[tuple[str, int], float] = {}  # (aircraft, seq): wall time an event first arrived

    def sent(self, order_id: str, drone: str, destination: str) -> None:
        self.orders[order_id] = OrderView(order_id, drone, destination)

    def unsent(self, order_id: str, reason: str) -> None:
        self.orders[order_id].outcome, self.orders[order_id].reason = Outcome.UNSENT, reason

    def idle(self) -> list[str]:
        """Aircraft that hold no order and have no order on its way to them, in name order."""
        waiting = {o.drone for o in self.orders.values() if o.outcome is Outcome.SENT}
        return [d for d, a in sorted(self.aircraft.items()) if a.holding is None and d not in waiting]

    def take(self, envelope: Envelope, wall_s: float, via: str | None = None) -> None:
        """One envelope from an aircraft's events or telemetry topic, as it arrived (``wall_s``: when; ``via``:
        through which broker, when there are several)."""
        aircraft = self.aircraft.get(envelope.drone)
        if aircraft is None:
            return
        if envelope.type is MessageType.TELEMETRY:
            if envelope.time_source is TimeSource.GPS:
                aircraft.gps_first = aircraft.gps_first or (envelope.time, wall_s)
                aircraft.gps_last = (envelope.time, wall_s)
            if via is not None and via != aircraft.broker:
                aircraft.broker, aircraft.broker_since = via, wall_s
            return
        if envelope.seq is None or not self._sequences[envelope.drone].accept(envelope.seq):
            return
        self.arrived[(envelope.drone, envelope.seq)] = wall_s
        aircraft.events += 1
        order = self.orders.get(envelope.order_id or "")
        if order is None or order.drone != envelope.drone:
            return
        if envelope.type is MessageType.ORDER_ACCEPTED and not envelope.data.get("duplicate"):
            if aircraft.holding not in (None, order.order_id):
                aircraft.overlaps.append(order.order_id)
            aircraft.holding, order.outcome = order.order_id, Outcome.FLYING
            order.accepted_s = order.accepted_s or wall_s
        elif envelope.type is MessageType.ORDER_REJECTED and order.outcome is Outcome.SENT:
            reasons = envelope.data.get("reasons")
            first = reasons[0] if isinstance(reasons, list) and reasons else None
            order.outcome, order.reason = Outcome.REFUSED, None if first is None else str(first)[:200]
            order.ended_s = wall_s
        elif envelope.type is MessageType.STATE:
            detail = envelope.data.get("detail")  # whatever an aircraft sent: only a mapping is read
            self._state(aircraft, order, str(envelope.data.get("state")), detail if isinstance(detail, dict) else {})
            if order.outcome in ENDED and order.ended_s is None:
                order.ended_s = wall_s

    @staticmethod
    def _state(aircraft: AircraftView, order: OrderView, state: str, detail: dict[str, object]) -> None:
        aircraft.state = state
        order.states.append(state)
        if state == "ABORTING" and order.reason is None:
            order.reason = str(detail.get("reason") or detail.get("cause") or "aborted")[:200]
        ended = None
        if state in ("LANDED", "ARRIVED", "UNLOADED"):
            released = "RELEASED" in order.states or state != "LANDED"
            ended = Outcome.DELIVERED if released else Outcome.ABORTED
        elif state == "FAILED":
            ended = Outcome.ABORTED
            order.reason = order.reason or str(detail.get("reason") or "failed")[:200]
        if ended is not None:
            order.outcome = ended
            if aircraft.holding == order.order_id:
                aircraft.holding = None

    def counts(self) -> dict[str, int]:
        tally = Counter(order.outcome.value for order in self.orders.values())
        return {"dispatched": len(self.orders)} | {outcome.value: tally.get(outcome.value, 0) for outcome in Outcome}

    def all_ended(self) -> bool:
        return all(order.outcome in ENDED for order in self.orders.values())

    def moved_to(self, broker: str, since: float) -> list[str]:
        """Aircraft not yet heard through ``broker`` since wall time ``since`` (all of them moved: empty)."""
        return [
            d
            for d, a in sorted(self.aircraft.items())
            if a.broker != broker or a.broker_since is None or a.broker_since < since
        ]


@dataclass(frozen=True)
class Latency:
    """How long events took from reaching the broker to showing on the customer's page."""

    count: int  # events both seen arriving and shown on a page
    p50_s: float | None
    p99_s: float | None
    max_s: float | None
    never_shown: int  # statuses the registry holds for a followed order that its page never showed


def page_delays(arrived: Mapping[tuple[str, int], float], shown: Mapping[tuple[str, int], float]) -> list[float]:
    """From when each event arrived at the broker (``arrived``, by aircraft and seq) to when a customer's page
    first showed the status it made (``shown``), in seconds, in order. The fleet's watcher can hear an event a
    moment after the relay did, on another connection: such a delay counts as none, not as negative."""
    return sorted(round(max(0.0, shown[key] - arrived[key]), 4) for key in shown if key in arrived)


def page_latency(delays: list[float], never_shown: int = 0) -> Latency:
    """``delays`` (from ``page_delays``) summed up: p50, p99 and the worst."""
    ordered = sorted(delays)
    if not ordered:
        return Latency(0, None, None, None, never_shown)
    if len(ordered) == 1:
        return Latency(1, ordered[0], ordered[0], ordered[0], never_shown)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return Latency(len(ordered), round(cuts[49], 3), round(cuts[98], 3), round(ordered[-1], 3), never_shown)
