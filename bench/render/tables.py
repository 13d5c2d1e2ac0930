"""Tabular exports of a comparison through pandas: CSV and Markdown."""

from __future__ import annotations

from pathlib import Path


def write_csv(frame, path: str) -> None:
    frame.to_csv(path, index=False)


def write_markdown(frame, path: str) -> None:
    Path(path).write_text(frame.to_markdown(index=False) + "\n", encoding="utf-8")
