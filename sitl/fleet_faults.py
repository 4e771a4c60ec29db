"""Faults on a schedule for `sim fleet`, from YAML: each at a simulated minute, on one aircraft or the whole
fleet, and random ones drawn from a seed (the same seed, the same faults). Pure: the file in, a timeline out;
`sitl.fleet` strikes them.

    seed: 3
    faults:
      - {at_min: 2, kind: daemon_kill, aircraft: sim-01}
      - {at_min: 3, kind: radio_cut, aircraft: sim-02, for_s: 20}
      - {at_min: 4, kind: broker_restart}
    random:
      - {count: 2, kinds: [gps_glitch, wind], between_min: [5, 12]}

Per aircraft: ``radio_cut`` (its autopilot link cut for ``for_s``), ``daemon_kill`` (SIGKILL, started again as
systemd would), ``gps_glitch`` (its GPS jumps ``value`` metres north for ``for_s``), ``wind`` (``value`` m/s
for ``for_s``), ``battery`` (the pack's voltage set to ``value``). Fleet-wide: ``broker_restart``,
``relay_kill`` (started again), ``registry_restart`` (PostgreSQL only: a SQLite registry is a file),
``broker_failover`` (a broker of the active pair stopped for ``for_s``: its aircraft move to the other; with
``--pair`` only). A broker fault strikes the broker that carries the most aircraft.
``for_s`` is simulated seconds, like ``at_min``.
"""

from __future__ import annotations

import enum
import random
from pathlib import Path

from pydantic import Field, model_validator

from flightctl.config import StrictModel, read_yaml_model
from flightctl.errors import ConfigError


class FaultKind(enum.StrEnum):
    RADIO_CUT = "radio_cut"
    DAEMON_KILL = "daemon_kill"
    GPS_GLITCH = "gps_glitch"
    WIND = "wind"
    BATTERY = "battery"
    BROKER_RESTART = "broker_restart"
    RELAY_KILL = "relay_kill"
    REGISTRY_RESTART = "registry_restart"
    BROKER_FAILOVER = "broker_failover"


ON_AIRCRAFT = frozenset(
    {FaultKind.RADIO_CUT, FaultKind.DAEMON_KILL, FaultKind.GPS_GLITCH, FaultKind.WIND, FaultKind.BATTERY}
)
DEFAULT_VALUE = {FaultKind.GPS_GLITCH: 20.0, FaultKind.WIND: 12.0, FaultKind.BATTERY: 10.2}


class Fault(StrictModel):
    at_min: float = Field(ge=0, le=24 * 60)
    kind: FaultKind
    aircraft: str | None = Field(default=None, max_length=64)
    for_s: float = Field(default=30.0, ge=0, le=3600)
    value: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _target(self) -> Fault:
        if self.kind in ON_AIRCRAFT and self.aircraft is None:
            raise ValueError(f"{self.kind.value} strikes one aircraft: give aircraft")
        if self.kind not in ON_AIRCRAFT and self.aircraft is not None:
            raise ValueError(f"{self.kind.value} strikes the whole fleet: no aircraft")
        return self

    def amount(self) -> float | None:
        return self.value if self.value is not None else DEFAULT_VALUE.get(self.kind)


class RandomFaults(StrictModel):
    count: int = Field(ge=1, le=1000)
    kinds: list[FaultKind] = Field(min_length=1)
    between_min: tuple[float, float]
    for_s: float = Field(default=30.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _window(self) -> RandomFaults:
        if not 0 <= self.between_min[0] <= self.between_min[1]:
            raise ValueError("between_min: [first, last] simulated minutes, first <= last")
        return self


class FaultPlan(StrictModel):
    seed: int = 0
    faults: list[Fault] = Field(default_factory=list, max_length=10_000)
    random: list[RandomFaults] = Field(default_factory=list, max_length=100)


def timeline(plan: FaultPlan, drones: list[str]) -> list[Fault]:
    """Every fault, the random ones drawn (their aircraft from ``drones``), in time order. An aircraft the fleet
    does not have is a mistake, named."""
    unknown = sorted({f.aircraft for f in plan.faults if f.aircraft is not None and f.aircraft not in drones})
    if unknown:
        raise ConfigError(f"faults: no aircraft {', '.join(unknown)} in this fleet ({drones[0]} .. {drones[-1]})")
    rng = random.Random(plan.seed)
    drawn = []
    for spec in plan.random:
        for _ in range(spec.count):
            kind = rng.choice(spec.kinds)
            drawn.append(
                Fault(
                    at_min=round(rng.uniform(*spec.between_min), 2),
                    kind=kind,
                    aircraft=rng.choice(drones) if kind in ON_AIRCRAFT else None,
                    for_s=spec.for_s,
                )
            )
    return sorted([*plan.faults, *drawn], key=lambda f: f.at_min)


def load_faults(path: Path) -> FaultPlan:
    return read_yaml_model(path, FaultPlan)
