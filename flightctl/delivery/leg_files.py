"""An island leg and its three airstrips, read from their files: for the CLI, which names one leg, and for the
daemon, which is configured with the legs its aircraft flies and is ordered by their names.

A leg names its airstrips by a shipped name (configs/airstrips/) or by a file beside the leg; a mistake in any
of them is a ``ConfigError`` naming the file, raised where the leg is loaded (for the daemon, at start-up).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flightctl.config import beside, named_config, names_a_file, read_yaml_model
from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.leg_planner import AirstripsOfLeg, plan_leg
from flightctl.delivery.legs import Leg
from flightctl.delivery.order import VehicleProfile
from flightctl.delivery.runway_choice import CALM
from flightctl.errors import ConfigError


@dataclass(frozen=True)
class LegSite:
    """A leg as an order names it (``key``: its file's name without .yaml), with its airstrips resolved."""

    key: str
    leg: Leg
    airstrips: AirstripsOfLeg


def load_leg(name_or_path: str) -> LegSite:
    """``kirkwall-north-ronaldsay`` (shipped) or ``my/leg.yaml``, with its three airstrips."""
    path = named_config("legs", name_or_path)
    leg = read_yaml_model(path, Leg)

    def strip(named: str) -> Airstrip:
        where = beside(path, Path(named)) if names_a_file(named) else named_config("airstrips", named)
        return read_yaml_model(where, Airstrip)

    airstrips = AirstripsOfLeg(strip(leg.origin), strip(leg.destination), strip(leg.alternate))
    return LegSite(path.stem, leg, airstrips)


def load_legs(names: Iterable[str]) -> dict[str, LegSite]:
    """Each leg by its key; two files with one key would make an order ambiguous, and are refused."""
    legs: dict[str, LegSite] = {}
    for name in names:
        site = load_leg(name)
        if site.key in legs:
            raise ConfigError(f"legs: two legs are named {site.key!r} (an order names a leg by its file's name)")
        legs[site.key] = site
    return legs


def check_flyable(legs: dict[str, LegSite], profile: VehicleProfile) -> None:
    """``ConfigError`` naming the leg when ``profile`` cannot fly one of ``legs`` even in calm air (a multirotor,
    a runway too short for its take-off run or landing)."""
    for key, site in legs.items():
        strips = site.airstrips
        calm = {strip.icao: CALM for strip in (strips.origin, strips.destination, strips.alternate)}
        try:
            plan_leg(site.leg, strips, profile, calm)
        except ConfigError as exc:
            raise ConfigError(f"legs: {key}: {exc}") from None
