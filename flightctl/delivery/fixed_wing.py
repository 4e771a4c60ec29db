"""What a profile says about an aircraft that flies on a wing: how it takes off, climbs, lands and stops.

Figures for ArduPlane's SITL ``plane`` model are in configs/profiles/sitl-plane.yaml; a real airframe takes its
own from its flight manual and flight logs.
"""

from __future__ import annotations

from pydantic import Field

from flightctl.config import StrictModel


class FixedWingSettings(StrictModel):
    takeoff_pitch_deg: float = Field(default=15, gt=0, le=30, description="NAV_TAKEOFF's minimum pitch")
    takeoff_run_m: float = Field(gt=0, description="ground run to lift-off, still air, at maximum weight")
    climb_gradient: float = Field(gt=0, lt=0.5, description="height gained per metre flown, the worst case")
    climb_out_height_m: float = Field(default=60, gt=0, description="straight ahead until this, then turn")
    glide_slope_deg: float = Field(default=4.0, ge=2, le=10, description="the final approach")
    landing_distance_m: float = Field(gt=0, description="from the threshold to a stop, still air")
    land_flare_s: float = Field(default=3.0, gt=0, le=10, description="LAND_FLARE_SEC")
    land_pitch_deg: float = Field(default=1.0, ge=-5, le=15, description="LAND_PITCH_DEG")
    max_crosswind_m_s: float = Field(gt=0)
    max_tailwind_m_s: float = Field(default=0.0, ge=0)
    max_bank_deg: float = Field(default=30, gt=0, le=60, description="turns the aircraft flies in cruise")
    turnaround_min_s: float = Field(default=300, ge=0, description="on the ground between legs, at least")
