"""Writing a file so that whoever reads it (mosquitto, a mission tool, a person) sees the old one or the new one,
never half of either."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(
    path: Path, text: str, *, mode: int | None = None, before_replace: Callable[[Path], None] = lambda _path: None
) -> None:
    """Write ``text`` beside ``path``, flush it to the disk, then rename it over ``path``. A failure leaves the old
    file as it was and no partial one. ``mode``: the new file's exact permissions (default: as the umask says);
    ``before_replace`` runs on the finished partial file (to hand it to another group, say)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(partial, mode)  # O_CREAT's mode passes through the umask; the caller asked for exactly this
        before_replace(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
