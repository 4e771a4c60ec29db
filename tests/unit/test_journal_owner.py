"""One owner per journal, and a journal that knows its drone: a second writer is refused and told who holds it, a
lock dies with its process, a reader looks on without a lock, and a daemon refuses another drone's journal.
The daemon cases run `flightctl run` itself: it opens its journal before it dials the autopilot."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from flightctl.delivery.journal import Journal, JournalError
from flightctl.delivery.journal_lock import JournalInUse
from sitl.daemon import write_daemon_config


async def test_a_second_writer_is_refused_and_told_who_holds_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "odd?name#50%" / "journal.sqlite"  # the reader's read-only URI must escape these
    async with await Journal.open(path) as journal:
        await journal.enqueue(None, "online", {})
        with pytest.raises(JournalInUse, match=f"in use by process {os.getpid()}"):
            await Journal.open(path)
        async with await Journal.open(path, reader=True) as reader:
            assert await reader.outbox_backlog() == 1
            with pytest.raises(JournalError, match="readonly"):
                await reader.enqueue(None, "online", {})
    async with await Journal.open(path) as again:  # released on close
        assert await again.outbox_backlog() == 1


HOLDER = """
import asyncio, sys
from pathlib import Path
from flightctl.delivery.journal import Journal

async def main():
    journal = await Journal.open(Path(sys.argv[1]))
    print("holding", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """Test that a writer SIGKILLed while it holds the journal leaves no lock behind (no stale lock to clear by
    hand after a crash or a power loss)."""
    path = tmp_path / "journal.sqlite"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), timeout=30) == b"holding\n"
        with pytest.raises(JournalInUse, match=f"process {holder.pid}"):
            await Journal.open(path)
    finally:
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
    async with await Journal.open(path):
        pass


async def test_a_journal_belongs_to_the_first_drone_that_claims_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with await Journal.open(path) as journal:
        await journal.belongs_to("orkney-07")
        await journal.enqueue(None, "online", {})
    async with await Journal.open(path) as journal:
        await journal.belongs_to("orkney-07")
        with pytest.raises(JournalError, match="belongs to drone orkney-07, and this is drone orkney-09"):
            await journal.belongs_to("orkney-09")
        assert await journal.outbox_backlog() == 1, "its unsent events stay as they were"


async def run_daemon(folder: Path, drone_id: str) -> asyncio.subprocess.Process:
    config = write_daemon_config(
        folder, drone_id=drone_id, autopilot_url="tcp:127.0.0.1:9", broker_url="mqtt://127.0.0.1:9",
        username=drone_id, password="x", ca_file=None,
    )  # fmt: skip
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_a_daemon_refuses_a_journal_held_by_another_or_cloned_from_another_drone(tmp_path: Path) -> None:
    """Test `flightctl run` on a journal another process holds, and on one that belongs to another drone (a
    cloned card): each exits 1 at once with one line saying what and what to do, no traceback."""
    folder = tmp_path / "daemon"
    async with await Journal.open(folder / "journal.sqlite") as journal:
        await journal.belongs_to("orkney-07")
        held = await run_daemon(folder, "orkney-07")
        _out, err = await asyncio.wait_for(held.communicate(), timeout=60)
    assert held.returncode == 1
    assert f"in use by process {os.getpid()}" in err.decode()
    assert "Traceback" not in err.decode()

    cloned = await run_daemon(folder, "orkney-09")
    _out, err = await asyncio.wait_for(cloned.communicate(), timeout=60)
    assert cloned.returncode == 1
    assert "belongs to drone orkney-07, and this is drone orkney-09" in err.decode()
    assert "Traceback" not in err.decode()
