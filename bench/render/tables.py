"""Tabular exports of a comparison: CSV (one row per run x workload, the DataFrame's columns) and
Markdown (per workload, the terminal's columns and formatted cells), escaped for each format and
written atomically (a failed write leaves any earlier file as it was)."""

from __future__ import annotations

import math

from bench.core.text import csv_cell, markdown_cell
from bench.model.io import write_atomic
from bench.render.compare_view import ALWAYS_SHOWN, compare_cells, compare_title
from bench.render.format import DASH


def csv_value(value):
    """Numbers in plain positional notation (never 3.97e+08), unknown as "—", text formula-safe."""
    import numpy as np

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return np.format_float_positional(float(value), trim="-")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return csv_cell(str(value))


def csv_text(frame) -> str:
    safe = frame.astype(object).where(frame.notna(), None)
    safe = safe.map(csv_value) if hasattr(safe, "map") else safe.applymap(csv_value)
    safe.columns = [csv_cell(str(c)) for c in safe.columns]
    return safe.to_csv(index=False)


def write_csv(frame, path: str) -> None:
    write_atomic(path, csv_text(frame))


def markdown_text(comparisons) -> str:
    """Each study's decision first (its table and verdicts), then one table per workload."""
    from bench.render.decision_view import decision_cells, verdict_text

    parts = []
    for d in getattr(comparisons, "decisions", []):
        headers, rows = decision_cells(d)
        verdicts = "".join(f"\n- {markdown_cell(verdict_text(v), 4000)}" for v in d.verdicts)
        parts.append(f"### {markdown_cell(d.study)}: decision\n\n{markdown_table(headers, rows)}\n{verdicts}".rstrip())
    for comp in comparisons:
        headers, body = compare_cells(comp)
        keep = [i for i in range(len(headers)) if i < ALWAYS_SHOWN or any(c[i] != DASH for c, _ in body)]
        parts.append(f"### {markdown_cell(compare_title(comp))}\n\n" + markdown_table(
            [headers[i] for i in keep], [[cells[i] for i in keep] for cells, _ in body]))
    return "\n\n".join(parts) + "\n"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A pipe table; every cell escaped (pipes, newlines, raw HTML)."""
    lines = ["| " + " | ".join(markdown_cell(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(comparisons, path: str) -> None:
    write_atomic(path, markdown_text(comparisons))
