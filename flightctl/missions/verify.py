"""Verification: what a plan will look like once ArduPilot has stored it, and where a read-back differs.

Pure data, beside the storage model it relies on (``missions.ardupilot``): the upload's I/O reads the lists
back and hands them here.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.errors import Refused
from flightctl.missions.ardupilot import Firmware, describe_difference, stored_form
from flightctl.missions.model import MissionPlan, MissionType


@dataclass(frozen=True)
class Mismatch:
    mission_type: MissionType
    seq: int
    detail: str


class MissionVerifyError(Refused):
    """What the vehicle holds is not what we planned."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        self.mismatches = mismatches
        lines = [f"{m.mission_type.label} item {m.seq}: {m.detail}" for m in mismatches[:10]]
        more = f" (and {len(mismatches) - 10} more)" if len(mismatches) > 10 else ""
        super().__init__("vehicle holds a different plan: " + "; ".join(lines) + more)


def expected_on_vehicle(plan: MissionPlan, firmware: Firmware) -> MissionPlan:
    """Each item as ArduPilot will store and return it (home kept as planned: the vehicle owns it)."""
    expected = MissionPlan(name=plan.name)
    for mission_type in MissionType:
        items = plan.items(mission_type)
        stored = [
            item
            if (mission_type is MissionType.MISSION and seq == 0)
            else stored_form(item, seq, mission_type, firmware)
            for seq, item in enumerate(items)
        ]
        expected = expected.with_items(mission_type, stored)
    return expected


def compare_plans(expected: MissionPlan, actual: MissionPlan, types: list[MissionType]) -> list[Mismatch]:
    mismatches: list[Mismatch] = []
    for mission_type in types:
        want, got = expected.items(mission_type), actual.items(mission_type)
        if len(want) != len(got):
            mismatches.append(Mismatch(mission_type, len(got), f"vehicle holds {len(got)} items, planned {len(want)}"))
            continue
        for seq, (planned, held) in enumerate(zip(want, got, strict=True)):
            if mission_type is MissionType.MISSION and seq == 0:
                continue  # home: the vehicle's own
            if planned.canonical() != held.canonical():
                mismatches.append(Mismatch(mission_type, seq, describe_difference(planned, held)))
    return mismatches
