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


def _warnings(result: dict) -> str:
    codes = sorted({w["code"] for w in result.get("warnings", [])})
    return ", ".join(codes) if codes else ""


def run_summary(report: dict) -> Table:
    device = report["environment"].get("device", {})
    title = f"bench run {report['run_id'][:8]} · {device.get('backend', '?')} · {device.get('device_name') or ''}"
    table = Table(title=escape(title), title_justify="left")
    for col in ("workload", "status", "samples/s [95% CI]", "tokens/s [95% CI]", "step p50",
                "first step", "FLOP/s", "MFU", "peak mem", "energy/sample", "warnings"):
        table.add_column(col, overflow="fold", no_wrap=col == "workload")
    for r in report["results"]:
        m = r.get("metrics", {})
        mem = r.get("memory", {})
        peak = mem.get("device_peak_bytes") or mem.get("host_peak_rss_bytes")
        energy = (r.get("energy") or {}).get("per_sample_j")
        table.add_row(escape(r["workload"]), _status(r), with_ci(m.get("samples_per_s")),
                      with_ci(m.get("tokens_per_s")), seconds((m.get("step_time_s") or {}).get("median")),
                      seconds(r["timing"].get("first_step_s")), flops(m.get("achieved_flops_per_s")),
                      percent((m.get("mfu") or {}).get("value")), size(peak),
                      DASH if energy is None else f"{energy:.3g} J", escape(_warnings(r)))
    return table


def _status(result: dict) -> str:
    colour = {"ok": "green", "failed": "red", "skipped": "yellow", "interrupted": "yellow"}[result["status"]]
    return f"[{colour}]{result['status']}[/]"


def print_problems(console: Console, report: dict) -> None:
    """Errors of failed or skipped workloads, unavailable collectors, and warnings in words."""
    for r in report["results"]:
        if r["error"]:
            console.print(f"[bold]{escape(r['workload'])}[/]: {escape(r['error'])}")
        for w in r.get("warnings", []):
            console.print(f"[yellow]warning[/] {escape(r['workload'])}: {escape(w['message'])}")
    for name, status in report["telemetry"]["collectors"].items():
        if not status.get("available"):
            console.print(f"[dim]collector {escape(name)} unavailable: {escape(status.get('reason', ''))}[/]")
