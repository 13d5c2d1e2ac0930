"""The `bench` command's entry point: Ctrl-C and SIGTERM mean the same from the first moment.

SIGTERM is turned into an interrupt before anything heavy is imported, so a run stopped while it
starts exits 130 with one line, like one stopped later (not 143, not a traceback).
"""

from __future__ import annotations

import signal
import sys


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from bench.cli import cli

        code = cli()
    except KeyboardInterrupt:
        code = 130
        try:
            sys.stderr.write("interrupted\n")
        except (OSError, ValueError):
            pass
    sys.exit(code)
