"""Tables that read at any width: one row per run where the page is wide enough, else one column per
run (transposed), else one block per run. Nothing is cut to three characters."""

from __future__ import annotations

from rich.console import Group
from rich.measure import Measurement
from rich.table import Table

from bench.render.format import DASH, markup, shown


def fit(screen, title: str, headers: list[str], rows: list[list[str]], always: int = 1,
        dim: list[bool] | None = None):
    """The first layout whose natural width fits the console. headers and cells are plain text
    (escaped here); the first column names each row (the run)."""
    dim = dim or [False] * len(rows)
    keep = [i for i in range(len(headers)) if i < always or any(r[i] != DASH for r in rows)]
    wide = _wide(title, headers, rows, keep, dim)
    if natural_width(screen, wide) <= screen.width:
        return wide
    across = _transposed(title, headers, rows, keep, dim)
    if natural_width(screen, across) <= screen.width:
        return across
    if _room_per_run(screen, headers, rows, keep) >= MIN_WRAPPED:  # side by side still, long cells wrapped
        return _transposed(title, headers, rows, keep, dim, wrap=True)
    return _blocks(title, headers, rows, keep, dim, always)


MIN_WRAPPED = 28  # characters a run's column needs for its cells to read when wrapped; below, a block per run


def _room_per_run(screen, headers, rows, keep) -> float:
    """The width each run's column would get beside the figure names (borders and padding taken off)."""
    names = max(len(shown(headers[i])) for i in keep[1:]) if keep[1:] else 0
    return (screen.width - names - 3 * (len(rows) + 1) - 1) / max(1, len(rows))


def natural_width(screen, renderable) -> int:
    """The width it takes unconstrained (console.measure caps it at the console's width)."""
    console = screen.console
    return Measurement.get(console, console.options.update_width(1_000_000), renderable).maximum


def plain_table(title: str | None, headers: list[str], rows: list[list], **kw) -> Table:
    """A plain table: title, headers and every cell shown (escaped)."""
    out = Table(title=None if title is None else shown(title), title_justify="left", **kw)
    for h in headers:
        out.add_column(shown(h), overflow="fold")
    for r in rows:
        out.add_row(*(shown(c) for c in r))
    return out


def _wide(title, headers, rows, keep, dim) -> Table:
    table = Table(title=shown(title), title_justify="left")
    for i in keep:
        table.add_column(shown(headers[i]), no_wrap=True)
    for r, d in zip(rows, dim, strict=True):
        table.add_row(*[shown(r[i]) for i in keep], style="dim" if d else None)
    return table


def _transposed(title, headers, rows, keep, dim, wrap: bool = False) -> Table:
    table = Table(title=shown(title), title_justify="left")
    table.add_column(shown(""), no_wrap=True, style="bold")
    for r, d in zip(rows, dim, strict=True):
        table.add_column(shown(r[0]), no_wrap=not wrap, overflow="fold", style="dim" if d else None)
    for i in keep[1:]:
        table.add_row(shown(headers[i]), *[shown(r[i]) for r in rows])
    return table


def _blocks(title, headers, rows, keep, dim, always: int) -> Group:
    parts = [markup("[italic]{}[/]", title)]
    for r, d in zip(rows, dim, strict=True):
        block = Table(show_header=False, box=None, padding=(0, 1), title=shown(r[0]), title_justify="left",
                      title_style="bold dim" if d else "bold")
        block.add_column(no_wrap=True, style="dim")
        block.add_column(overflow="fold")
        for i in keep[1:]:
            if r[i] != DASH or i < always:
                block.add_row(shown(headers[i]), shown(r[i]))
        parts.append(block)
    return Group(*parts)
