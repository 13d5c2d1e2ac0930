"""The `bench` command's entry point: Ctrl-C and SIGTERM mean the same from the first moment.

SIGTERM (and SIGHUP, a closed terminal, SIGQUIT, SIGUSR1 and every other catchable signal that would
end the process) is turned into an interrupt before anything heavy is imported, so a run stopped
while it starts exits 130 with one line, like one stopped later (not 143, not a core dump, not a
traceback). A closed standard stream is replaced by /dev/null.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from bench.measure.signals import interrupt_on_sigterm  # signal and threading only

    interrupt_on_sigterm()  # SIGTERM, SIGHUP (`nohup bench run ...` keeps running), SIGQUIT, SIGUSR1, ...
    for name in ("stdin", "stdout", "stderr"):  # started with a stream closed (`bench ... >&-`)
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "r" if name == "stdin" else "w", encoding="utf-8"))
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
