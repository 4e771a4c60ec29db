"""The ground phase's decisions as data: how to arm from whatever state the last flight left, and what the
fence read-back means. No vehicle here; ``delivery.ground`` journals each step, then takes it.

A vehicle still in AUTO from the last landing does not restart its mission when asked for AUTO again
(ArduCopter's ModeAuto::init only runs on a mode change), and one that stopped mid-mission resumes where it
stopped (MIS_RESTART 0). So: leave AUTO, set the current item to the first, then enter AUTO, then arm.
"""

from __future__ import annotations

from dataclasses import dataclass

from flightctl.delivery.planner import DeliveryPlan

# Fence types ArduPilot should enforce: maximum altitude (1) and polygons (4). Not its 150 m circle (2).
FENCE_TYPE_ALT_AND_POLYGON = 5
FENCE_ACTION_RTL_OR_LAND = 1
# The mission's first real item: a new delivery always starts here, whatever the last one left current.
FIRST_ITEM = 1
# A mode every ArduPilot vehicle has that is not AUTO: leaving AUTO makes re-entering it start the mission.
NOT_AUTO = "GUIDED"


@dataclass(frozen=True)
class SetMode:
    mode: str
    reason: str | None = None


@dataclass(frozen=True)
class StartAt:
    seq: int
    reason: str


@dataclass(frozen=True)
class Arm:
    pass


ArmStep = SetMode | StartAt | Arm


def arm_steps(mode: str | None) -> list[ArmStep]:
    """The steps from a disarmed vehicle in ``mode`` to one armed in AUTO at the mission's first item."""
    leave_auto = [SetMode(NOT_AUTO, "leave AUTO so the new mission starts")] if mode == "AUTO" else []
    return [
        *leave_auto,
        StartAt(FIRST_ITEM, "start the new mission at its first item"),
        SetMode("AUTO"),
        Arm(),
    ]


def fence_values(plan: DeliveryPlan) -> dict[str, float]:
    """The fence parameters a delivery flies with: altitude and polygons enforced, RTL (or land) on a breach."""
    return {
        "FENCE_TYPE": FENCE_TYPE_ALT_AND_POLYGON,
        "FENCE_ALT_MAX": plan.site.fence_alt_max_m,
        "FENCE_ACTION": FENCE_ACTION_RTL_OR_LAND,
        "FENCE_ENABLE": 1,
    }
