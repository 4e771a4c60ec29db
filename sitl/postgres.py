"""A real PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temporary folder, a free port,
trust authentication on 127.0.0.1 only. Run as root (CI), the cluster belongs to the ``postgres`` user
(PostgreSQL refuses to run as root)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import asyncpg

from sitl.errors import SitlError
from sitl.mosquitto import free_port
from sitl.processes import end_process

START_TIMEOUT_S = 60.0


class PostgresError(SitlError):
    """PostgreSQL is missing, or did not start."""


def postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not candidates:
        found = shutil.which("initdb")
        if found is None:
            raise PostgresError("PostgreSQL's server is not installed (Debian: apt-get install postgresql)")
        return Path(found).parent
    return Path(candidates[-1]).parent


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="flightctl-pg-"))
        self._process: asyncio.subprocess.Process | None = None
        # As root, the server runs as the postgres user (it refuses root), started as that user directly rather than
        # through runuser: runuser turns every signal into SIGTERM, then SIGKILL 2 s later, which leaves a server
        # that was asked for a fast shutdown half-stopped and its data folder unusable.
        self._user: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"postgresql://flightctl@127.0.0.1:{self.port}/postgres"

    async def __aenter__(self) -> PostgresServer:
        binaries = postgres_bin()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self._user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        await self._run(str(binaries / "initdb"), "-D", str(self.folder / "data"), "-A", "trust", "-U", "flightctl",
                        "--no-sync")  # fmt: skip
        await self._start()
        return self

    async def _start(self) -> None:
        binaries = postgres_bin()
        self._process = await asyncio.create_subprocess_exec(
            str(binaries / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.folder}",
            "-c", "fsync=off", "-c", "max_connections=100",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, **self._user,
        )  # fmt: skip
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while not await self._accepts():
                    if self._process.returncode is not None:
                        raise PostgresError(f"postgres exited with {self._process.returncode}")
                    await asyncio.sleep(0.1)
        except TimeoutError:
            await self.__aexit__()
            raise PostgresError(f"PostgreSQL did not accept connections within {START_TIMEOUT_S:g} s") from None

    async def restart(self) -> None:
        """Stop the server (a fast shutdown: every connection dropped) and start it again on the same data."""
        await self.stop()
        await self._start()

    async def stop(self) -> None:
        """Stop the server, keeping its data (``start`` brings it back): a registry outage."""
        process, self._process = self._process, None
        # SIGINT is PostgreSQL's fast shutdown; SIGTERM's smart one waits for every client to leave, and a relay's
        # pool never does: the new server would find the old one still holding the data folder.
        await end_process(process, signal.SIGINT, timeout_s=20)

    async def start(self) -> None:
        """Start a stopped server again on the same data and port."""
        await self._start()

    async def _accepts(self) -> bool:
        try:
            connection = await asyncpg.connect(self.url, timeout=2)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    async def _run(self, *command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, **self._user
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise PostgresError(f"{Path(command[0]).name} failed: {output.decode(errors='replace')[-2000:]}")

    async def __aexit__(self, *_exc: object) -> None:
        process, self._process = self._process, None
        await end_process(process, timeout_s=20)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)
