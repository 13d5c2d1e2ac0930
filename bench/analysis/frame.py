"""Comparisons and reports as pandas DataFrames (for notebooks, CSV and Markdown)."""

from __future__ import annotations

from pathlib import Path

from bench.analysis.compare import make_runs, row_values
from bench.analysis.load import expand
from bench.model.io import load_report


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
    for run in make_runs(loaded)[0]:
        row = row_values(_Row(run), run.result.main_metric or "samples_per_s")
        for k in ("ratio", "ratio_ci_low", "ratio_ci_high", "verdict", "verdict_text", "comparable"):
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
        self.code = ""
        self.mismatch = None
