"""The compare view in the terminal: one table per workload, notes in words, scaling."""

from __future__ import annotations

from rich.table import Table

from bench.analysis.compare import row_values
from bench.render.format import DASH, num, percent, seconds, shown, size, with_ci
from bench.render.summary import sparse_table


def _ci_cell(v: dict) -> str:
    return with_ci({"value": v["value"], "ci_low": v["ci_low"], "ci_high": v["ci_high"]})


def util_cell(v: dict) -> str:
    """Mean device utilization in the measured phase; '≤ max' where only a range was published."""
    if v["device_util_percent"] is not None:
        return f"{v['device_util_percent']:.0f} %"
    if v["device_util_max_percent"] is not None:
        return f"≤ {v['device_util_max_percent']:.0f} %"
    return DASH


ALWAYS_SHOWN = 4  # run, device, throughput, verdict: the rest only where some row has a value


def compare_cells(comp) -> tuple[list[str], list[tuple[list[str], bool]]]:
    """Column names and, per run, (plain-text cells, comparable): shared by the terminal table and
    the HTML page, each of which escapes the cells for its own medium."""
    cols = ["run", "device", f"{comp.main_metric} [95% CI]", "vs baseline", "step p50", "step p99",
            "peak mem", "util", "power", "J/sample", "exps", "ups", "tps", "ctps", "ltps", "MFU", "warnings"]
    body = []
    for row in comp.rows:
        v = row_values(row, comp.main_metric)
        origin = " (published)" if v["origin"] == "published" else ""
        body.append(([v["run"] + origin, v["device"], _ci_cell(v), v["verdict_text"],
                      seconds(v["step_p50_s"]), seconds(v["step_p99_s"]), size(v["peak_mem_bytes"]), util_cell(v),
                      DASH if v["device_power_w"] is None else f"{v['device_power_w']:.0f} W",
                      DASH if v["energy_per_sample_j"] is None else f"{v['energy_per_sample_j']:.3g}",
                      *[num(v[f"parlai_{k}"], 4) for k in ("exps", "ups", "tps", "ctps", "ltps")],
                      percent(v["mfu"]), v["warnings"] or DASH], v["comparable"]))
    return cols, body


def compare_table(comp) -> Table:
    """One row per run; columns that hold nothing but "—" for every run are left out."""
    cols, body = compare_cells(comp)
    rows = [([shown(c) for c in cells], None if ok else "dim") for cells, ok in body]
    title = f"{comp.workload} · {comp.main_metric} · baseline {comp.baseline.display}"
    return sparse_table(title, cols, rows, ALWAYS_SHOWN)


def compare_notes(comp) -> list[str]:
    """Plain sentences: why rows are not comparable, what the warnings mean, where figures came from."""
    notes = []
    for row in comp.rows:
        r = row.run
        if r.published:
            notes.append(f"{r.name}: published figures, not measured by bench ({r.report.source or 'source not given'})")
        if not row.comparable and not row.baseline:
            diffs = "; ".join(f"{k}: {r.params.get(k)!r} vs {comp.baseline.params.get(k)!r}" for k in row.differences)
            notes.append(f"{r.name} vs {comp.baseline.name}: not the same workload ({diffs})")
        if row.mismatch:
            notes.append(f"{r.name} vs {comp.baseline.name}: output_mismatch: the outputs differ beyond the "
                         f"precision's tolerance, so the speed compares different computations ({row.mismatch})")
        for w in r.result.warnings:
            notes.append(f"{r.name}: {w.code}: {w.message}")
    return notes


def print_comparisons(console, comparisons) -> None:
    for note in comparisons.notes:
        console.print(f"[yellow]note:[/] {shown(note)}")
    for comp in comparisons:
        console.print(compare_table(comp))
        notes = compare_notes(comp)
        if notes:
            console.print("[bold yellow]Read before trusting these numbers:[/]")
        for note in notes:
            console.print(f"  • {shown(note)}")
        console.print()


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
