"""The run view while it runs: which workload of how many, which repeat, the phase, steps, rate."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.render.format import shown

CPU_REFRESH_S = 0.5


class RichView:
    """Draws the launcher's events (bench/launch/launcher.py NullView is the protocol)."""

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
        self.plan: list[tuple[str, int]] = []
        self.phase, self.phase_t0 = None, 0.0

    def begin(self, cfg, plan) -> None:
        self.plan = plan
        self.progress.start()

    def job(self, workload: str, index: int, repeat: int) -> None:
        repeats = self.plan[index][1] if index < len(self.plan) else 1
        label = f"{shown(workload)} ({index + 1}/{len(self.plan)}) · repeat {repeat + 1}/{repeats}"
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.label = label
        self.task = self.progress.add_task(label + " · starting", total=None, rate="", cpu="")

    def event(self, event: dict) -> None:
        if self.task is None or event.get("rank", 0) != 0:
            return
        if event["event"] == "phase":
            self.progress.update(self.task, description=f"{self.label} · {event['phase']['phase']} done")
        elif event["event"] == "progress":
            self._progress(event["phase"], event["done"], event["total"])

    def _progress(self, phase: str, done: int, total) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.phase_t0 = phase, now
        if now - self.cpu_at >= CPU_REFRESH_S:
            self.cpu, self.cpu_at = self.proc.cpu_percent(None), now
        elapsed = now - self.phase_t0
        rate = f"{done / elapsed:.2f} it/s" if elapsed > 0 and phase == "measure" else ""
        self.progress.update(self.task, description=f"{self.label} · {phase}", completed=done, total=total,
                             rate=rate, cpu=f"{self.cpu:.0f}%")

    def finished(self, result) -> None: ...

    def note(self, text: str) -> None:
        self.progress.console.print(shown(text))

    def end(self) -> None:
        self.progress.stop()
