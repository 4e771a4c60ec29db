"""The ``flightctl`` command's entry point: Ctrl-C while the program is still starting is a quiet stop.

Importing the CLI (pymavlink's dialect, shapely, pyproj) takes about a second, and some of those imports
swallow a KeyboardInterrupt in bare ``except:`` clauses: a Ctrl-C then was either a traceback or lost. So
SIGINT is held (blocked) while importing and looked at once the imports are done. Inside a command,
``cli.common.run`` handles Ctrl-C itself.
"""

from __future__ import annotations

import os
import signal
import sys


def _stop() -> None:
    sys.stderr.write("stopped\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    held = {signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        from flightctl.cli import app
    except KeyboardInterrupt:  # only where blocking is not available
        _stop()
    if signal.SIGINT in signal.sigpending():
        _stop()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    try:
        app(prog_name="flightctl")
    except KeyboardInterrupt:
        _stop()
