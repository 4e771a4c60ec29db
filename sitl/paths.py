"""Where ArduPilot's SITL build and our configs live.

SITL is built from ArduPilot's source outside this repository. We look in ``$ARDUPILOT_HOME`` (default
``~/ardupilot``) for ``build/sitl/bin/arducopter`` / ``arduplane``, and take ArduPilot's own SITL model
defaults from the same tree, so a binary and the defaults it was tested with always come together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from flightctl.config import configs_dir
from sitl.errors import SitlNotBuilt

VehicleKind = Literal["copter", "plane"]

BINARY_NAMES: dict[str, str] = {"copter": "arducopter", "plane": "arduplane"}
# ArduPilot's own defaults for its SITL models, relative to the ArduPilot tree.
_ARDUPILOT_DEFAULTS = {
    "copter": "Tools/autotest/default_params/copter.parm",
    "plane": "Tools/autotest/models/plane.parm",
}
_MODEL = {"copter": "quad", "plane": "plane"}
# SITL models other than a binary's default, with ArduPilot's own defaults for them: the QuadPlane (VTOL) is
# ArduPlane with four lift motors on outputs 5 to 8.
MODELS: dict[str, tuple[VehicleKind, str]] = {
    "quadplane": ("plane", "Tools/autotest/default_params/quadplane.parm"),
}


def ardupilot_home() -> Path:
    return Path(os.environ.get("ARDUPILOT_HOME", "~/ardupilot")).expanduser()


def sitl_binary(vehicle: VehicleKind) -> Path:
    """The SITL binary for ``vehicle``; ``SitlNotBuilt`` saying where we looked and how to fix it."""
    path = ardupilot_home() / "build" / "sitl" / "bin" / BINARY_NAMES[vehicle]
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise SitlNotBuilt(
            f"no ArduPilot SITL binary at {path}: run 'flightctl sim install' (builds it from source at the "
            f"pinned version), or point $ARDUPILOT_HOME (now {ardupilot_home()}) at a tree where it is built"
        )
    return path


def ardupilot_defaults(vehicle: VehicleKind) -> Path:
    path = ardupilot_home() / _ARDUPILOT_DEFAULTS[vehicle]
    if not path.is_file():
        raise SitlNotBuilt(f"ArduPilot's SITL defaults for {vehicle} are missing: {path}")
    return path


def sitl_model(vehicle: VehicleKind) -> str:
    return _MODEL[vehicle]


def model_defaults(model: str) -> tuple[VehicleKind, Path, Path]:
    """For a SITL model other than a binary's default (``quadplane``): the binary it runs on, ArduPilot's own
    defaults for it, and our delivery parameters for it."""
    try:
        vehicle, relative = MODELS[model]
    except KeyError:
        raise SitlNotBuilt(f"unknown SITL model {model!r}: known are {', '.join(sorted(MODELS))}") from None
    path = ardupilot_home() / relative
    if not path.is_file():
        raise SitlNotBuilt(f"ArduPilot's SITL defaults for {model} are missing: {path}")
    return vehicle, path, configs_dir() / "params" / f"{model}-delivery.parm"


def delivery_params(vehicle: VehicleKind) -> Path:
    return configs_dir() / "params" / f"{vehicle}-delivery.parm"


def ardupilot_file(relative: str) -> Path:
    """A data file from the ArduPilot tree (e.g. an autotest mission), read where SITL was built."""
    path = ardupilot_home() / relative
    if not path.is_file():
        raise SitlNotBuilt(f"ArduPilot file not found: {path}")
    return path
