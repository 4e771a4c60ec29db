"""Positions with an explicit altitude frame, and geodesy on the WGS84 ellipsoid (geographiclib).

An altitude without a frame is a bug waiting for a hillside: ``Location`` always carries one, and
code that needs a particular frame says so (``require_frame``) instead of assuming.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from geographiclib.geodesic import Geodesic

_WGS84 = Geodesic.WGS84


class AltFrame(enum.Enum):
    """What an altitude is measured from. Values are the MAVLink MAV_FRAME *_INT numbers."""

    ABSOLUTE = 5  # MAV_FRAME_GLOBAL_INT: metres above mean sea level
    RELATIVE = 6  # MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: metres above home
    TERRAIN = 11  # MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: metres above the terrain below


@dataclass(frozen=True, slots=True)
class Location:
    lat_deg: float
    lon_deg: float
    alt_m: float
    frame: AltFrame

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise ValueError(f"latitude {self.lat_deg} is outside -90..90")
        if not -180.0 <= self.lon_deg <= 180.0:
            raise ValueError(f"longitude {self.lon_deg} is outside -180..180")

    @property
    def lat_e7(self) -> int:
        return round(self.lat_deg * 1e7)

    @property
    def lon_e7(self) -> int:
        return round(self.lon_deg * 1e7)

    def require_frame(self, frame: AltFrame) -> Location:
        if self.frame is not frame:
            raise ValueError(f"altitude is {self.frame.name}, {frame.name} was required")
        return self

    def with_alt(self, alt_m: float, frame: AltFrame) -> Location:
        return Location(self.lat_deg, self.lon_deg, alt_m, frame)

    def __str__(self) -> str:
        return f"{self.lat_deg:.7f},{self.lon_deg:.7f} {self.alt_m:.1f} m {self.frame.name.lower()}"


def distance_m(a: Location, b: Location) -> float:
    """Ground distance along the ellipsoid, ignoring altitude."""
    return float(_WGS84.Inverse(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg, Geodesic.DISTANCE)["s12"])


def bearing_deg(a: Location, b: Location) -> float:
    """Initial bearing from a to b, 0..360 clockwise from true north."""
    azimuth = _WGS84.Inverse(a.lat_deg, a.lon_deg, b.lat_deg, b.lon_deg, Geodesic.AZIMUTH)["azi1"]
    return float(azimuth) % 360.0


def offset(origin: Location, *, bearing_deg: float, distance_m: float) -> Location:
    """The point ``distance_m`` from ``origin`` on ``bearing_deg``; altitude and frame kept."""
    result = _WGS84.Direct(origin.lat_deg, origin.lon_deg, bearing_deg, distance_m)
    return Location(float(result["lat2"]), float(result["lon2"]), origin.alt_m, origin.frame)


def offset_m_ne(lat0_deg: float, lon0_deg: float, lat1_deg: float, lon1_deg: float) -> tuple[float, float]:
    """How far (north, east) in metres the second point lies from the first."""
    result = _WGS84.Inverse(lat0_deg, lon0_deg, lat1_deg, lon1_deg, Geodesic.DISTANCE | Geodesic.AZIMUTH)
    azimuth = math.radians(result["azi1"])
    return result["s12"] * math.cos(azimuth), result["s12"] * math.sin(azimuth)
