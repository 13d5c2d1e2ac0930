"""The run view while it runs: workload i of n, the repeat, the phase, work done, an ETA, the time
elapsed and the rate — one live line, updated in place, that fits the terminal's width (what
matters most is kept when it is narrow: 80 columns hold the counts and both times). A finished
workload leaves one line above it. The line is redrawn by rich's own thread, so its clocks keep
moving inside a long step.

The ETA is the plan's (bench/launch/plan.py), at each workload's own pace: what is left of the current
workload — steps or requests of this repeat, the repeats after it, the offered rates after this one — at
the pace measured so far (across its repeat processes), plus each remaining repeat's set-up and warm-up
as the last one took them; before any pace is measured, the plan's estimate less the time it has run;
then the plan's estimates of the workloads after it. Events carry
the worker's own clock reading (CLOCK_MONOTONIC, one clock for every process of the machine), so a
batch of events read at once does not make a pace of zero seconds. Work left never reads 0:00: a
step or request that has run past the pace makes the ETA a lower bound (`ETA ≥0:05`).
"""

from __future__ import annotations

import time

from rich.progress import Progress, ProgressColumn, SpinnerColumn

from bench.analysis.table import lead_interval
from bench.model.derive import lead_estimate, lead_spec
from bench.model.report import variant_label
from bench.core.text import terminal_safe
from bench.render.format import DASH, Shown, clock, lead_text, markup, num, shown

MIN_PACE_S = 0.5  # a rate is shown once the phase has run this long (and one unit is done)
BAR = 12


class Eta:
    """Time left in one workload."""

    def __init__(self, repeats: int, budget: float | None = None, min_steps: int = 0, variants: int | None = 1,
                 planned_s: float | None = None, at: float | None = None):
        self.repeats, self.budget, self.min_steps, self.variants = repeats, budget, min_steps, variants
        self.planned_s = planned_s  # the plan's estimate of the whole workload (None: no plan)
        self.started = time.monotonic() if at is None else at
        self.repeat, self.variant = 0, 0
        self.phase, self.done, self.total = "setup", 0, None
        self.units: int | None = None  # of the measured phase: steps or requests (None: a time budget)
        self.unit_s: float | None = None  # seconds a measured unit took, the latest repeat's
        self.overhead_s: float | None = None  # start of a repeat to its first measured unit, the latest
        self.repeat_t0 = self.phase_t0 = self.last_t = time.monotonic()

    def start_repeat(self, repeat: int, variant: int = 0, at: float | None = None) -> None:
        self.repeat, self.variant, self.phase, self.done, self.total = repeat, variant, "setup", 0, None
        self.repeat_t0 = self.phase_t0 = self.last_t = time.monotonic() if at is None else at

    def progress(self, phase: str, done: int, total: int | None, at: float | None = None) -> None:
        now = time.monotonic() if at is None else at
        if phase != self.phase:
            if phase == "measure":
                self.overhead_s = now - self.repeat_t0
            self.phase, self.phase_t0, self.last_t = phase, now, now
        if done != self.done:
            self.last_t = now
        self.done, self.total = done, total
        if phase == "measure":
            self.units = total
            if done:
                self.unit_s = max(self.last_t - self.phase_t0, 1e-9) / done

    def rate(self, now: float | None = None) -> float | None:
        """Measured units per second of the current phase, once it means something."""
        now = time.monotonic() if now is None else now
        if self.phase != "measure" or not self.done or self.last_t - self.phase_t0 < MIN_PACE_S:
            return None
        return self.done / (self.last_t - self.phase_t0)

    def _measure_s(self) -> float | None:
        """A whole measured phase at the pace so far."""
        if self.budget is not None:
            return max(self.budget, self.min_steps * self.unit_s)
        return None if self.units is None else self.units * self.unit_s

    def _current(self, now: float) -> tuple[float, bool]:
        """(seconds left of this repeat, whether that is a lower bound)."""
        since = now - self.last_t
        if self.phase == "measure":
            if self.budget is not None:
                left_steps = max(0, self.min_steps - self.done)
                left = max(self.budget - (now - self.phase_t0), left_steps * self.unit_s - since)
                return (left, False) if left > 0 else (0.0, True)  # the last step still runs
            work = max(0, (self.units or 0) - self.done)
            if not work:
                return 0.0, False
            left = work * self.unit_s - since
            rest = (work - 1) * self.unit_s
            return (left, False) if left > 0 else (rest, True)  # the unit in flight ran past the pace
        setup = self.overhead_s - (now - self.repeat_t0)
        return max(0.0, setup) + self._measure_s(), setup < 0

    def seconds_left(self, now: float | None = None) -> tuple[float, bool] | None:
        """(seconds, lower bound) left in this workload; None before any pace is known."""
        now = time.monotonic() if now is None else now
        if self.unit_s is None or self.overhead_s is None or self._measure_s() is None:
            return self._planned_left(now)
        current, lower = self._current(now)
        per_repeat = self.overhead_s + self._measure_s()
        later = self.repeats - self.repeat - 1
        if self.variants is None:  # a search that chooses its next rate as it goes
            lower = True
        else:
            later += max(0, self.variants - self.variant - 1) * self.repeats
        left = current + later * per_repeat
        return max(left, 1.0), lower  # work is left: never 0:00


    def _planned_left(self, now: float) -> tuple[float, bool] | None:
        """Before a pace is measured: the plan's estimate less the time the workload has run (a lower
        bound once it has run past it)."""
        if self.planned_s is None:
            return None
        left = self.planned_s - (now - self.started)
        return (left, False) if left >= 1.0 else (1.0, True)


