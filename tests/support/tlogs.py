"""Reading a telemetry log back the way ground stations do: with pymavlink's own tlog reader."""

from __future__ import annotations

from pathlib import Path


def read_tlog(path: Path) -> list[tuple[str, float]]:
    """(message type, timestamp in s since the epoch) of every message pymavlink reads from ``path``, in order."""
    from pymavlink import mavutil

    log = mavutil.mavlink_connection(str(path), dialect="ardupilotmega")
    found = []
    try:
        while (message := log.recv_match()) is not None:
            found.append((message.get_type(), float(message._timestamp)))
    finally:
        log.close()
    return found


def tlogs_of(folder: Path, order_id: str) -> list[Path]:
    """The telemetry logs of ``order_id`` in ``folder``, oldest first (their names carry the UTC time)."""
    return sorted(folder.glob(f"{order_id}-*.tlog"))
