"""What each aircraft last said it was doing, as a relay reads its events: its newest delivery state, the order
it was for, and when, kept by sequence number (an older event read late, or one read twice, changes nothing).
Pure: the relay feeds it the events it has read; the ops view shows it beside the registry's counts.

It lives in the relay's memory: after a relay starts, an aircraft shows once it next reports a state (a fleet in
the air reports every phase of every delivery). The registry keeps what must survive: events and statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from flightctl.ground.customer_status import read_contract
from flightctl.mqtt.contract import Envelope, MessageType
from flightctl.mqtt.messages import StateEvent

MAX_AIRCRAFT = 10_000  # more than any fleet: a flood of made-up drone ids cannot grow it without bound


@dataclass(frozen=True)
class LastState:
    drone_id: str
    state: str
    order_id: str | None
    seq: int
    at_utc: str


class AircraftStates:
    def __init__(self) -> None:
        self._last: dict[str, LastState] = {}

    def take(self, envelope: Envelope) -> None:
        """One event an aircraft sent (already checked to be its own); a state newer than the one kept replaces it.
        A state event whose data is not the contract's raises ``NotAnEnvelope``, as the relay's reading does."""
        if envelope.type is not MessageType.STATE or envelope.seq is None:
            return
        state = read_contract(StateEvent, envelope).state
        kept = self._last.get(envelope.drone)
        if kept is not None and kept.seq >= envelope.seq:
            return
        if kept is None and len(self._last) >= MAX_AIRCRAFT:
            return
        at = envelope.time.isoformat(timespec="seconds")
        self._last[envelope.drone] = LastState(envelope.drone, state, envelope.order_id, envelope.seq, at)

    def view(self) -> list[dict[str, Any]]:
        return [asdict(last) for _drone, last in sorted(self._last.items())]


def order_counts(overview: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Orders by their latest customer status (from ``Registry.overview``); those with none yet as "REGISTERED"."""
    return dict(sorted(Counter(str(row.get("status") or "REGISTERED") for row in overview).items()))
