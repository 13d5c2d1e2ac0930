"""The run view while it runs: workload i of n, the repeat, the phase, steps, rate and an ETA.

One live line, updated in place (never re-printed); a finished workload leaves one line above it.
The line is redrawn by rich's own thread, so its spinner and clock keep moving inside a long step.
The ETA of the current workload comes from its steps so far — across its repeat processes — plus
what setting up a repeat took the first time.
"""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench.model.report import variant_label
from bench.render.format import DASH, clock, markup, shown, with_ci

CPU_REFRESH_S = 1.0


class Eta:
    """Time left in one workload: steps left at the measured pace, plus each remaining repeat's
    set-up and warm-up as the first repeat took them."""

    def __init__(self, repeats: int, steps: int | None, warmup: int, budget: float | None):
        self.repeats, self.steps, self.warmup, self.budget = repeats, steps, warmup, budget
        self.repeat, self.phase, self.done = 0, "setup", 0
        self.step_s: float | None = None  # mean measured step of the latest repeat
        self.overhead_s: float | None = None  # first repeat: start to the first measured step
        self.repeat_t0 = self.phase_t0 = time.monotonic()

    def start_repeat(self, repeat: int) -> None:
        self.repeat, self.phase, self.done = repeat, "setup", 0
        self.repeat_t0 = time.monotonic()

    def progress(self, phase: str, done: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            if phase == "measure" and self.overhead_s is None:
                self.overhead_s = now - self.repeat_t0
            self.phase, self.phase_t0 = phase, now
        self.done = done
        if phase == "measure" and done:
            self.step_s = (now - self.phase_t0) / done  # kept into the next repeat until it has its own

    def seconds_left(self) -> float | None:
        if self.step_s is None or self.overhead_s is None:
            return None
        later = self.repeats - self.repeat - 1
        if self.budget is not None:
            now_left = max(0.0, self.budget - (time.monotonic() - self.phase_t0)) if self.phase == "measure" else \
                self.budget
            return now_left + later * (self.overhead_s + self.budget)
        steps = self.steps or 0
        left_now = (steps - self.done if self.phase == "measure" else steps) * self.step_s
        if self.phase != "measure":
            left_now += max(0.0, self.overhead_s - (time.monotonic() - self.repeat_t0))
        return left_now + later * (self.overhead_s + steps * self.step_s)


class RichView:
    """Draws the launcher's events (bench/launch/launcher.py NullView is the protocol)."""

    def __init__(self, screen):
        self.screen, self.console = screen, screen.console  # the live line is rich's; every line printed is the Screen's
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 TextColumn("{task.fields[eta]}"), TimeElapsedColumn(),
                                 console=self.console, transient=True, refresh_per_second=8)
        self.task = None
        self.plan: list[tuple[str, int]] = []
        self.eta: Eta | None = None
        self.label = ""
        self.cfg = None

    def begin(self, cfg, plan) -> None:
        self.cfg, self.plan = cfg, plan
        self.task = self.progress.add_task("starting", total=None, rate="", eta="")
        self.progress.start()

    def job(self, workload: str, index: int, repeat: int, variant: str | None = None) -> None:
        repeats = self.plan[index][1] if index < len(self.plan) else 1
        at = f" {variant}" if variant else ""
        self.label = shown(f"workload {index + 1}/{len(self.plan)} {workload}{at} · repeat {repeat + 1}/{repeats}")
        if repeat == 0 or self.eta is None:
            m = self.cfg.measure if self.cfg is not None else None
            self.eta = Eta(repeats, getattr(m, "steps", None), getattr(m, "warmup", 0) or 0,
                           getattr(m, "time_budget", None))
        self.eta.start_repeat(repeat)
        if not self.console.is_terminal:  # a log file gets no live bar: one line per repeat started instead
            self.screen.print(markup("{} ...", self.label), soft_wrap=True)
        self.progress.update(self.task, description=f"{self.label} · setting up", completed=0, total=None,
                             rate="", eta=self._eta())

    def event(self, event: dict) -> None:
        if self.task is None or event.get("rank", 0) != 0:
            return
        if event["event"] == "progress":
            phase, done, total = event["phase"], event["done"], event["total"]
            self.eta.progress(phase, done)
            step = self.eta.step_s
            rate = f"{1 / step:.2f} steps/s" if phase == "measure" and step else ""
            self.progress.update(self.task, description=f"{self.label} · {phase}", completed=done, total=total,
                                 rate=rate, eta=self._eta())

    def _eta(self) -> str:
        left = self.eta.seconds_left() if self.eta else None
        return "" if left is None else f"ETA {clock(left)}"

    def finished(self, result) -> None:
        metric = result.main_metric or "samples_per_s"
        value = with_ci(getattr(result.metrics, metric, None))
        unit = next((f.label for f in result.figures if f.lead), metric.replace("_per_s", "/s"))  # as compare names it
        colour = {"ok": "green", "failed": "red"}.get(result.status, "yellow")
        figure = f" {value} {unit}" if value != DASH else ""
        at = f" {variant_label(result.variant)}" if result.variant else ""
        line = f"{result.workload}{at}:{figure} ({len(result.timing.measured)} repeat(s))"
        self.screen.print(markup("[{}]{}[/] {}", colour, result.status, line), soft_wrap=False)

    def note(self, text: str) -> None:
        self.screen.print(shown(text))

    def end(self) -> None:
        self.progress.stop()
