"""What every command shares: consoles, the async runner that turns our errors into one red line, options."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from flightctl.errors import FlightctlError

if TYPE_CHECKING:  # imported where used: `flightctl --help` must not pay for pymavlink, shapely or pyproj
    from flightctl.delivery.runway_choice import SurfaceWind
    from flightctl.delivery.wind import GroundWind
    from flightctl.vehicle.vehicle import Vehicle

console = Console()
# Errors are one line each, never wrapped at 80 columns for a pipe or a log (a terminal wraps them itself).
errors = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConnectOption = Annotated[str, typer.Option("--connect", "-c", help="udpin:H:P, udpout:H:P, tcp:H:P, serial:DEV:BAUD")]
SigningOption = Annotated[
    Path | None, typer.Option("--signing-key", help="MAVLink 2 signing key file (64 hex characters)")
]


RemoteIdOption = Annotated[
    Path | None,
    typer.Option(
        "--remote-id",
        help="The operator's Remote ID settings to send while connected: a TOML file with a [remote_id] section "
        "(the onboard daemon's config). An autopilot that enforces Remote ID (DID_OPTIONS) is a NO-GO without.",
    ),
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
AnswerTimeoutOption = Annotated[
    float, typer.Option("--answer-timeout", min=1, max=3600, help="Seconds to wait for the drone's answer.")
]
DepotWindOption = Annotated[
    str | None,
    typer.Option(
        "--depot-wind",
        help="The depot's measured mean wind for go/no-go: SPEED in m/s (measured now) or SPEED@TIME (ISO 8601 "
        "with zone). Without it go/no-go says NO-GO: the wind is unknown (unless the profile waives it).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for machines.")]
AirstripWindOption = Annotated[
    list[str] | None,
    typer.Option(
        "--airstrip-wind",
        help="An airstrip's measured surface wind: ICAO=FROM/SPEED[gGUST][@TIME] (degrees true it blows from, m/s, "
        "ISO 8601 time), e.g. EGEN=030/8g12@2026-12-01T09:40Z. Give one for the destination and the alternate; the "
        "departure field's defaults to calm.",
    ),
]
AloftOption = Annotated[
    str,
    typer.Option(
        "--aloft-wind",
        help="The forecast wind aloft along the leg, FROM/SPEED (degrees true it blows from, m/s): the energy "
        "check flies the leg into its headwind component.",
    ),
]


def depot_wind_or_exit(text: str | None) -> GroundWind | None:
    """``--depot-wind`` read before anything is sent or flown; a bad one is one red line."""
    if text is None:
        return None
    from flightctl.delivery.wind import GroundWind

    try:
        return GroundWind.parse(text, now=datetime.now(UTC))
    except FlightctlError as exc:
        raise fail(exc) from None


def airstrip_winds_or_exit(
    texts: list[str] | None, *, known: set[str] | None = None, need_time: bool = False
) -> dict[str, SurfaceWind]:
    """``--airstrip-wind ICAO=FROM/SPEED...`` by ICAO, read before anything is sent or flown. ``known``: the
    airstrips it may name; ``need_time``: each must say when it was measured (a drone refuses one that does not)."""
    from flightctl.delivery.runway_choice import SurfaceWind
    from flightctl.errors import ConfigError

    winds: dict[str, SurfaceWind] = {}
    try:
        for text in texts or []:
            icao, equals, wind = text.partition("=")
            icao = icao.upper()
            if not equals or not re.fullmatch(r"[A-Z]{4}", icao) or (known is not None and icao not in known):
                among = f" with ICAO one of {', '.join(sorted(known))}" if known is not None else ""
                raise ConfigError(f"--airstrip-wind {text!r}: expected ICAO=FROM/SPEED{among}")
            winds[icao] = SurfaceWind.parse(wind)
            if need_time and winds[icao].measured_at is None:
                raise ConfigError(
                    f"--airstrip-wind {text!r}: say when it was measured, ...@TIME (e.g. {icao}={wind}@"
                    f"{datetime.now(UTC):%Y-%m-%dT%H:%MZ}): the drone judges the wind's age"
                )
    except FlightctlError as exc:
        raise fail(exc) from None
    return winds


def report(as_json: bool, record: dict[str, Any], for_people: str) -> None:
    """A command's result: one JSON object on stdout for machines, or a line for people."""
    if as_json:
        sys.stdout.write(json.dumps(record, default=str) + "\n")
    else:
        console.print(Text(for_people))


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
        with event_loop() as runner:
            return runner.run(supervised())
    except FlightctlError as exc:
        raise fail(exc) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        errors.print("stopped")
        raise typer.Exit(130) from None


