"""A serial port for SITL: socat joins a pseudo-terminal to one of SITL's TCP SERIALn ports, so flightctl's
serial transport (pyserial on a tty) is exercised exactly as on the aircraft's UART."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sitl.errors import SitlError


@contextlib.asynccontextmanager
async def pty_bridge(tcp_host: str, tcp_port: int, *, timeout_s: float = 10.0) -> AsyncIterator[Path]:
    """Yield the path of a tty whose other side is ``tcp_host:tcp_port``."""
    socat = shutil.which("socat")
    if socat is None:
        raise SitlError("socat is needed for the serial bridge to SITL (Debian: apt-get install socat)")
    with tempfile.TemporaryDirectory(prefix="flightctl-pty-") as folder:
        link = Path(folder) / "ttySITL"
        process = await asyncio.create_subprocess_exec(
            socat,
            f"PTY,link={link},raw,echo=0",
            f"TCP:{tcp_host}:{tcp_port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while not link.exists():
                if process.returncode is not None or loop.time() > deadline:
                    detail = (await process.stderr.read()).decode(errors="replace") if process.stderr else ""
                    raise SitlError(f"socat did not make a pty for {tcp_host}:{tcp_port}: {detail.strip()}")
                await asyncio.sleep(0.05)
            yield link
        finally:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
