"""The run view's end: a summary table of the report and the problems in words."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bench.render.format import DASH, flops, percent, seconds, shown, size, with_ci


def _warnings(result) -> str:
    return ", ".join(sorted(result.codes()))


def sparse_table(title: str, cols: list[str], rows: list[tuple[list[str], str | None]], always: int) -> Table:
    """A table without the columns (past the first `always`) that hold only "—" in every row."""
    keep = [i for i in range(len(cols)) if i < always or any(cells[i] != DASH for cells, _ in rows)]
    table = Table(title=shown(title), title_justify="left")
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
        rows.append(([shown(r.workload), _status(r), with_ci(m.samples_per_s), with_ci(m.tokens_per_s),
                      seconds(m.step_time_s.median if m.step_time_s else None), seconds(r.timing.first_step_s),
                      flops(m.achieved_flops_per_s), percent(m.mfu.value if m.mfu else None),
                      size(mem.device_peak_bytes or mem.host_peak_rss_bytes),
                      DASH if energy is None else f"{energy:.3g} J", shown(_warnings(r)) or DASH], None))
    return sparse_table(title, cols, rows, always=4)


def _status(result) -> str:
    colour = {"ok": "green", "failed": "red", "skipped": "yellow", "interrupted": "yellow"}[result.status]
    return f"[{colour}]{result.status}[/]"


def print_problems(console: Console, report) -> None:
    """Errors of failed or skipped workloads, unavailable collectors, and warnings in words."""
    for r in report.results:
        if r.error:
            console.print(f"[bold]{shown(r.workload)}[/]: {shown(r.error)}")
        for w in r.warnings:
            console.print(f"[yellow]warning[/] {shown(r.workload)}: {shown(w.message)}")
    for name, status in report.telemetry.collectors.items():
        if not status.available:
            console.print(f"[dim]collector {shown(name)} unavailable: {shown(status.reason or '')}[/]")
