"""The demand a simulated fleet is dispatched from: orders per hour (Poisson arrivals), a destination mix over the
shipped orders, and a parcel mass distribution (triangular: the lightest, the most common, the heaviest).

Pure and seeded: the same model and seed give the same day, so a fleet run can be repeated and compared. A
parcel heavier than an aircraft may carry is kept in the schedule on purpose: the aircraft refuses it, as it
would a real one, and the fleet report counts the refusal.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from flightctl.config import StrictModel, named_config, read_yaml_model
from flightctl.errors import ConfigError


class Destination(StrictModel):
    order: str = Field(min_length=1, max_length=80)  # a name in configs/orders/ (its drop point and method)
    weight: float = Field(gt=0, le=1000)


class ParcelMass(StrictModel):
    min_kg: float = Field(ge=0, le=100)
    mode_kg: float = Field(ge=0, le=100)
    max_kg: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> ParcelMass:
        if not self.min_kg <= self.mode_kg <= self.max_kg:
            raise ValueError("parcel mass: min_kg <= mode_kg <= max_kg")
        return self


class DemandModel(StrictModel):
    orders_per_hour: float = Field(gt=0, le=100_000)
    destinations: list[Destination] = Field(min_length=1, max_length=200)
    parcel: ParcelMass
    seed: int = 0


@dataclass(frozen=True)
class PlannedOrder:
    at_s: float  # simulated seconds from the start of the run
    order_id: str
    destination: str  # the order it is made from
    parcel_kg: float


def schedule(model: DemandModel, duration_s: float, *, prefix: str = "FLT") -> list[PlannedOrder]:
    """Every order that arrives within ``duration_s`` simulated seconds, in time order."""
    rng = random.Random(model.seed)
    names = [d.order for d in model.destinations]
    weights = [d.weight for d in model.destinations]
    orders: list[PlannedOrder] = []
    at_s = rng.expovariate(model.orders_per_hour / 3600.0)
    while at_s < duration_s:
        kg = rng.triangular(model.parcel.min_kg, model.parcel.max_kg, model.parcel.mode_kg)
        destination = rng.choices(names, weights)[0]
        orders.append(PlannedOrder(at_s, f"{prefix}-{len(orders) + 1:04d}", destination, round(kg, 2)))
        at_s += rng.expovariate(model.orders_per_hour / 3600.0)
    return orders


def load_demand(path: Path | None = None) -> DemandModel:
    """A demand model from YAML; the shipped one (configs/fleet/demand.yaml) without a path. Each destination
    must name an order there is."""
    path = path or named_config("fleet", "demand")
    model = read_yaml_model(path, DemandModel)
    for destination in model.destinations:
        if not named_config("orders", destination.order).is_file():
            raise ConfigError(f"{path}: destinations: no order {destination.order!r} (configs/orders/, or a file)")
    return model


def assign(
    due: Sequence[PlannedOrder], free: Mapping[str, int], able: Callable[[PlannedOrder, str], bool]
) -> tuple[PlannedOrder, str] | None:
    """The next order to send and the aircraft to send it to: the first due order (in time order) that a free
    aircraft can fly, to the one of those that has flown the fewest orders (by name on a tie). ``free``: each
    free aircraft and the orders it has flown. An order no free aircraft can fly (a winch drop while only VTOLs
    are free) waits for one that can, without holding up the orders behind it."""
    for planned in due:
        able_now = [drone for drone in free if able(planned, drone)]
        if able_now:
            return planned, min(able_now, key=lambda drone: (free[drone], drone))
    return None
