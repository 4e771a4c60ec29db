"""The ``flightctl`` command's entry point: Ctrl-C while the program is still starting is a quiet stop.

Some heavy imports (pymavlink's dialect among them) swallow a KeyboardInterrupt in bare ``except:`` clauses:
a Ctrl-C then was either a traceback or lost. So SIGINT is held (blocked) while importing and looked at once
the imports are done. The command line itself imports nothing heavy (``--help`` starts in a quarter of a
second); a command imports what it needs when it runs, so the libraries a command will need are imported
here first, while SIGINT is still held (``NEEDS``). Inside a command, ``cli.common.run`` handles Ctrl-C.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

# What each command group imports when it runs, imported before it runs (see the module's docstring).
# ``MODES`` (pymavlink's mavutil, which brings numpy) is imported by the first flight mode named; commands that
# fly or show modes take it here, and ``mission``, which names none, never pays for it.
MODES = "pymavlink.mavutil"
NEEDS: dict[str, tuple[str, ...]] = {
    "status": ("flightctl.vehicle.vehicle", MODES),
    "deliver": ("flightctl.vehicle.vehicle", "flightctl.delivery.sequencer", MODES),
    "run": ("flightctl.daemon.daemon", MODES),
    "order": ("flightctl.ground.dispatch", "flightctl.mqtt.requests"),
    "events": ("flightctl.mqtt.broker",),
    "telemetry": ("flightctl.vehicle.vehicle", "flightctl.daemon.telemetry_feed", "flightctl.mqtt.broker", MODES),
    "mission": ("flightctl.vehicle.vehicle", "flightctl.missions.formats"),
    "leg": (
        "flightctl.delivery.leg_preflight",
        "flightctl.missions.formats",
        "flightctl.vehicle.vehicle",
        "flightctl.ground.dispatch",
        MODES,
    ),
    "sim": ("flightctl.vehicle.vehicle", "flightctl.delivery.sequencer", MODES),
    "signing": ("flightctl.vehicle.signing", "flightctl.vehicle.vehicle", MODES),
    "broker": ("flightctl.ground.broker_accounts",),
    "dispatch": ("flightctl.ground.dispatch", "flightctl.ground.registry"),
    "relay": ("flightctl.ground.relay", "flightctl.ground.tracking", "flightctl.ground.ops"),
    "logbook": ("flightctl.ground.logbook", "flightctl.ground.registry"),
    "report": ("flightctl.report.build", "flightctl.report.figures"),
}


def _needed(argv: list[str]) -> tuple[str, ...]:
    """The modules the command in ``argv`` will import; none for a request for help."""
    if any(arg in ("--help", "-h") for arg in argv):
        return ()
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    return NEEDS.get(command or "", ())


def _stop() -> None:
    sys.stderr.write("stopped\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    held = {signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        from flightctl.cli import app

        for module in _needed(sys.argv[1:]):
            importlib.import_module(module)
    except KeyboardInterrupt:  # only where blocking is not available
        _stop()
    if signal.SIGINT in signal.sigpending():
        _stop()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    try:
        app(prog_name="flightctl")
    except KeyboardInterrupt:
        _stop()
    except SystemExit as done:
        if _silent_interrupt(done):
            _stop()
        raise


def _silent_interrupt(done: SystemExit) -> bool:
    """Whether typer turned a Ctrl-C into a silent exit 130 (``raise Exit(130) from KeyboardInterrupt``): one
    pressed after start-up but before the command's own handling (``cli.common.run``, which says "stopped"
    itself and exits 130 from nothing) took over, as while the arguments are parsed."""
    ended = done.__context__
    return ended is not None and isinstance(ended.__cause__, KeyboardInterrupt)
