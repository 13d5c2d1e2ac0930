"""Comparisons as pandas DataFrames (notebooks; the CSV export is one), and the facade `load_reports` in bench/__init__.py.

One row per run x workload, the keys of bench/render/records.py: identity (workload, run, label,
file, run_id, created_at as a UTC timestamp, status, device), the lead figure with its interval,
the speedup against the baseline with its interval and verdict, every figure the workload declares,
the common figures, warnings, and the workload's params as `param_<name>`. A unit belongs to a
workload's figure, not to a column: `samples_per_s` holds fine-tune samples/s, retrieval contexts/s
and serving requests/s. So each row's `unit` is its lead figure's, and `frame.attrs["units"]` maps
each workload to its columns' units (`attrs["units"]["retrieval-encode"]["samples_per_s"]` is
`contexts/s`).
"""

from __future__ import annotations

from pathlib import Path

from bench.analysis.compare import compare
from bench.analysis.load import expand
from bench.model.io import load_report
from bench.render.records import records


def comparison_frame(comparison):
    import pandas as pd

    frame = pd.DataFrame(records(comparison))
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, errors="coerce")
    units: dict[str, dict[str, str]] = {}
    for comp in comparison:
        units.setdefault(comp.workload, {}).update({c.key: c.unit for c in comp.columns if c.unit})
    frame.attrs["units"] = units
    return frame


def load_reports(paths, baseline: str | None = None, force: bool = False, min_repeats: int = 3,
                 min_effect: float = 0.02):
    """DataFrame of report files or globs, compared as `bench compare` would (the first file's run is
    the baseline unless `baseline` names one). Raises ReportError on a file that is not a report."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    loaded = [(str(p), load_report(p)) for p in expand([str(p) for p in paths])[0]]
    return comparison_frame(compare(loaded, baseline, force, min_repeats, min_effect))