def event_loop() -> asyncio.Runner:
    """A runner whose event loop is made while Ctrl-C is held. A loop interrupted half-way through its own
    construction cannot be closed (asyncio then raises AttributeError over the KeyboardInterrupt, a traceback
    for a keypress); a Ctrl-C that came meanwhile is a KeyboardInterrupt once the loop is whole."""
    held = {signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        runner = asyncio.Runner()
        runner.get_loop()
        pressed = signal.SIGINT in signal.sigpending()
        if pressed:
            signal.sigtimedwait(held, 0)  # taken here, so that unblocking does not deliver it a second time
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    if pressed:
        runner.close()
        raise KeyboardInterrupt
    return runner


STOP_GRACE_S = 10.0  # under the systemd unit's TimeoutStopSec, so that we say what hung before it SIGKILLs


def run_service(
    main: Callable[[], Coroutine[Any, Any, None]],
    *,
    stop_grace_s: float = STOP_GRACE_S,
    on_stop: Callable[[], None] = lambda: None,
) -> None:
    """A long-running service (the daemon, the relay): SIGTERM or Ctrl-C stops it cleanly (exit 0), our errors
    become one red line and exit code 1.

    A stop has a deadline too. A task that ignores its cancellation (a library that swallows it) would keep the
    process alive until systemd kills it, saying nothing; past ``stop_grace_s`` the tasks still running are
    printed with their stacks and the process exits 1 at once. That is safe: everything that matters is in the
    journal, which survives being killed at any instruction. ``on_stop`` is called as a stop begins, before the
    service is cancelled (a cancellation alone does not say whether it was asked for or caused by a crash)."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        work = asyncio.create_task(main(), name="service")
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        stopping = asyncio.create_task(stop.wait(), name="waiting for SIGTERM")
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not work.done():
            on_stop()
            work.cancel()
            await asyncio.wait({work}, timeout=stop_grace_s)
            if not work.done():
                _exit_stuck(stop_grace_s)
        with contextlib.suppress(asyncio.CancelledError):
            work.result()

    try:
        with event_loop() as runner:
            runner.run(serve())
    except FlightctlError as exc:
        raise fail(exc) from None
    errors.print("stopped")


def _exit_stuck(stop_grace_s: float) -> NoReturn:
    current = asyncio.current_task()
    stuck = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    stacks = io.StringIO()
    for task in stuck:
        task.print_stack(file=stacks)
    names = ", ".join(sorted(task.get_name() for task in stuck))
    errors.print(
        Text.assemble(("error:", "bold red"), f" still running {stop_grace_s:g} s after the stop: {names}; exiting"),
        highlight=False,
    )
    sys.stderr.write(stacks.getvalue())
    sys.stderr.flush()
    logging.shutdown()
    os._exit(1)


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
    from flightctl.vehicle.vehicle import LinkOptions, Vehicle

    rates = None
    if telemetry:  # the config's reader brings PyYAML and the settings models: only for commands that stream
        from flightctl.config import load_telemetry_config
        from flightctl.vehicle.telemetry import stream_rates

        rates = stream_rates(load_telemetry_config().rates_hz)
    options = LinkOptions(signing_key_file=signing_key, open_timeout_s=timeout_s)
    async with Vehicle.connect(url, options=options, heartbeat_timeout_s=timeout_s, rates_hz=rates) as vehicle:
        yield vehicle
