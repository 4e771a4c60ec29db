"""Configuration files (configs/) loaded into typed objects. Only the edges (CLI, harness) call this:
the core takes the typed objects and never reads files or the environment itself.

One format per kind of file, and why:
- services (the onboard daemon, the relay) and tables of settings (telemetry rates, SITL homes) are TOML: flat
  sections of typed keys, read by the standard library, with none of YAML's surprises (``no`` as false, a
  Norwegian airstrip code as a boolean) in a file an operator edits on an aircraft;
- documents (orders, sites, profiles) are YAML: nested lists of points and legs that people write and tools
  generate, with comments;
- mosquitto, nginx and systemd files are in their own formats, as those programs read them.
Relative paths inside a config file are relative to that file, never to the working directory.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, TypeVar, overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from flightctl.errors import ConfigError

# The shipped configs are package data (flightctl/configs/, with a configs/ link at the checkout's top for
# people), so a plain `pip install .` finds its sites, profiles and parameter files from any directory.
SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


def configs_dir() -> Path:
    """The configs shipped with flightctl: sites, profiles, orders, parameter files, telemetry rates, services."""
    return SHIPPED_CONFIGS


class StrictModel(BaseModel):
    """The base of every model read from outside (a file, a message): unknown keys are refused, nothing is
    changed after validation, and NaN or infinity is never a mass, a distance or a limit."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone this machine knows (e.g. Europe/London)") from None
    return name


# An IANA time zone's name, checked against this machine's zone database when the config is read.
TimeZoneName = Annotated[str, AfterValidator(_known_time_zone)]


def read_secret(path: Path, key: str) -> str:
    """A secret (password) from a file readable only by its owner, stripped of its newline; ``key`` names where
    the file was given (``broker.password_file``, ``--password-file``) in the error."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: {exc}") from None


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
        from flightctl.dialect import message_id  # here, not at import: the CLI's start-up stays free of pymavlink

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


@overload
def beside(config_file: Path, path: Path) -> Path: ...
@overload
def beside(config_file: Path, path: None) -> None: ...
@overload
def beside(config_file: Path, path: Path | None) -> Path | None: ...


def beside(config_file: Path, path: Path | None) -> Path | None:
    """``path`` as named in ``config_file``: a relative one is relative to the config's folder, not to wherever
    the program was started (a systemd unit and an engineer's shell start it in different places)."""
    if path is None or path.is_absolute():
        return path
    return config_file.parent / path


def names_a_file(name_or_path: str) -> bool:
    """Whether a site, profile or order given by a user is a file (``my/site.yaml``) rather than the name of a
    shipped one (``kirkwall``)."""
    return Path(name_or_path).suffix in (".yaml", ".yml") or "/" in name_or_path


def named_config(kind: str, name_or_path: str) -> Path:
    """``kirkwall`` -> the shipped configs/<kind>/kirkwall.yaml; a file is taken as it is (a config file that
    names one has already resolved it against its own folder)."""
    candidate = Path(name_or_path)
    if names_a_file(name_or_path) or candidate.exists():
        return candidate
    return configs_dir() / kind / f"{name_or_path}.yaml"


def load_telemetry_config(path: Path | None = None) -> TelemetryConfig:
    path = path or configs_dir() / "telemetry.toml"
    try:
        return TelemetryConfig.model_validate(read_toml(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problems(exc)}") from None