def eta_text(eta: Eta | None, now: float | None = None, later_s: float = 0.0) -> str:
    """`ETA 1:05`: what is left of the workload, and the plan's estimates of those after it."""
    left = eta.seconds_left(now) if eta else None
    if left is None:
        return ""
    seconds, lower = left
    return f"ETA {'≥' if lower else ''}{clock(seconds + later_s)}"


class LineColumn(ProgressColumn):
    """The whole live line, fitted to the console's width."""

    def __init__(self, view):
        super().__init__()
        self.view = view

    def render(self, task) -> Shown:
        # the spinner and the column's padding take 2 of the width; the line is fitted to the rest
        return shown(self.view.line(task.elapsed or 0.0, self.view.console.width - 2))


KEEP = 4  # parts of this priority or more important are kept, the workload's name shortened first
MIN_NAME = 12


def fit_line(parts: list[tuple[int, str]], width: int) -> str:
    """The parts (priority, text; 0 most important), in their order and at most `width` wide: the
    least important left out first (rate, bar), then the first part (the workload's name) shortened,
    then the rest left out, most important last."""
    kept = [list(p) for p in parts if p[1]]

    def text():
        return " · ".join(t for _, t in kept)

    def drop(floor):
        while len(text()) > width and any(p > floor for p, _ in kept):
            kept.pop(max(range(len(kept)), key=lambda i: (kept[i][0], i)))

    drop(KEEP)
    over = len(text()) - width
    if over > 0 and kept:
        name = kept[0][1]
        kept[0][1] = name[:max(MIN_NAME, len(name) - over - 1)] + "…" if len(name) > MIN_NAME else name
    drop(0)
    line = text()
    return line if len(line) <= width else line[:max(0, width - 1)] + "…"


def bar(done: int, total: int | None) -> str:
    if not total:
        return ""
    n = min(BAR, round(BAR * done / total))
    return "[" + "#" * n + "-" * (BAR - n) + "]"


