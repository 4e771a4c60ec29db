"""Mission files, chosen by extension: ``.waypoints``/``.txt`` (QGC WPL 110), ``.plan`` (QGroundControl),
``.yaml``/``.yml`` (ours). Reading a file either gives a whole plan or raises ``MissionFileError``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from flightctl.errors import ConfigError
from flightctl.files import write_atomically
from flightctl.missions.formats.errors import MissionFileError, check_item_fits
from flightctl.missions.model import MissionPlan, MissionType

__all__ = [
    "MissionFileError",
    "check_destination",
    "check_writable_format",
    "format_plan",
    "load_plan",
    "parse_plan",
    "save_plan",
]

# Each format is imported when a file of its kind is read or written: the YAML format brings pydantic and the
# .plan format shapely (with numpy), a third of a second that `flightctl mission upload x.waypoints` need not pay.
_WPL = frozenset({".waypoints", ".txt"})
_QGC = frozenset({".plan"})
_YAML = frozenset({".yaml", ".yml"})
_KNOWN = ", ".join(sorted(_WPL | _QGC | _YAML))


def _parser(suffix: str) -> Callable[[str, Path | str], MissionPlan]:
    if suffix in _WPL:
        from flightctl.missions.formats.wpl import parse_wpl

        return parse_wpl
    if suffix in _QGC:
        from flightctl.missions.formats.qgc import parse_qgc_plan

        return parse_qgc_plan
    from flightctl.missions.formats.yaml_plan import parse_yaml_plan

    return parse_yaml_plan


def _formatter(suffix: str) -> Callable[[MissionPlan], str]:
    if suffix in _WPL:
        from flightctl.missions.formats.wpl import format_wpl

        return format_wpl
    if suffix in _QGC:
        from flightctl.missions.formats.qgc import format_qgc_plan

        return format_qgc_plan
    from flightctl.missions.formats.yaml_plan import format_yaml_plan

    return format_yaml_plan


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _WPL | _QGC | _YAML:
        raise MissionFileError(path, "", f"unknown mission file type {suffix or '(none)'!r}; use one of {_KNOWN}")
    return suffix


def check_writable_format(path: Path, types: list[MissionType]) -> None:
    """Refuse, before any work, a file type that cannot hold what would be written to it."""
    suffix = _suffix(path)
    if suffix in _WPL and any(t is not MissionType.MISSION for t in types):
        raise MissionFileError(path, "", "a WPL file holds only the mission; use .plan or .yaml, or --type mission")


def parse_plan(text: str, path: Path) -> MissionPlan:
    return _checked(_parser(_suffix(path))(text, path), path)


def _checked(plan: MissionPlan, path: Path) -> MissionPlan:
    """Every item of every list fits what MAVLink carries: refused here, naming it, not as a crash at upload."""
    for mission_type in MissionType:
        for seq, item in enumerate(plan.items(mission_type)):
            try:
                check_item_fits(item, f"{mission_type.label} item {seq}")
            except ValueError as exc:
                raise MissionFileError(path, "", str(exc)) from None
    return plan


# No autopilot holds more than MISSION_COUNT's uint16 of items; a mission file that could hold more is
# refused before it is read (a WPL line takes at most about 200 bytes, a .plan item about 400).
MAX_MISSION_FILE_BYTES = 32 * 1024 * 1024


def load_plan(path: Path) -> MissionPlan:
    suffix = _suffix(path)
    try:
        size = path.stat().st_size
        if size > MAX_MISSION_FILE_BYTES:
            raise MissionFileError(
                path, "", f"{size / 2**20:.0f} MiB is more than any autopilot's mission could fill (limit 32 MiB)"
            )
        # utf-8-sig: a byte-order mark (as some Windows editors write) is not part of the first line.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MissionFileError(path, "", f"cannot read: {exc}") from None
    return _checked(_parser(suffix)(text, path), path)


def format_plan(plan: MissionPlan, path: Path) -> str:
    suffix = _suffix(path)
    if suffix in _WPL and (plan.fence or plan.rally):
        raise ConfigError(
            f"{path}: a WPL file holds only the mission; the fence and rally points would be lost. Use .plan or .yaml"
        )
    return _formatter(suffix)(plan)


def check_destination(path: Path, types: list[MissionType]) -> None:
    """Before a download: the file type can hold the lists, and the file can be written there."""
    if path.is_dir():
        raise MissionFileError(path, "", "is a directory; name a file to write")
    check_writable_format(path, types)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MissionFileError(path, "", f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise MissionFileError(path, "", "cannot be written here (permission denied)")


def save_plan(plan: MissionPlan, path: Path) -> None:
    """Write atomically: a reader never sees half a file, and a failed write leaves the old file (and no
    temporary one). ``MissionFileError`` saying why when it cannot be written."""
    text = format_plan(plan, path)
    try:
        write_atomically(path, text)
    except OSError as exc:
        raise MissionFileError(path, "", f"cannot write: {exc.strerror or exc}") from None
