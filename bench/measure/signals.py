"""Signals: every catchable signal that would end the process unwinds like Ctrl-C, and a few moments
must not be cut by any of them."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

# Signals whose default action ends the process and that a handler can catch and carry on from:
# SIGTERM (kill), SIGHUP (the terminal went away), SIGQUIT (Ctrl-\), SIGUSR1/2, SIGALRM and the other
# timers, SIGXCPU (a CPU-time limit), SIGPWR, SIGIO. Not SIGPIPE or SIGXFSZ (Python ignores them and a
# write fails instead), nor the faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP):
# after those the process cannot carry on, and faulthandler reports them.
CATCHABLE = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGXCPU",
             "SIGPWR", "SIGIO")
STOPS = tuple(getattr(signal, n) for n in CATCHABLE if hasattr(signal, n))
STOP_SIGNALS = {signal.SIGINT, *STOPS}


def raise_interrupt(signum, frame):
    """A stop signal unwinds like Ctrl-C, so what was measured so far is written (status interrupted)."""
    raise KeyboardInterrupt


def interrupt_on_sigterm() -> None:
    """Every stop signal unwinds like Ctrl-C, unless something else handles it already: ignored (nohup
    ignores SIGHUP) or caught by a handler of its own (a profiler's SIGPROF)."""
    for sig in STOPS:
        if signal.getsignal(sig) in (signal.SIG_DFL, raise_interrupt):
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


@contextlib.contextmanager
def redirected(handler):
    """While the block runs (in the main thread), every stop signal calls `handler(signum)` and nothing
    else: no KeyboardInterrupt unwinding through an event loop. A signal ignored (nohup's SIGHUP) or
    caught by a handler of its own (a profiler's SIGPROF) is left as it is, except SIGINT: asyncio's
    runner (asyncio/runners.py, Runner.run, 3.11+) puts its own handler there for the loop's Ctrl-C,
    which this one replaces, as uvicorn's Server.capture_signals does. The handlers are restored after;
    a signal taken meanwhile is not raised again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    ours = (signal.SIG_DFL, raise_interrupt, signal.default_int_handler)
    old = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, was in old.items():
        if was in ours or (s == signal.SIGINT and was != signal.SIG_IGN):
            signal.signal(s, lambda signum, frame: handler(signum))
    try:
        yield
    finally:
        for s, was in old.items():
            signal.signal(s, was)


def _deliver(signum: int, handler) -> None:
    if callable(handler):
        handler(signum, None)  # raise_interrupt / default_int_handler raise KeyboardInterrupt here
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)
