"""Airstrips as site data: runways, the approach and missed approach flown to them, and their own wind limit.

A runway is entered as an aerodrome's published data gives it: its designators, the true bearing of the first
designator's direction, its centre and its length. Each direction it can be landed in is a ``RunwayEnd``,
derived here, so the two ends of one strip can never disagree about where the strip is.

The approach geometry is the airstrip's (distances on the extended centreline, heights above the field); the
glide slope and the flare are the aircraft's, from its profile (``FixedWingSettings``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, model_validator

from flightctl.config import StrictModel
from flightctl.delivery.order import LatLon
from flightctl.geo import AltFrame, Location, offset


class Runway(StrictModel):
    designators: str = Field(pattern=r"^(0[1-9]|[12][0-9]|3[0-6])[LRC]?/(0[1-9]|[12][0-9]|3[0-6])[LRC]?$")
    true_bearing_deg: float = Field(ge=0, lt=360, description="of the first designator's direction")
    centre: LatLon
    length_m: float = Field(gt=0, le=6000)
    surface: str = "asphalt"

    @model_validator(mode="after")
    def _designators_match_the_bearing(self) -> Runway:
        # A designator is the magnetic heading in tens of degrees; UK variation is a few degrees, so a bearing
        # more than 15 degrees from it is a typing mistake (the two directions swapped, a digit dropped).
        first, second = (int(part[:2]) for part in self.designators.split("/"))
        if (first + 18 - 1) % 36 + 1 != second:
            raise ValueError(f"runway {self.designators}: the two designators are not opposite directions")
        if _angle_between(first * 10.0, self.true_bearing_deg) > 15:
            raise ValueError(
                f"runway {self.designators}: true bearing {self.true_bearing_deg:g} deg is not the direction "
                f"of {self.designators.split('/')[0]}"
            )
        return self


class ApproachGeometry(StrictModel):
    """How an aircraft comes in to land here, and how it goes round if it cannot."""

    initial_fix_m: float = Field(default=3000, gt=0, description="initial approach fix, from the threshold")
    initial_height_m: float = Field(default=80, gt=0, description="at the initial approach fix, above the field")
    final_fix_m: float = Field(default=800, gt=0, description="where the glide slope starts, from the threshold")
    # NAV_LAND's point, past the threshold. ArduPlane comes to rest close to it, having first touched down some
    # tens of metres before it (SITL's plane: about 45 m), so it sits far enough in that the wheels meet runway.
    touchdown_m: float = Field(default=100, ge=0, description="the aim point, past the threshold")
    missed_approach_height_m: float = Field(default=80, gt=0, description="climb to this, straight ahead")
    missed_approach_m: float = Field(default=1500, gt=0, description="straight ahead past the aim point")

    @model_validator(mode="after")
    def _fixes_in_order(self) -> ApproachGeometry:
        if not self.initial_fix_m > self.final_fix_m > self.touchdown_m:
            raise ValueError("the initial fix must be farther out than the final fix, and that than the aim point")
        return self


class Airstrip(StrictModel):
    icao: str = Field(pattern=r"^[A-Z]{4}$")
    name: str = Field(min_length=1, max_length=80)
    arp: LatLon = Field(description="the aerodrome reference point")
    elevation_m: float = Field(ge=-100, le=5000, description="above mean sea level")
    runways: list[Runway] = Field(min_length=1)
    approach: ApproachGeometry = Field(default_factory=ApproachGeometry)
    # The strip's own limit (a rough grass strip, a cliff edge's turbulence); the stricter of it and the
    # profile's applies.
    max_crosswind_m_s: float | None = Field(default=None, gt=0)
    source: str = Field(min_length=1, description="where the published figures come from")

    def ends(self) -> list[RunwayEnd]:
        return [end for runway in self.runways for end in runway_ends(self, runway)]


@dataclass(frozen=True)
class RunwayEnd:
    """One direction of one runway: land at ``threshold`` heading ``heading_deg``, with ``length_m`` ahead."""

    airstrip: str  # ICAO
    designator: str
    heading_deg: float
    threshold: Location  # ABSOLUTE: the field's elevation
    length_m: float

    @property
    def name(self) -> str:
        return f"{self.airstrip} runway {self.designator}"

    def along(self, metres: float, height_m: float = 0.0) -> Location:
        """A point on the extended centreline: ``metres`` past the threshold (negative: before it, on the
        approach), ``height_m`` above the field."""
        bearing = self.heading_deg if metres >= 0 else (self.heading_deg + 180.0) % 360.0
        point = offset(self.threshold, bearing_deg=bearing, distance_m=abs(metres))
        return point.with_alt(self.threshold.alt_m + height_m, AltFrame.ABSOLUTE)


def runway_ends(airstrip: Airstrip, runway: Runway) -> tuple[RunwayEnd, RunwayEnd]:
    centre = runway.centre.location(airstrip.elevation_m, AltFrame.ABSOLUTE)
    first, second = runway.designators.split("/")
    half = runway.length_m / 2
    ends = []
    for designator, heading in ((first, runway.true_bearing_deg), (second, (runway.true_bearing_deg + 180) % 360)):
        threshold = offset(centre, bearing_deg=(heading + 180) % 360, distance_m=half)
        ends.append(RunwayEnd(airstrip.icao, designator, heading, threshold, runway.length_m))
    return ends[0], ends[1]


def _angle_between(a_deg: float, b_deg: float) -> float:
    return abs((a_deg - b_deg + 180.0) % 360.0 - 180.0)
