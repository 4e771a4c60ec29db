"""``flightctl``: the command line, assembled from one module per command group."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.logging import RichHandler

from flightctl.cli.broker import broker_app
from flightctl.cli.common import errors
from flightctl.cli.deliver import deliver
from flightctl.cli.dispatch import dispatch
from flightctl.cli.events import events
from flightctl.cli.leg import leg_app
from flightctl.cli.logbook import logbook_app
from flightctl.cli.mission import mission_app
from flightctl.cli.order import order_app
from flightctl.cli.relay import relay
from flightctl.cli.report import report
from flightctl.cli.run import run_daemon
from flightctl.cli.signing import signing_app
from flightctl.cli.sim import sim_app
from flightctl.cli.status import status
from flightctl.cli.telemetry_view import telemetry

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Onboard flight and delivery controller.")
app.command()(status)
app.command()(deliver)
app.command("run")(run_daemon)
app.add_typer(order_app, name="order")
app.command()(events)
app.command()(telemetry)
app.add_typer(mission_app, name="mission")
app.add_typer(leg_app, name="leg")
app.add_typer(sim_app, name="sim")
app.add_typer(signing_app, name="signing")
app.add_typer(broker_app, name="broker")
app.command()(dispatch)
app.command()(relay)
app.add_typer(logbook_app, name="logbook")
app.command()(report)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the link does.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[log_handler()])


def log_handler() -> logging.Handler:
    """Rich's handler on a terminal; one plain line per record anywhere else (systemd's journal, a log file).
    Rich lays every record out as a table wrapped to the terminal's width: in a daemon under load that held the
    event loop for hundreds of milliseconds (loop_stalls.py named it), and it broke long lines in the middle
    of what one searches a log for."""
    if errors.is_terminal:
        return RichHandler(console=errors, show_path=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler
