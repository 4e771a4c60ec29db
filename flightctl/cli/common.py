"""What every command shares: consoles, the async runner that turns our errors into one red line, options."""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from flightctl.config import load_telemetry_config
from flightctl.errors import FlightctlError
from flightctl.vehicle.vehicle import LinkOptions, Vehicle

console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

ConnectOption = Annotated[str, typer.Option("--connect", "-c", help="udpin:H:P, udpout:H:P, tcp:H:P, serial:DEV:BAUD")]
SigningOption = Annotated[
    Path | None, typer.Option("--signing-key", help="MAVLink 2 signing key file (64 hex characters)")
]


def _finite_timeout(value: float) -> float:
    if not math.isfinite(value) or value <= 0 or value > 3600:
        raise typer.BadParameter(f"{value} is not a number of seconds between 0 and 3600")
    return value


TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        callback=_finite_timeout,
        help="Seconds to wait for the link to open and the vehicle's heartbeat to arrive.",
    ),
]
DEFAULT_TIMEOUT_S = 30.0


def fail(exc: Exception) -> typer.Exit:
    # Text, never markup: file names and vehicle messages carry brackets of their own.
    errors.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False)
    return typer.Exit(1)


def run(coroutine_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one async command; our errors become one red line and exit code 1, Ctrl-C exits 130."""

    async def supervised() -> T:
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await coroutine_factory()

    try:
        return asyncio.run(supervised())
    except FlightctlError as exc:
        raise fail(exc) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        errors.print("stopped")
        raise typer.Exit(130) from None


def run_service(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """A long-running service (the daemon, the relay): SIGTERM or Ctrl-C stops it cleanly (exit 0), our errors
    become one red line and exit code 1."""

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await main()

    try:
        asyncio.run(serve())
    except FlightctlError as exc:
        raise fail(exc) from None
    errors.print("stopped")


def load_or_exit(loader: Callable[[Path], T], path: Path) -> T:
    """Read a file before anything touches the vehicle; a bad file is one error line and exit code 1."""
    try:
        return loader(path)
    except FlightctlError as exc:
        raise fail(exc) from None


@contextlib.asynccontextmanager
async def connect_vehicle(
    url: str, signing_key: Path | None = None, *, timeout_s: float = 30.0, telemetry: bool = True
) -> AsyncIterator[Vehicle]:
    rates = load_telemetry_config().rates_hz if telemetry else None
    options = LinkOptions(signing_key_file=signing_key, open_timeout_s=timeout_s)
    async with Vehicle.connect(url, options=options, heartbeat_timeout_s=timeout_s, rates_hz=rates) as vehicle:
        yield vehicle
