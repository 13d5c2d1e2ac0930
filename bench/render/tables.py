"""Tabular exports of a comparison through pandas: CSV and Markdown, escaped for each format and
written atomically (a failed write leaves any earlier file as it was)."""

from __future__ import annotations

from bench.core.text import csv_cell, markdown_cell
from bench.model.io import write_atomic


def write_csv(frame, path: str) -> None:
    safe = frame.map(csv_cell) if hasattr(frame, "map") else frame.applymap(csv_cell)
    write_atomic(path, safe.to_csv(index=False))


def write_markdown(frame, path: str) -> None:
    write_atomic(path, markdown_table(frame) + "\n")


def markdown_table(frame) -> str:
    """A pipe table; every cell escaped (pipes, newlines, raw HTML), unknown values as an em dash."""
    from bench.render.format import cell

    cols = [markdown_cell(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(markdown_cell(cell(v)) for v in row) + " |")
    return "\n".join(lines)
