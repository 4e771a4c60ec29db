"""Configuration files (configs/) loaded into typed objects. Only the edges (CLI, harness) call this:
the core takes the typed objects and never reads files or the environment itself."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TypeVar

import yaml
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


M = TypeVar("M", bound=BaseModel)


def read_yaml_model(path: Path, model: type[M], *, max_bytes: int | None = None) -> M:
    """A YAML file validated into ``model``; ``ConfigError`` naming the file, the field and the problem. With
    ``max_bytes``, a larger file is refused before it is read (an 8 MB "order" once took a gigabyte to parse)."""
    try:
        if max_bytes is not None and (size := path.stat().st_size) > max_bytes:
            raise ConfigError(f"{path}: {size} bytes, over the limit of {max_bytes} for this kind of file")
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None


def validation_problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``field.sub: what is wrong; ...`` (no dump, no documentation URL)."""
    return "; ".join(validation_problem_list(exc))


def validation_problem_list(exc: ValidationError, prefix: str = "") -> list[str]:
    """Each of pydantic's errors as ``prefix + field.sub: what is wrong``."""
    return [
        f"{prefix}{'.'.join(str(part) for part in error['loc']) or '(value)'}: {error['msg']}" for error in exc.errors()
    ]


def named_config(kind: str, name_or_path: str) -> Path:
    """``kirkwall`` -> configs/<kind>/kirkwall.yaml; a path is taken as it is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return configs_dir() / kind / f"{name_or_path}.yaml"


def load_telemetry_config(path: Path | None = None) -> TelemetryConfig:
    path = path or configs_dir() / "telemetry.toml"
    try:
        return TelemetryConfig.model_validate(read_toml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
