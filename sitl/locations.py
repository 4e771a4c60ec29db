"""Named SITL homes (configs/locations.toml) and the ``LAT,LON,ALT,HDG`` form SITL takes."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from flightctl.config import configs_dir, read_toml, validation_problems
from flightctl.errors import ConfigError
from flightctl.geo import AltFrame, Location


class Home(BaseModel, frozen=True):
    description: str = ""
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    alt_m: float
    heading_deg: float = Field(default=0.0, ge=0, lt=360)

    def sitl_arg(self) -> str:
        return f"{self.lat_deg},{self.lon_deg},{self.alt_m},{self.heading_deg}"

    def location(self) -> Location:
        return Location(self.lat_deg, self.lon_deg, self.alt_m, AltFrame.ABSOLUTE)


def load_locations(path: Path | None = None) -> dict[str, Home]:
    path = path or configs_dir() / "locations.toml"
    raw = read_toml(path)
    homes: dict[str, Home] = {}
    for name, fields in raw.items():
        try:
            homes[name] = Home.model_validate(fields)
        except ValidationError as exc:
            raise ConfigError(f"{path}: [{name}]: {exc}") from exc
    return homes


def resolve_home(text: str, locations: dict[str, Home] | None = None) -> Home:
    """A location name from configs/locations.toml, or ``LAT,LON,ALT[,HDG]``."""
    if "," in text:
        parts = text.split(",")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (3, 4):
            raise ConfigError(f"home {text!r}: expected LAT,LON,ALT[,HDG] in degrees and metres")
        try:
            return Home(
                lat_deg=numbers[0],
                lon_deg=numbers[1],
                alt_m=numbers[2],
                heading_deg=numbers[3] if len(numbers) == 4 else 0.0,
            )
        except ValidationError as exc:
            raise ConfigError(f"home {text!r}: {validation_problems(exc)}") from None
    locations = load_locations() if locations is None else locations
    try:
        return locations[text.lower()]
    except KeyError:
        raise ConfigError(f"unknown home {text!r}; known: {', '.join(sorted(locations))}") from None
