"""The compare view in the terminal: per workload a table of every figure the runs declare (laid out
to fit the width), the notes in words, then scaling, serving curves and the gates."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from bench.render import words
from bench.render.format import NOTE_CHARS, DASH, figure_cell, header, markup, num, percent, seconds, shown, with_ci
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
    return f"{comp.title} · {comp.lead.label.replace(' [95% CI]', '')} · baseline {words.display(comp.baseline)}"


def compare_table(screen, comp):
    headers, body = compare_cells(comp)
    return fit(screen, compare_title(comp), headers, [cells for cells, _ in body], ALWAYS_SHOWN,
               [not ok for _, ok in body])


def run_notes(comp) -> list[tuple[str, str]]:
    """(run, what to know) pairs: the verdict and why, why a row is not comparable, what the
    warnings mean, where published figures came from, how it was priced."""
    return [(note.run, words.note_text(note)) for row in comp.rows for note in row.notes]


def compare_notes(comp, verbose: bool = True) -> list[str]:
    """The notes as plain sentences, each starting with its run; without `verbose`, the verdicts (and
    why a row has none) in full and every other cause in one line, with how many rows it concerns."""
    notes = [note for row in comp.rows for note in row.notes]
    if verbose:
        return [words.sentence(note) for note in notes]
    full = [words.sentence(n) for n in notes if n.code in IN_FULL]
    return full + [words.cause_line(key, runs) for key, runs in _causes(n for n in notes if n.code not in IN_FULL)]


# the answer, why there is none and what would give one, and how the cost shown was priced: always in full
IN_FULL = ("verdict", "not_comparable", "failed", "published", "output_mismatch", "settle", "priced", "unpriced")


def _causes(notes) -> list[tuple[tuple[str, str | None], list[str]]]:
    """((code, a warning's own code), the runs it concerns) in first-seen order."""
    by: dict[tuple[str, str | None], list[str]] = {}
    for n in notes:
        key = (n.code, n.values.get("code") if n.code == "warning" else None)
        by.setdefault(key, [])
        if n.run not in by[key]:
            by[key].append(n.run)
    return list(by.items())


def print_notes(screen, comparison) -> None:
    """One line per cause: a note that several workloads share (a capacity search's rates that only one box
    probed, say) is said once, with its count and the other workloads named."""
    by: dict[str, list] = {}
    for note in comparison.notes:
        by.setdefault(note.code if "workload" in note.values else note.model_dump_json(), []).append(note)
    for same in by.values():  # the terminal wraps a note, so a path in it stays whole for copying
        text = words.sentence(same[0])
        if len(same) > 1:
            text += f" (the same for {len(same) - 1} more: {', '.join(n.values['workload'] for n in same[1:])})"
        count = f" ×{len(same)}" if len(same) > 1 else ""
        screen.print(markup("[yellow]note{}:[/] {}", count, shown(text, NOTE_CHARS)), soft_wrap=True)


def print_comparison(screen, comparison, verbose: bool = True) -> None:
    """Studies' decisions first, then the serving curves (the capacity at the SLOs is what a serving
    comparison answers), then every workload's table and notes, then scaling."""
    from bench.render.decision_view import print_decisions

    print_decisions(screen, comparison.decisions)
    print_notes(screen, comparison)
    if comparison.serving:
        screen.print(serving_table(screen, comparison.serving))
        screen.print()
    for comp in comparison:
        screen.print(compare_table(screen, comp))
        notes = compare_notes(comp, verbose)
        if notes:
            screen.print(markup("[bold yellow]Read before trusting these numbers:[/]"))
            screen.print(bullets(notes))
        screen.print()
    if not verbose and any(n.code not in IN_FULL for comp in comparison for row in comp.rows for n in row.notes):
        screen.print(markup("[dim]each note in full: --verbose, or --json[/]"))
    if comparison.scaling:
        screen.print(scaling_table(comparison.scaling))


def print_gates(screen, comparison) -> None:
    """Each gate that did not pass: a regression, or one that could not be ruled out."""
    for g in comparison.gates:
        if g.outcome == "fail":
            screen.print(markup("[red]regression:[/] {}", shown(words.gate_text(g), NOTE_CHARS)))
        elif g.outcome != "pass":
            screen.print(markup("[yellow]gate inconclusive:[/] {}", shown(words.gate_text(g), NOTE_CHARS)))


def bullets(lines: list[str]) -> Table:
    """One bullet per line, wrapped at the console's width under its own text."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=3, justify="right")
    grid.add_column(overflow="fold")
    for line in lines:
        grid.add_row(shown("•"), shown(line, NOTE_CHARS))
    return grid


def scaling_table(groups) -> Group:
    """World size, global throughput with CI, threads per rank and scaling efficiency, per workload;
    then what the efficiencies cannot be read without."""
    rows = [[group.workload, str(p.world_size), DASH if p.threads is None else str(p.threads),
             f"{with_ci(p)} {group.unit or group.metric}", percent(p.efficiency)]
            for group in groups for p in group.points]
    table = plain_table("scaling (efficiency = throughput at N / (N x throughput at the smallest N))",
                        ["workload", "world size", "threads a rank", "throughput [95% CI]", "efficiency"], rows)
    notes = [f"{g.workload}: {words.sentence(n)}" for g in groups for n in g.notes]
    return Group(table, bullets(notes)) if notes else Group(table)


def serving_table(screen, curves):
    """Per run: who served, its SLOs, its capacity with the bracket, and TTFT, TPOT p99 at each offered
    rate (✗ missed, ? a verdict its requests cannot support: each rate's row says why, above)."""
    headers = ["run", "device", "served by", "SLO TTFT", "SLO TPOT", "capacity at the SLO", "USD/1k req at capacity",
               "TTFT p99 by offered rate (req/s)", "TPOT p99 by offered rate"]
    rows = [[c.run, c.device, words.served_text(c.served), seconds(c.slo_ttft_s), seconds(c.slo_tpot_s),
             words.capacity_text(c.capacity), capacity_cost_cell(c), by_rate(c, "ttft_p99_s"), by_rate(c, "tpot_p99_s")]
            for c in curves]
    return fit(screen, f"{curves[0].workload}: latency against offered load, and capacity", headers, rows, 4)


def by_rate(curve, field: str) -> str:
    slo = field.split("_")[0]  # ttft_p99_s: the TTFT SLO's marks
    return " · ".join(f"{p.qps:.3g}: {seconds(getattr(p, field))}{_mark(p, slo)}" for p in curve.points)


def _mark(point, slo: str) -> str:
    """✗ where this SLO's p99 missed its bound at the rate; ? where its verdict there is provisional (too few
    requests); nothing where the figure has no SLO."""
    return (" ✗" if slo in point.missed else "") + ("?" if slo in point.provisional else "")


def capacity_cost_cell(curve) -> str:
    if curve.cost is None:
        return DASH
    low = curve.cost.usd_low
    return f"{num(low, 3)}–{num(curve.cost.usd, 3)}" if low else num(curve.cost.usd, 3)
