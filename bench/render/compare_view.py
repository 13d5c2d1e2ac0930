"""The compare view in the terminal: per workload a table of every figure the runs declare (laid out
to fit the width), the notes in words, then scaling, serving curves and the gates."""

from __future__ import annotations

from rich.table import Table

from bench.render import words
from bench.render.format import DASH, figure_cell, header, markup, num, percent, seconds, shown, with_ci
from bench.render.layout import fit, plain_table
from bench.render.records import record

ALWAYS_SHOWN = 4  # run, device, the lead figure, the verdict: the rest only where some run has a value


def compare_cells(comp) -> tuple[list[str], list[tuple[list[str], bool]]]:
    """Headers and, per run, (plain-text cells, comparable): shared by the terminal, Markdown and
    HTML, each of which escapes the cells for its own medium."""
    body = []
    for row in comp.rows:
        rec = record(row, comp)
        cells = [figure_cell(c, rec) for c in comp.columns]
        cells[0] = words.display(row.run) + (" (published)" if row.run.published else "")
        body.append((cells, row.comparable))
    return [header(c) for c in comp.columns], body


def compare_title(comp) -> str:
    return f"{comp.title} · {comp.main_metric} · baseline {words.display(comp.baseline)}"


def compare_table(screen, comp):
    headers, body = compare_cells(comp)
    return fit(screen, compare_title(comp), headers, [cells for cells, _ in body], ALWAYS_SHOWN,
               [not ok for _, ok in body])


def run_notes(comp) -> list[tuple[str, str]]:
    """(run, what to know) pairs: the verdict and why, why a row is not comparable, what the
    warnings mean, where published figures came from, how it was priced."""
    return [(note.run, words.note_text(note)) for row in comp.rows for note in row.notes]


def compare_notes(comp) -> list[str]:
    """The notes as plain sentences, each starting with its run."""
    return [words.sentence(note) for row in comp.rows for note in row.notes]


def print_notes(screen, comparison) -> None:
    for note in comparison.notes:  # the terminal wraps a note, so a path in it stays whole for copying
        screen.print(markup("[yellow]note:[/] {}", words.sentence(note)), soft_wrap=True)


def print_comparison(screen, comparison) -> None:
    """Every workload's table and notes, then scaling and the serving curves."""
    print_notes(screen, comparison)
    for comp in comparison:
        screen.print(compare_table(screen, comp))
        notes = compare_notes(comp)
        if notes:
            screen.print(markup("[bold yellow]Read before trusting these numbers:[/]"))
            screen.print(bullets(notes))
        screen.print()
    if comparison.scaling:
        screen.print(scaling_table(comparison.scaling))
    if comparison.serving:
        screen.print(serving_table(screen, comparison.serving))


def print_gates(screen, comparison) -> None:
    """Each gate that did not pass: a regression, or one that could not be ruled out."""
    for g in comparison.gates:
        if g.outcome == "fail":
            screen.print(markup("[red]regression:[/] {}", words.gate_text(g)))
        elif g.outcome != "pass":
            screen.print(markup("[yellow]gate inconclusive:[/] {}", words.gate_text(g)))


def bullets(lines: list[str]) -> Table:
    """One bullet per line, wrapped at the console's width under its own text."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row(shown("•"), shown(line))
    return grid


def scaling_table(groups) -> Table:
    """World size, global throughput with CI, and scaling efficiency, per workload."""
    rows = [[group.workload, str(p.world_size), f"{with_ci(p)} {group.metric}", percent(p.efficiency)]
            for group in groups for p in group.points]
    return plain_table("scaling (efficiency = throughput at N / (N x throughput at the smallest N))",
                       ["workload", "world size", "throughput [95% CI]", "efficiency"], rows)


def serving_table(screen, curves):
    """Per run: its SLO, its capacity with the bracket, and TTFT p99 at each offered rate."""
    headers = ["run", "device", "SLO TTFT", "capacity at the SLO", "USD/1k req at capacity",
               "TTFT p99 by offered rate (req/s)"]
    rows = []
    for c in curves:
        by_rate = " · ".join(f"{p.qps:g}: {seconds(p.ttft_p99_s)}{'' if p.slo_met in (True, None) else ' ✗'}"
                             for p in c.points)
        rows.append([c.run, c.device, seconds(c.slo_ttft_s), words.capacity_text(c.capacity), capacity_cost_cell(c),
                     by_rate])
    return fit(screen, f"{curves[0].workload}: latency against offered load, and capacity", headers, rows, 4)


def capacity_cost_cell(curve) -> str:
    if curve.cost is None:
        return DASH
    low = curve.cost.usd_low
    return f"{num(low, 3)}–{num(curve.cost.usd, 3)}" if low else num(curve.cost.usd, 3)
