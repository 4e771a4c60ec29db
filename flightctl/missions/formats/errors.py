"""Errors and number handling shared by the mission file formats."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flightctl.errors import ConfigError
from flightctl.missions.model import MissionItem


class MissionFileError(ConfigError):
    """A mission file could not be read. Says which file, where in it, and why; nothing was uploaded."""

    def __init__(self, path: Path | str, where: str, reason: str) -> None:
        self.path, self.where, self.reason = str(path), where, reason
        super().__init__(f"{path}: {where}: {reason}" if where else f"{path}: {reason}")


def degrees_to_e7(value: object) -> int:
    """Degrees (text or number) to the 1e7 integer, rounding the way a decimal reader would."""
    try:
        degrees = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number of degrees") from None
    if not degrees.is_finite():
        raise ValueError(f"{value!r} is not a finite number of degrees")
    if degrees.adjusted() >= 3 or abs(degrees) > 360:  # adjusted() first: no context overflow on 1e30055940
        raise ValueError(f"{value!r} is not a latitude or longitude (degrees beyond 360)")
    return int((degrees * 10_000_000).to_integral_value())


def e7_to_degrees_text(value: int) -> str:
    """The exact decimal text of a 1e7 integer (no binary float in between), e.g. -29609000 -> '-2.9609000'."""
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10_000_000)
    return f"{sign}{whole}.{fraction:07d}"


def number(value: object) -> float:
    """A parameter value; ``None``/'nan' mean "no value" (NaN on the wire)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):  # JSON/YAML true/false: content error, reported like any other
        raise ValueError(f"{value!r} is not a number")  # noqa: TRY004
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None


def whole_number(value: object, what: str, *, lowest: int | None = None, highest: int | None = None) -> int:
    result = number(value)
    if math.isnan(result) or math.isinf(result):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    if (lowest is not None and result < lowest) or (highest is not None and result > highest):
        raise ValueError(f"{what} {value!r} is outside {lowest}..{highest}")
    if not result.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(result)


FLOAT32_MAX = 3.4028234663852886e38


def check_item_fits(item: MissionItem, where: str) -> None:
    """What MISSION_ITEM_INT can carry: a float32 in each param and z, an int32 in x and y, and for items
    with a position a latitude and longitude on the Earth. ``ValueError`` naming the field otherwise."""
    for name in ("param1", "param2", "param3", "param4", "z"):
        value = getattr(item, name)
        if math.isinf(value) or abs(value) > FLOAT32_MAX:
            raise ValueError(f"{where}: {name} {value!r} does not fit the float32 MAVLink carries")
    if item.has_location and (item.x, item.y) != (0, 0):
        if not -900_000_000 <= item.x <= 900_000_000:
            raise ValueError(f"{where}: latitude {item.x / 1e7:g} is outside -90..90")
        if not -1_800_000_000 <= item.y <= 1_800_000_000:
            raise ValueError(f"{where}: longitude {item.y / 1e7:g} is outside -180..180")
    for name in ("x", "y"):
        if not -(2**31) <= getattr(item, name) < 2**31:
            raise ValueError(f"{where}: {name} {getattr(item, name)} does not fit the int32 MAVLink carries")
