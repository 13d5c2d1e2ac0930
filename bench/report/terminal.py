"""Terminal output (rich): live progress during a run and its summary table."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from bench.report.format import DASH, flops, percent, seconds, size, with_ci

CPU_REFRESH_S = 0.5


class RichProgress:
    """Per-workload bar: phase, step M/N, it/s and the live CPU % of this process."""

    def __init__(self, console: Console):
        import psutil

        self.proc = psutil.Process()
        self.proc.cpu_percent(None)
        self.cpu, self.cpu_at = 0.0, 0.0
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TextColumn("CPU {task.fields[cpu]}"), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.task = None
        self.phase, self.phase_t0 = None, 0.0

    def start(self, workload: str, total: int | None) -> None:
        self.name = workload
        self.progress.start()
        self.task = self.progress.add_task(escape(workload), total=total, rate="", cpu="")

    def update(self, phase: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.phase_t0 = phase, now
        if now - self.cpu_at >= CPU_REFRESH_S:
            self.cpu, self.cpu_at = self.proc.cpu_percent(None), now
        elapsed = now - self.phase_t0
        rate = f"{done / elapsed:.2f} it/s" if elapsed > 0 and phase == "measure" else ""
        label = f"{escape(self.name)} · {phase}"
        self.progress.update(self.task, description=label, completed=done, total=total, rate=rate,
                             cpu=f"{self.cpu:.0f}%")

    def stop(self) -> None:
        self.progress.stop()


def _warnings(result) -> str:
    return ", ".join(sorted(result.codes()))


def sparse_table(title: str, cols: list[str], rows: list[tuple[list[str], str | None]], always: int) -> Table:
    """A table without the columns (past the first `always`) that hold only "—" in every row."""
    keep = [i for i in range(len(cols)) if i < always or any(cells[i] != DASH for cells, _ in rows)]
    table = Table(title=escape(title), title_justify="left")
    for i in keep:
        table.add_column(cols[i], overflow="fold", no_wrap=i == 0)
    for cells, style in rows:
        table.add_row(*[cells[i] for i in keep], style=style)
    return table


def run_summary(report) -> Table:
    device = report.environment.device
    title = f"bench run {report.run_id[:8]} · {device.get('backend', '?')} · {device.get('device_name') or ''}"
    if report.distributed:
        d = report.distributed
        title += f" · world size {d.world_size} ({d.backend}; throughput summed over ranks)"
    cols = ["workload", "status", "samples/s [95% CI]", "tokens/s [95% CI]", "step p50", "first step",
            "FLOP/s", "MFU", "peak mem", "energy/sample", "warnings"]
    rows = []
    for r in report.results:
        m, mem = r.metrics, r.memory
        energy = r.energy.device.per_sample_j if r.energy.device else None
        rows.append(([escape(r.workload), _status(r), with_ci(m.samples_per_s), with_ci(m.tokens_per_s),
                      seconds(m.step_time_s.median if m.step_time_s else None), seconds(r.timing.first_step_s),
                      flops(m.achieved_flops_per_s), percent(m.mfu.value if m.mfu else None),
                      size(mem.device_peak_bytes or mem.host_peak_rss_bytes),
                      DASH if energy is None else f"{energy:.3g} J", escape(_warnings(r)) or DASH], None))
    return sparse_table(title, cols, rows, always=4)


def _status(result) -> str:
    colour = {"ok": "green", "failed": "red", "skipped": "yellow", "interrupted": "yellow"}[result.status]
    return f"[{colour}]{result.status}[/]"


def print_problems(console: Console, report) -> None:
    """Errors of failed or skipped workloads, unavailable collectors, and warnings in words."""
    for r in report.results:
        if r.error:
            console.print(f"[bold]{escape(r.workload)}[/]: {escape(r.error)}")
        for w in r.warnings:
            console.print(f"[yellow]warning[/] {escape(r.workload)}: {escape(w.message)}")
    for name, status in report.telemetry.collectors.items():
        if not status.available:
            console.print(f"[dim]collector {escape(name)} unavailable: {escape(status.reason or '')}[/]")


# ---- bench compare -------------------------------------------------------------------------------

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
    from bench.compare import row_values
    from bench.report.format import num

    cols = ["run", "device", f"{comp.main_metric} [95% CI]", "vs baseline", "step p50", "step p99",
            "peak mem", "util", "power", "J/sample", "exps", "ups", "tps", "ctps", "ltps", "MFU", "warnings"]
    body = []
    for row in comp.rows:
        v = row_values(row, comp.main_metric)
        origin = " (published)" if v["origin"] == "published" else ""
        body.append(([v["run"] + origin, v["device"], _ci_cell(v), v["verdict"],
                      seconds(v["step_p50_s"]), seconds(v["step_p99_s"]), size(v["peak_mem_bytes"]), util_cell(v),
                      DASH if v["device_power_w"] is None else f"{v['device_power_w']:.0f} W",
                      DASH if v["energy_per_sample_j"] is None else f"{v['energy_per_sample_j']:.3g}",
                      *[num(v[f"parlai_{k}"], 4) for k in ("exps", "ups", "tps", "ctps", "ltps")],
                      percent(v["mfu"]), v["warnings"] or DASH], v["comparable"]))
    return cols, body


def compare_table(comp) -> Table:
    """One row per run; columns that hold nothing but "—" for every run are left out."""
    cols, body = compare_cells(comp)
    rows = [([escape(c) for c in cells], None if ok else "dim") for cells, ok in body]
    title = f"{comp.workload} · {comp.main_metric} · baseline {comp.baseline.name}"
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
        for w in r.result.warnings:
            notes.append(f"{r.name}: {w.code}: {w.message}")
    return notes


def print_comparisons(console, comparisons) -> None:
    for comp in comparisons:
        console.print(compare_table(comp))
        notes = compare_notes(comp)
        if notes:
            console.print("[bold yellow]Read before trusting these numbers:[/]")
        for note in notes:
            console.print(f"  • {escape(note)}")
        console.print()


def scaling_table(groups: list[dict]) -> Table:
    """World size, global throughput with CI, and scaling efficiency, per workload."""
    table = Table(title="scaling (efficiency = throughput at N / (N x throughput at the smallest N))",
                  title_justify="left")
    for col in ("workload", "world size", "throughput [95% CI]", "efficiency"):
        table.add_column(col)
    for group in groups:
        for p in group["points"]:
            table.add_row(escape(group["workload"]), str(p["world_size"]),
                          with_ci(p) + f" {escape(group['metric'])}", percent(p["efficiency"]))
    return table
