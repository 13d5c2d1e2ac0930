"""Loading many report files for a comparison: globs expanded, every bad file named and skipped."""

from __future__ import annotations

import glob
from pathlib import Path

from bench.core.errors import ReportError
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
            loaded.append((p, load_report(p)))
        except ReportError as exc:
            problems.append(exc)
    return loaded, problems
