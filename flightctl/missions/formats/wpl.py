"""QGC WPL 110: Mission Planner's ``.waypoints`` and ArduPilot autotest's mission ``.txt`` files.

    QGC WPL 110
    <seq> <current> <frame> <command> <p1> <p2> <p3> <p4> <x/lat> <y/lon> <z/alt> <autocontinue>

Tab separated (spaces are accepted). Line 0 is home. For commands that carry a position, x/y are degrees
(kept exact to 1e-7 through decimal arithmetic); for the others they are the raw integers.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from flightctl.missions.formats.errors import (
    MissionFileError,
    check_item_fits,
    degrees_to_e7,
    e7_to_degrees_text,
    number,
    whole_number,
)
from flightctl.missions.model import MissionItem, MissionPlan

log = logging.getLogger(__name__)

HEADER = "QGC WPL 110"


# MISSION_COUNT carries a uint16: no autopilot can be given more items than this.
MAX_ITEMS = 65_535


def parse_wpl(text: str, path: Path | str = "<text>") -> MissionPlan:
    """Items in file order. Gaps in the sequence column are renumbered, with a warning naming the lines, as
    ArduPilot's own tools (pymavlink's loader, MAVProxy) load such files; a repeated or decreasing sequence
    number is refused, since then the file's order and its numbers disagree about the mission."""
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or lines[0].strip() != HEADER:
        first = lines[0].strip() if lines else "an empty file"
        raise MissionFileError(path, "line 1", f"expected the header {HEADER!r}, found {first!r}")
    items: list[MissionItem] = []
    renumbered: list[str] = []
    last_seq = -1
    for line_number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split()
        where = f"line {line_number}"
        if len(fields) != 12:
            raise MissionFileError(path, where, f"expected 12 columns, found {len(fields)}")
        try:
            seq = whole_number(fields[0], "the sequence number")
            item = _item(fields)
            check_item_fits(item, f"item {seq}")
        except ValueError as exc:
            raise MissionFileError(path, where, str(exc)) from None
        if seq <= last_seq:
            raise MissionFileError(path, where, f"sequence number {seq} after {last_seq}: repeated or out of order")
        if seq != len(items):
            renumbered.append(f"line {line_number} ({seq} -> {len(items)})")
        if len(items) >= MAX_ITEMS:
            raise MissionFileError(path, where, f"more than {MAX_ITEMS} items: no autopilot can hold this mission")
        last_seq = seq
        items.append(item)
    if renumbered:
        shown = ", ".join(renumbered[:5]) + (f" and {len(renumbered) - 5} more" if len(renumbered) > 5 else "")
        log.warning("%s: gaps in the sequence numbers; items renumbered in file order: %s", path, shown)
    if not items:
        raise MissionFileError(path, "", "no mission items (not even home)")
    return MissionPlan(mission=items, name=Path(str(path)).stem)


def _item(fields: list[str]) -> MissionItem:
    command = whole_number(fields[3], "the command", lowest=0, highest=65_535)
    located = MissionItem(command).has_location
    return MissionItem(
        command=command,
        frame=whole_number(fields[2], "the frame"),
        param1=number(fields[4]),
        param2=number(fields[5]),
        param3=number(fields[6]),
        param4=number(fields[7]),
        x=degrees_to_e7(fields[8]) if located else whole_number(fields[8], "x"),
        y=degrees_to_e7(fields[9]) if located else whole_number(fields[9], "y"),
        z=number(fields[10]),
        autocontinue=bool(whole_number(fields[11], "autocontinue")),
    )


def _number_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return repr(float(value))


def format_wpl(plan: MissionPlan) -> str:
    lines = [HEADER]
    for seq, item in enumerate(plan.mission):
        if item.has_location:
            x, y = e7_to_degrees_text(item.x), e7_to_degrees_text(item.y)
        else:
            x, y = str(item.x), str(item.y)
        fields = [
            str(seq),
            "1" if seq == 0 else "0",
            str(item.frame),
            str(item.command),
            *(_number_text(value) for value in item.params),
            x,
            y,
            _number_text(item.z),
            str(int(item.autocontinue)),
        ]
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"
