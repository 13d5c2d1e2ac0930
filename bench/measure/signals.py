"""Signals: SIGTERM unwinds like Ctrl-C, and a few moments must not be cut by either."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}  # SIGHUP: the terminal went away


def raise_interrupt(signum, frame):
    """SIGTERM unwinds like Ctrl-C, so what was measured so far is written (status interrupted)."""
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, unless the caller ignores them (nohup ignores SIGHUP)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, raise_interrupt)


@contextlib.contextmanager
def deferred():
    """Hold SIGINT and SIGTERM until the block is done (the final assembly and write of a report):
    a signal that arrives meanwhile is delivered right after it, not in the middle.

    The Python-level handlers are swapped for ones that only take note: a signal mask would hold the
    signal for this thread alone, and the kernel hands a process signal to any thread that does not
    block it (torch's and rich's threads), whose handler then interrupts the main thread anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            _deliver(pending[0], old[pending[0]])


def _deliver(signum: int, handler) -> None:
    if callable(handler):
        handler(signum, None)  # raise_interrupt / default_int_handler raise KeyboardInterrupt here
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)