class RichView:
    """Draws the launcher's events (bench/launch/launcher.py NullView is the protocol). A plan entry
    is (workload, repeats[, variants[, unit]]): variants None where they are chosen as it goes."""

    def __init__(self, screen):
        self.screen, self.console = screen, screen.console  # the live line is rich's; every line printed is the Screen's
        self.progress = Progress(SpinnerColumn(), LineColumn(self), console=self.console, transient=True,
                                 refresh_per_second=8)
        self.task = None
        self.plan: list[tuple] = []
        self.eta: Eta | None = None
        self.where = ("", 0, 1, None)  # workload, index, repeat, variant
        self.unit = "steps"
        self.cfg = None
        self._variants: dict[int, list[str | None]] = {}

    def begin(self, cfg, plan) -> None:
        self.cfg, self.plan = cfg, list(plan)
        self.task = self.progress.add_task("starting", total=None)
        self.progress.start()

    def _entry(self, index: int) -> tuple[int, int | None, str]:
        entry = tuple(self.plan[index]) if index < len(self.plan) else ("", 1)
        repeats = entry[1] if len(entry) > 1 else 1
        variants = entry[2] if len(entry) > 2 else 1
        return repeats, variants, entry[3] if len(entry) > 3 else "steps"

    def planned(self, index: int) -> float | None:
        """The plan's estimate of a workload, where the launcher gave one (the entry's fifth item)."""
        entry = tuple(self.plan[index]) if index < len(self.plan) else ()
        return entry[4] if len(entry) > 4 else None

    def later_s(self, index: int) -> float:
        return sum(self.planned(i) or 0.0 for i in range(index + 1, len(self.plan)))

    def job(self, workload: str, index: int, repeat: int, variant: str | None = None) -> None:
        repeats, variants, self.unit = self._entry(index)
        seen = self._variants.setdefault(index, [])
        if not seen or seen[-1] != variant:
            seen.append(variant)
        m = self.cfg.measure if self.cfg is not None else None
        if self.eta is None or (repeat == 0 and len(seen) == 1):
            self.eta = Eta(repeats, getattr(m, "time_budget", None), getattr(m, "min_steps", 0) or 0, variants,
                           self.planned(index))
        self.eta.start_repeat(repeat, len(seen) - 1)
        self.where = (workload, index, repeat, variant)
        if not self.console.is_terminal:  # a log file gets no live bar: one line per repeat started instead
            self.screen.print(markup("{} ...", self.label()), soft_wrap=True)

    def label(self) -> str:
        workload, index, repeat, variant = self.where
        repeats = self._entry(index)[0]
        at = f" {variant}" if variant else ""
        return f"workload {index + 1}/{len(self.plan)} {workload}{at} · repeat {repeat + 1}/{repeats}"

    def event(self, event: dict) -> None:
        if self.task is None or event.get("rank", 0) != 0 or event["event"] != "progress" or self.eta is None:
            return
        at = event.get("t")
        self.eta.progress(event["phase"], event["done"], event["total"], at if isinstance(at, int | float) else None)

    def line(self, elapsed: float, width: int) -> str:
        """The live line for a width: workload, repeat and phase first, then the counts, the ETA and
        the time elapsed, then the rate and the bar."""
        workload, index, repeat, variant = self.where
        if self.eta is None:
            return fit_line([(0, "starting")], width)
        e = self.eta
        repeats = self._entry(index)[0]
        unit = self.unit if e.phase == "measure" else "steps"
        count = f"{e.done}/{e.total} {unit}" if e.total else (f"{e.done} {unit}" if e.done else "")
        rate = e.rate()
        at = f" {variant}" if variant else ""
        phase = e.phase if e.phase != "setup" else "setting up"
        parts = [(0, f"{index + 1}/{len(self.plan)} {workload}{at}"), (1, f"repeat {repeat + 1}/{repeats}"),
                 (0, f"{phase} {count}".strip()), (2, eta_text(e, later_s=self.later_s(index))), (3, clock(elapsed)),
                 (6, f"{num(rate)} {unit}/s" if rate else ""), (5, bar(e.done, e.total))]
        return fit_line([(p, terminal_safe(t, 80) if t else t) for p, t in parts], width)

    def finished(self, result) -> None:
        shown_lead = lead_text(lead_spec(result), lead_estimate(result, interval=lead_interval))  # as compare names it
        colour = {"ok": "green", "failed": "red"}.get(result.status, "yellow")
        figure = f" {shown_lead}" if shown_lead != DASH else ""
        at = f" {variant_label(result.variant)}" if result.variant else ""
        line = f"{result.workload}{at}:{figure} ({len(result.timing.judged)} repeat(s))"
        self.screen.print(markup("[{}]{}[/] {}", colour, result.status, line), soft_wrap=False)

    def note(self, text: str) -> None:
        self.screen.print(shown(text))

    def end(self) -> None:
        self.progress.stop()
