"""How a delivery ended, rebuilt from the journal alone: no live vehicle needed (for reports, restarts, MQTT)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flightctl.delivery.events import DeliveryState
from flightctl.delivery.history import History
from flightctl.geo import Location


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

    @classmethod
    def from_history(cls, order_id: str, history: History) -> DeliveryOutcome:
        return cls(
            order_id=order_id,
            state=history.state or DeliveryState.FAILED,
            delivered=history.released or history.arrived,
            abort_reason=history.abort_reason,
            nogo=list(history.nogo),
            release_point=history.release_point,
            release_error_m=history.release_error_m,
            phase_times_s=dict(history.phase_times_s),
            energy_used_wh=history.energy_used_wh,
        )

    @property
    def verdict(self) -> str:
        if self.delivered:
            return "delivered"
        if self.nogo:
            return "no-go"
        if self.state is DeliveryState.OUT_OF_CONTACT:
            return "unknown: out of contact, parcel presumed on board"
        return "not delivered"

    def as_json(self) -> dict[str, Any]:
        point = self.release_point
        return {
            "order_id": self.order_id,
            "outcome": self.verdict,
            "final_state": self.state.value,
            "abort_reason": self.abort_reason,
            "nogo": self.nogo,
            "release_point": None if point is None else {"lat_deg": point.lat_deg, "lon_deg": point.lon_deg},
            "release_distance_from_target_m": None if self.release_error_m is None else round(self.release_error_m, 2),
            "phase_times_s": {k: round(v, 1) for k, v in self.phase_times_s.items()},
            "energy_used_wh": None if self.energy_used_wh is None else round(self.energy_used_wh, 2),
        }
