"""Errors and number handling shared by the mission file formats."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flightctl.errors import ConfigError


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


def whole_number(value: object, what: str) -> int:
    result = number(value)
    if math.isnan(result) or not result.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(result)
