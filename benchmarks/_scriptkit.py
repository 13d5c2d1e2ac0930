"""What the scripts of benchmarks/ share with `bench` itself: options declared and checked as bench
declares its own (bench/core/options.py: bounds on the field, no NaN or infinity, the flag named on
any error), and every error said in one line with bench's exit codes, never a traceback.

    @dataclass(frozen=True)
    class MyOptions(Options):
        budget: float = opt(270.0, "seconds for the checks", exclusive_minimum=0, maximum=86_400)

    def main(argv=None) -> int:
        return run(lambda: work(parse(MyOptions, argv, __doc__)))

parse  the command line into one Options group: bad input is a ConfigError naming the flag (exit 2)
run    the script's body: a BenchError (bad input, a device that is missing) is its message and its
       exit code (2 for bad input); an OSError (a directory that cannot be written, a full disk) is
       the path and the system's reason, exit 1; Ctrl-C exits 130
"""

from __future__ import annotations

import argparse
import sys

from bench.core.errors import BenchError
from bench.core.options import namespace_values, overridden
from bench.core.text import terminal_safe

EXIT_FAILED, EXIT_INTERRUPTED = 1, 130


def parse(cls, argv, description: str | None):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    cls.add_arguments(parser, {})
    ns = parser.parse_args(argv)
    for flag, old, new in overridden(ns):  # as bench says it
        _said(f"note: {flag} {old} is overridden by the later {flag} {new}", 0)
    return cls.build(namespace_values(ns, cls))


def run(body) -> int:
    try:
        return body()
    except BenchError as exc:
        return _said(f"error: {exc}", exc.exit_code)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _said(f"error: {where}{exc.strerror or exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _said("interrupted", EXIT_INTERRUPTED)


def _said(text: str, code: int) -> int:
    try:
        print(terminal_safe(text, 2000), file=sys.stderr)
    except OSError:  # standard error itself cannot take it: the exit code says
        pass
    return code
