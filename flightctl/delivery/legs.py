"""An island leg as site data: from one airstrip to another, with an alternate, at a cruise height, over named
water. The airstrips are named here and resolved at the edge (configs/airstrips/); the planner gets them typed.
"""

from __future__ import annotations

import enum

from pydantic import Field, model_validator

from flightctl.config import StrictModel


class RunwayLostRule(enum.StrEnum):
    """What an aircraft en route does when the destination has no usable runway any more."""

    DIVERT = "divert"  # fly on to the alternate and land there
    RETURN = "return"  # turn back and land at the airstrip it left


class WaterCrossing(StrictModel):
    """A stretch of the leg over the sea, by distance along the track from the departure airstrip."""

    name: str = Field(min_length=1, max_length=80)
    from_km: float = Field(ge=0)
    to_km: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> WaterCrossing:
        if self.to_km <= self.from_km:
            raise ValueError(f"water crossing {self.name!r}: to_km must be beyond from_km")
        return self


class Leg(StrictModel):
    name: str = Field(min_length=1, max_length=80)
    origin: str = Field(description="an airstrip in configs/airstrips/, or a file")
    destination: str
    alternate: str
    cruise_height_m: float = Field(gt=0, le=1500, description="above the departure airstrip")
    corridor_half_width_m: float = Field(default=2000, gt=0, le=20000)
    when_destination_unusable: RunwayLostRule = RunwayLostRule.DIVERT
    water: list[WaterCrossing] = Field(default_factory=list)

    @model_validator(mode="after")
    def _three_airstrips(self) -> Leg:
        if len({self.origin, self.destination, self.alternate}) != 3:
            raise ValueError("origin, destination and alternate must be three different airstrips")
        return self
