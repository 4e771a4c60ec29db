"""ArduPilot flight mode names <-> custom_mode numbers, per vehicle type (pymavlink keeps the tables)."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from flightctl.errors import ModeError


@functools.cache
def mode_table(mav_type: int) -> Mapping[int, str]:
    # mavutil brings numpy (through its expression helpers): imported at the first mode named, not by every
    # command that links to a vehicle.
    from pymavlink import mavutil

    table = mavutil.mode_mapping_bynumber(mav_type)
    if table is None:
        raise ModeError(f"no flight mode table for MAV_TYPE {mav_type}")
    return {int(number): str(name) for number, name in table.items()}


def mode_number(mav_type: int, name: str) -> int:
    table = mode_table(mav_type)
    wanted = name.strip().upper()
    for number, mode_name in table.items():
        if mode_name == wanted:
            return number
    raise ModeError(f"unknown flight mode {name!r} for this vehicle; known: {', '.join(sorted(table.values()))}")


def mode_name(mav_type: int, number: int) -> str:
    try:
        table = mode_table(mav_type)
    except ModeError:
        return f"MODE({number})"
    return table.get(number, f"MODE({number})")
