"""Telemetry stream rates: asked for in the background until the vehicle takes them, and measured as they arrive.

Rate requests are housekeeping, not safety: on a lossy radio some SET_MESSAGE_INTERVAL commands lose their
ACK, and failing the whole connection for that (as a fixed number of tries did) stopped deliveries at connect
half the time at 20 % loss. So each rate is asked for again until it is acknowledged or refused, while the
program carries on, and what the vehicle actually sends is measured: the data's own freshness, not the
request's fate, is what checks judge.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from flightctl.dialect import MAVLinkMessage
from flightctl.errors import VehicleRejected, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.vehicle.commands import Commands

log = logging.getLogger(__name__)

# Arrival times kept per message: enough for a rate over a few seconds at 10 Hz.
_WINDOW = 32


@dataclass(frozen=True)
class StreamRate:
    message: str
    requested_hz: float
    status: str  # "acknowledged", "pending" or "refused: <why>"
    measured_hz: float | None  # over the recent arrivals; None before two have arrived


class StreamRates:
    def __init__(
        self, connection: MavConnection, commands: Commands, requested_hz: Mapping[str, float], *, retry_s: float = 2.0
    ) -> None:
        self._commands = commands
        self.requested_hz = dict(requested_hz)
        self._retry_s = retry_s
        self._status = dict.fromkeys(self.requested_hz, "pending")
        self._arrivals: dict[str, deque[float]] = {name: deque(maxlen=_WINDOW) for name in self.requested_hz}
        self._loop = asyncio.get_running_loop()
        self._remove = connection.add_listener(list(self.requested_hz), self._arrived)
        self.settled = asyncio.Event()  # every rate acknowledged or refused

    def _arrived(self, message: MAVLinkMessage) -> None:
        # Runs in the link reader: one look-up and one append.
        arrivals = self._arrivals.get(message.get_type())
        if arrivals is not None:
            arrivals.append(self._loop.time())

    def close(self) -> None:
        """Stop measuring."""
        self._remove()

    async def run(self) -> None:
        """Ask for every pending rate, again every ``retry_s``, until each is acknowledged or refused."""
        while pending := [name for name, status in self._status.items() if status == "pending"]:
            for message in pending:
                try:
                    await self._commands.set_message_interval(message, self.requested_hz[message])
                    self._status[message] = "acknowledged"
                except VehicleRejected as exc:
                    self._status[message] = f"refused: {exc}"
                    log.warning("stream rate %s refused: %s", message, exc)
                except VehicleTimeout as exc:
                    log.info("stream rate %s not acknowledged yet (%s); asking again", message, exc)
            if any(status == "pending" for status in self._status.values()):
                await asyncio.sleep(self._retry_s)
        self.settled.set()

    def measured_hz(self, message: str) -> float | None:
        arrivals = self._arrivals.get(message)
        if not arrivals or len(arrivals) < 2:
            return None
        span = arrivals[-1] - arrivals[0]
        return (len(arrivals) - 1) / span if span > 0 else None

    def report(self) -> list[StreamRate]:
        return [
            StreamRate(name, rate, self._status[name], self.measured_hz(name))
            for name, rate in self.requested_hz.items()
        ]
