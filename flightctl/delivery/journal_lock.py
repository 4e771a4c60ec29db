"""One owner per journal: two processes writing one journal (two daemons started on one aircraft, a `deliver` run
beside the daemon) would each fly and publish as if alone, and knock each other off the broker.

The owner holds an exclusive ``flock`` on ``<journal>.lock``, which the kernel releases when the process ends by
any path (exit, crash, SIGKILL, power loss): a lock never outlives its owner, and no stale lock needs clearing by
hand. The file holds the owner's process id, so the one refused can say who holds it. ``flock`` locks are
separate from the POSIX locks SQLite takes on the journal itself, and the lock file is not the journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from flightctl.errors import MustStop


class JournalInUse(MustStop):
    """Another process owns the journal."""


class JournalLock:
    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self.path = journal.with_name(journal.name + ".lock")
        self._descriptor: int | None = None

    def acquire(self) -> None:
        """Own the journal, or raise ``JournalInUse`` naming the process that does. Never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise JournalInUse(
                f"journal {self.journal} is in use by process {holder} (another flightctl run or "
                "deliver): one process at a time writes a journal; stop that one, or give this one its own"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._descriptor = descriptor

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            with contextlib.suppress(OSError):
                os.close(descriptor)  # closing the descriptor releases the lock
