"""The compare view in the terminal: per workload a table of every figure the runs declare (laid out
to fit the width), the notes in words, and scaling."""

from __future__ import annotations

from rich.table import Table

from bench.analysis.cost import price_note
from bench.analysis.table import columns, record
from bench.render.format import DASH, figure_cell, num, percent, seconds, shown, with_ci
from bench.render.layout import fit

ALWAYS_SHOWN = 4  # run, device, the lead figure, the verdict: the rest only where some run has a value


def compare_cells(comp) -> tuple[list[str], list[tuple[list[str], bool]]]:
    """Headers and, per run, (plain-text cells, comparable): shared by the terminal, Markdown and
    HTML, each of which escapes the cells for its own medium."""
    cols = columns(comp)
    body = []
    for row in comp.rows:
        rec = record(row, comp, cols)
        cells = [figure_cell(c, rec) for c in cols]
        cells[0] = row.run.display + (" (published)" if row.run.published else "")
        body.append((cells, rec["comparable"]))
    return [c.header for c in cols], body


def compare_title(comp) -> str:
    return f"{comp.title} · {comp.main_metric} · baseline {comp.baseline.display}"


def compare_table(console, comp):
    headers, body = compare_cells(comp)
    return fit(console, compare_title(comp), headers, [cells for cells, _ in body], ALWAYS_SHOWN,
               [not ok for _, ok in body])


def run_notes(comp) -> list[tuple[str, str]]:
    """(run, sentence) pairs: the verdict and why, why a row is not comparable, what the warnings
    mean, where published figures came from."""
    notes = []
    for row in comp.rows:
        r, base = row.run, comp.baseline.name
        if r.published:
            notes.append((r.name, f"published figures, not measured by bench ({r.report.source or 'source not given'})"))
        if not row.comparable and not row.baseline:
            diffs = "; ".join(f"{k}: {r.params.get(k)!r} vs {comp.baseline.params.get(k)!r}" for k in row.differences)
            notes.append((r.name, f"vs {base}: not the same workload ({diffs})"))
        if not row.baseline and row.code not in ("not_comparable", "failed") and row.verdict:
            notes.append((r.name, f"vs {base}: {row.verdict}"))
        if row.code == "failed":
            notes.append((r.name, row.verdict))
        if row.mismatch:
            notes.append((r.name, f"vs {base}: output_mismatch: the outputs differ beyond the precision's tolerance, "
                                  f"so the speed compares different computations ({row.mismatch})"))
        for w in r.result.warnings:
            notes.append((r.name, f"{w.code}: {w.message}"))
        priced = price_note(r, comp.costing)
        if priced:
            notes.append((r.name, priced))
    return notes


def compare_notes(comp) -> list[str]:
    """The notes as plain sentences, each starting with its run."""
    return [f"{run}: {text}" if not text.startswith("vs ") else f"{run} {text}" for run, text in run_notes(comp)]


def print_comparisons(console, comparisons) -> None:
    for note in comparisons.notes:  # the terminal wraps a note, so a path in it stays whole for copying
        console.print(f"[yellow]note:[/] {shown(note)}", soft_wrap=True)
    for comp in comparisons:
        console.print(compare_table(console, comp))
        notes = compare_notes(comp)
        if notes:
            console.print("[bold yellow]Read before trusting these numbers:[/]")
            console.print(bullets(notes))
        console.print()


def bullets(lines: list[str]) -> Table:
    """One bullet per line, wrapped at the console's width under its own text."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row("•", shown(line))
    return grid


def scaling_table(groups: list[dict]) -> Table:
    """World size, global throughput with CI, and scaling efficiency, per workload."""
    table = Table(title="scaling (efficiency = throughput at N / (N x throughput at the smallest N))",
                  title_justify="left")
    for col in ("workload", "world size", "throughput [95% CI]", "efficiency"):
        table.add_column(col)
    for group in groups:
        for p in group["points"]:
            table.add_row(shown(group["workload"]), str(p["world_size"]),
                          with_ci(p) + f" {shown(group['metric'])}", percent(p["efficiency"]))
    return table


def serving_table(console, curves: list[dict]):
    """Per run: its SLO, its capacity with the bracket, and TTFT p99 at each offered rate."""
    headers = ["run", "device", "SLO TTFT", "capacity at the SLO", "USD/1k req at capacity",
               "TTFT p99 by offered rate (req/s)"]
    rows = []
    for c in curves:
        by_rate = " · ".join(f"{p['qps']:g}: {seconds(p['ttft_p99_s'])}{'' if p['slo_met'] in (True, None) else ' ✗'}"
                             for p in c["points"])
        rows.append([c["run"], c["device"], seconds(c["slo_ttft_s"]), c["capacity_text"], capacity_cost_cell(c),
                     by_rate])
    return fit(console, f"{curves[0]['workload']}: latency against offered load, and capacity", headers, rows, 4)


def capacity_cost_cell(curve: dict) -> str:
    usd = curve.get("usd_per_1k_requests_at_capacity")
    if usd is None:
        return DASH
    low = curve.get("usd_per_1k_requests_at_capacity_low")
    return f"{num(low, 3)}–{num(usd, 3)}" if low else num(usd, 3)
