"""Loading many reports for comparison, and tabular exports through pandas (CSV, Markdown)."""

from __future__ import annotations

import glob
from pathlib import Path

from bench.compare import make_runs, row_values
from bench.core.errors import ReportError
from bench.model.io import load_report


def expand(patterns: list[str]) -> tuple[list[str], list[str]]:
    """Paths from arguments; a pattern the shell left unexpanded is globbed here. -> (paths, problems)"""
    paths, problems = [], []
    for p in patterns:
        if any(c in p for c in "*?[") and not Path(p).exists():
            matched = sorted(glob.glob(p))
            if not matched:
                problems.append(f"{p}: the pattern matches no file")
            paths.extend(matched)
        else:
            paths.append(p)
    return paths, problems


def load_many(patterns: list[str]) -> tuple[list[tuple[str, dict]], list[str]]:
    """Every readable report, and one line per file that could not be used, saying why."""
    paths, problems = expand(patterns)
    loaded = []
    for p in paths:
        try:
            loaded.append((p, load_report(p)))
        except ReportError as exc:
            problems.append(str(exc))
    return loaded, problems


def comparison_frame(comparisons):
    import pandas as pd

    rows = [row_values(row, comp.main_metric) for comp in comparisons for row in comp.rows]
    return pd.DataFrame(rows)


def load_reports(paths):
    """DataFrame with one row per run x workload (for notebooks). Raises ReportError on a bad file."""
    import pandas as pd

    if isinstance(paths, (str, Path)):
        paths = [str(paths)]
    loaded = [(str(p), load_report(p)) for p in expand([str(p) for p in paths])[0]]
    rows = []
    for run in make_runs(loaded):
        row = row_values(_Row(run), run.result.main_metric or "samples_per_s")
        for k in ("speedup", "speedup_ci_low", "speedup_ci_high", "mann_whitney_p", "verdict", "comparable"):
            row.pop(k)
        row.update({"file": run.path, "run_id": run.report.run_id, "status": run.result.status,
                    "label": run.report.label, "created_at": run.report.created_at,
                    **{f"param_{k}": v for k, v in run.params.items()}})
        rows.append(row)
    return pd.DataFrame(rows)


class _Row:
    """A bare row (no baseline) for load_reports."""

    def __init__(self, run):
        self.run, self.speedup, self.verdict, self.comparable, self.baseline = run, None, "", True, False


def write_csv(frame, path: str) -> None:
    frame.to_csv(path, index=False)


def write_markdown(frame, path: str) -> None:
    Path(path).write_text(frame.to_markdown(index=False) + "\n", encoding="utf-8")
