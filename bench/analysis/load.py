"""Loading many report files for a comparison: globs expanded, every bad file named and skipped —
when it cannot be read, and when the comparison cannot be made with it (`isolated`)."""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

from bench.core.errors import BenchError, ReportError
from bench.core.text import redact_urls, shell_path
from bench.model.io import load_report


def expand(patterns: list[str]) -> tuple[list[str], list[ReportError]]:
    """Paths from arguments; a pattern the shell left unexpanded is globbed here. -> (paths, problems)"""
    paths, problems = [], []
    for p in patterns:
        if any(c in p for c in "*?[") and not Path(p).exists():
            matched = sorted(glob.glob(p))
            if not matched:
                problems.append(ReportError(f"{p}: the pattern matches no file"))
            paths.extend(matched)
        else:
            paths.append(p)
    return paths, problems


def load_many(patterns: list[str]) -> tuple[list[tuple[str, dict]], list[ReportError]]:
    """Every readable report, and the error of each file that could not be used, saying why."""
    paths, problems = expand(patterns)
    loaded = []
    for p in paths:
        try:
            loaded.append((p, redacted(load_report(p))))
        except ReportError as exc:
            problems.append(exc)
    return loaded, problems


def redacted(obj):
    """A loaded report with every string that holds a URL's credentials (`scheme://user:key@`) shown as
    `***@`, wherever it is (a label, who served, a warning, an error): a report written elsewhere, or
    edited, may hold them, and no output of a comparison shows them. In place; returns it."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            setattr(obj, f.name, _redacted_value(getattr(obj, f.name)))
        return obj
    return _redacted_value(obj)


def _redacted_value(value):
    if isinstance(value, str):
        return redact_urls(value) if "@" in value else value
    if isinstance(value, dict):
        return {_redacted_value(k): _redacted_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return value if value and isinstance(value[0], int | float) else [_redacted_value(v) for v in value]
    return redacted(value) if dataclasses.is_dataclass(value) else value


def isolated(loaded: list, attempt):
    """attempt(loaded), or — where it raises something other than a BenchError — attempt() of the
    files without those that make it fail: (result or None, a ReportError per file set aside).

    One file that no analysis or renderer expected (a value nothing bounded, a bug it meets) must not
    end a comparison of the others. Each file that fails alone is set aside; if none does, the file
    whose absence lets the rest through (the last such: the baseline is the first file). The error
    says what was raised: it is a bug in bench, and BENCH_DEBUG=1 raises it instead."""
    try:
        return attempt(loaded), []
    except BenchError:
        raise
    except Exception as exc:  # whatever one file made the comparison raise, the others are compared
        if os.environ.get("BENCH_DEBUG"):
            raise
        failure = f"{type(exc).__name__}: {str(exc)[:200]}"
    bad = {i: why for i, one in enumerate(loaded) if (why := _failure(attempt, [one]))}
    if not bad:
        alone = [i for i in range(len(loaded)) if not _failure(attempt, loaded[:i] + loaded[i + 1:])]
        bad = {i: failure for i in alone[-1:]}
    if not bad:
        raise RuntimeError(f"the comparison fails whichever file is left out ({failure})")
    kept = [x for i, x in enumerate(loaded) if i not in bad]
    problems = [ReportError(f"{shell_path(loaded[i][0])}: cannot be compared ({why}); a bug in bench, which "
                            "BENCH_DEBUG=1 shows with its traceback") for i, why in bad.items()]
    if not kept:
        return None, problems
    result, more = isolated(kept, attempt)
    return result, problems + more


def _failure(attempt, loaded: list) -> str | None:
    """What attempt(loaded) raises, in a line (None: it works, or says what is wrong itself)."""
    try:
        attempt(loaded)
    except BenchError:
        return None
    except Exception as exc:  # noqa: BLE001 - the question is only whether and how it fails
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None
