"""What the harness's service processes (mosquitto, nginx, PostgreSQL) share: is it listening, and stop it."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def accepts_tcp(port: int, host: str = "127.0.0.1") -> bool:
    """Does something accept a TCP connection on ``port`` now?"""
    try:
        _reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def end_process(
    process: asyncio.subprocess.Process | None, signum: int = signal.SIGTERM, *, timeout_s: float = 10
) -> None:
    """Send ``signum`` and wait; SIGKILL if it has not gone within ``timeout_s``."""
    if process is None or process.returncode is not None:
        return
    process.send_signal(signum)
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
