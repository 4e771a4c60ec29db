"""Which runway the wind calls for: the most headwind, with the crosswind and tailwind inside the limits.

Pure arithmetic on a measured surface wind. Every runway direction is assessed, usable or not, so a refusal
can say for each one what was wrong with it, in numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field, ValidationError, field_validator

from flightctl.config import StrictModel, validation_problems
from flightctl.delivery.airstrips import Airstrip, RunwayEnd
from flightctl.errors import ConfigError


class SurfaceWind(StrictModel):
    """The wind measured at an airstrip: where it blows from (degrees true), how hard (mean, and gusts), and
    when it was measured (go/no-go refuses an old one; a forecast aloft has no such time)."""

    from_deg: float = Field(ge=0, le=360)
    speed_m_s: float = Field(ge=0, le=100)
    gust_m_s: float | None = Field(default=None, ge=0, le=120)
    measured_at: datetime | None = None

    @field_validator("measured_at")
    @classmethod
    def _zoned(cls, when: datetime | None) -> datetime | None:
        if when is not None and when.tzinfo is None:
            raise ValueError("give the time with its zone (e.g. Z)")
        return when

    @classmethod
    def parse(cls, text: str) -> SurfaceWind:
        """``FROM/SPEED`` or ``FROM/SPEEDgGUST``, optionally ``@ISO-TIME``: ``210/10``, ``120/8g14@2026-12-01T09:40Z``
        (degrees true the wind blows from, metres per second)."""
        example = "(e.g. 210/10 or 120/8g14@2026-12-01T09:40Z)"
        body, at, when = text.partition("@")
        direction, slash, speeds = body.partition("/")
        speed, g, gust = speeds.lower().partition("g")
        if not slash or not direction or not speed or (g and not gust) or (at and not when):
            raise ConfigError(f"wind {text!r}: expected FROM/SPEED[gGUST][@TIME] {example}")
        try:
            return cls(
                from_deg=float(direction),
                speed_m_s=float(speed),
                gust_m_s=float(gust) if gust else None,
                measured_at=datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None,
            )
        except (ValueError, ValidationError) as exc:
            problem = validation_problems(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ConfigError(f"wind {text!r}: {problem} {example}") from None

    @property
    def design_speed_m_s(self) -> float:
        """What the limits are judged against: the gusts when they were measured."""
        return max(self.speed_m_s, self.gust_m_s or 0.0)

    def text(self) -> str:
        gust = f" gusting {self.gust_m_s:g}" if self.gust_m_s else ""
        return f"{self.from_deg:03.0f} deg at {self.speed_m_s:g}{gust} m/s"


CALM = SurfaceWind(from_deg=0, speed_m_s=0)


@dataclass(frozen=True)
class RunwayLimits:
    max_crosswind_m_s: float
    max_tailwind_m_s: float
    needed_length_m: float  # the runway the aircraft needs (to stop on, or to lift off from)


@dataclass(frozen=True)
class RunwayAssessment:
    end: RunwayEnd
    headwind_m_s: float  # negative: a tailwind
    crosswind_m_s: float  # magnitude
    problems: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return not self.problems

    def line(self) -> str:
        figures = f"headwind {self.headwind_m_s:+.1f} m/s, crosswind {self.crosswind_m_s:.1f} m/s"
        verdict = "usable" if self.usable else "; ".join(self.problems)
        return f"{self.end.name} ({self.end.heading_deg:03.0f} deg): {figures}: {verdict}"


class NoUsableRunway(ConfigError):
    """No runway direction at an airstrip is inside the limits for the wind: a NO-GO, or a diversion."""

    def __init__(self, airstrip: Airstrip, wind: SurfaceWind, assessments: Sequence[RunwayAssessment]) -> None:
        self.airstrip = airstrip
        self.wind = wind
        self.assessments = tuple(assessments)
        lines = "; ".join(assessment.line() for assessment in assessments)
        super().__init__(f"no usable runway at {airstrip.name} ({airstrip.icao}) for wind {wind.text()}: {lines}")


def wind_components(heading_deg: float, wind: SurfaceWind) -> tuple[float, float]:
    """(headwind, crosswind) on a runway heading ``heading_deg``: headwind negative for a tailwind, crosswind
    as a magnitude, both from the gusts when there are any."""
    angle = math.radians(wind.from_deg - heading_deg)
    speed = wind.design_speed_m_s
    return speed * math.cos(angle), abs(speed * math.sin(angle))


def assess(airstrip: Airstrip, wind: SurfaceWind, limits: RunwayLimits) -> list[RunwayAssessment]:
    max_crosswind = min(limits.max_crosswind_m_s, airstrip.max_crosswind_m_s or math.inf)
    assessments = []
    for end in airstrip.ends():
        headwind, crosswind = wind_components(end.heading_deg, wind)
        problems = []
        if crosswind > max_crosswind + 1e-9:
            problems.append(f"crosswind {crosswind:.1f} m/s over the limit of {max_crosswind:g} m/s")
        if -headwind > limits.max_tailwind_m_s + 1e-9:
            problems.append(f"tailwind {-headwind:.1f} m/s over the limit of {limits.max_tailwind_m_s:g} m/s")
        if end.length_m < limits.needed_length_m:
            problems.append(f"{end.length_m:.0f} m long, the aircraft needs {limits.needed_length_m:.0f} m")
        assessments.append(RunwayAssessment(end, round(headwind, 3), round(crosswind, 3), tuple(problems)))
    return assessments


def usable_runways(airstrip: Airstrip, wind: SurfaceWind, limits: RunwayLimits) -> list[RunwayAssessment]:
    """Every usable direction, best first: the most headwind, then the longest."""
    usable = [assessment for assessment in assess(airstrip, wind, limits) if assessment.usable]
    return sorted(usable, key=lambda a: (-a.headwind_m_s, -a.end.length_m))


def choose_runway(airstrip: Airstrip, wind: SurfaceWind, limits: RunwayLimits) -> RunwayAssessment:
    """The best usable direction; ``NoUsableRunway`` with every direction's numbers when there is none."""
    ranked = usable_runways(airstrip, wind, limits)
    if not ranked:
        raise NoUsableRunway(airstrip, wind, assess(airstrip, wind, limits))
    return ranked[0]
