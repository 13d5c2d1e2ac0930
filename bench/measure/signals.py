"""Signals: SIGTERM unwinds like Ctrl-C, and a few moments must not be cut by either."""

from __future__ import annotations

import contextlib
import signal

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def raise_interrupt(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so what was measured so far is written (status interrupted)."""
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, raise_interrupt)


@contextlib.contextmanager
def deferred():
    """Hold SIGINT and SIGTERM until the block is done (the final assembly and write of a report):
    a signal that arrives meanwhile is delivered right after it, not in the middle."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    except (AttributeError, ValueError, OSError):  # not the main thread, or no sigmask on this OS
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
