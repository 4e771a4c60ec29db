"""Configuration files (configs/) loaded into typed objects. Only the edges (CLI, harness) call this:
the core takes the typed objects and never reads files or the environment itself."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator

from flightctl.dialect import message_id
from flightctl.errors import ConfigError


def configs_dir() -> Path:
    """The repository's configs/ folder (``$FLIGHTCTL_CONFIGS`` overrides it)."""
    override = os.environ.get("FLIGHTCTL_CONFIGS")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "configs"


def read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


class TelemetryConfig(BaseModel, frozen=True):
    rates_hz: dict[str, float] = Field(default_factory=dict)

    @field_validator("rates_hz")
    @classmethod
    def _known_messages(cls, rates: dict[str, float]) -> dict[str, float]:
        for name, rate in rates.items():
            try:
                message_id(name)
            except KeyError:
                raise ValueError(f"{name} is not a MAVLink message") from None
            if not 0 <= rate <= 50:
                raise ValueError(f"{name}: rate {rate} Hz is outside 0..50")
        return rates


def load_telemetry_config(path: Path | None = None) -> TelemetryConfig:
    path = path or configs_dir() / "telemetry.toml"
    try:
        return TelemetryConfig.model_validate(read_toml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
