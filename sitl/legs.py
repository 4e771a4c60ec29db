"""Island legs in SITL's world: what differs from the real one, said once.

SITL's earth is flat at the height of its home (there is no terrain without SRTM tiles, and CI has no route
to fetch them), so an airstrip 6 m lower than the departure field would be 6 m under SITL's ground and the
aircraft would meet it before its flare. Flown in SITL, every airstrip of a leg is at the departure field's
elevation; everything else (positions, runways, approaches) is the real site data.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.leg_files import load_leg
from flightctl.delivery.leg_planner import AirstripsOfLeg, LegPlan
from sitl.locations import Home


def flat_world(airstrips: AirstripsOfLeg) -> AirstripsOfLeg:
    field = airstrips.origin.elevation_m

    def level(strip: Airstrip) -> Airstrip:
        return strip.model_copy(update={"elevation_m": field})

    return AirstripsOfLeg(level(airstrips.origin), level(airstrips.destination), level(airstrips.alternate))


def lined_up(plan: LegPlan) -> Home:
    """SITL's home for a leg: on the departure threshold, pointing down the runway (ArduPlane takes off along
    the heading it has)."""
    end = plan.departure.end
    return Home(
        description=f"{end.name}, lined up",
        lat_deg=end.threshold.lat_deg,
        lon_deg=end.threshold.lon_deg,
        alt_m=end.threshold.alt_m,
        heading_deg=end.heading_deg % 360.0,
    )


def write_flat_leg(folder: Path, name: str) -> Path:
    """Leg ``name`` as SITL flies it, written as files a daemon's config can list: the leg, and beside it its
    three airstrips in the flat world. Its path, named as the shipped leg (an order names it so)."""
    site = load_leg(name)
    strips = flat_world(site.airstrips)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for role, strip in (
        ("origin", strips.origin),
        ("destination", strips.destination),
        ("alternate", strips.alternate),
    ):
        files[role] = f"{site.key}.{strip.icao.lower()}.yaml"  # a leg flat at its own origin's height
        (folder / files[role]).write_text(yaml.safe_dump(strip.model_dump(mode="json", exclude_none=True)))
    path = folder / f"{site.key}.yaml"
    leg = site.leg.model_copy(update=files)
    path.write_text(yaml.safe_dump(leg.model_dump(mode="json", exclude_none=True)))
    return path
