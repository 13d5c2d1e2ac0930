"""When a result has repeats enough: a fixed `--repeats`, or `--target-ci` — repeats added until the
lead throughput's 95 % interval is narrow enough, or a bound (`--max-repeats`, `--max-time`).

The rule looks at the interval's width only, the same t interval on log throughputs that a run's
figures and a comparison's Welch interval are made of (bench/model/derive.py `half_width`); it
never looks at a difference from another run, since stopping when an effect shows would turn noise
into verdicts. A repeat the contention or host-speed checks flag does not count towards it; the
launcher keeps it in the report, set aside, and runs another in its place (within the bounds).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.model.derive import half_width
from bench.model.report import Stopping


@dataclass
class Until:
    """The stopping rule of one result while it runs: told each repeat's throughput (None where it
    had none) and whether it was disturbed; `more()` says whether to run another."""

    metric: str
    least: int  # counted repeats before the rule may stop (--repeats)
    target: float | None = None  # the half-width to reach, a fraction; None: exactly `least` repeats
    max_repeats: int | None = None
    max_time_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    rates: list[float] = field(default_factory=list)  # the clean repeats' throughputs
    disturbed: list[float] = field(default_factory=list)  # the set-aside ones'
    durations: list[float] = field(default_factory=list)
    ran: int = 0
    set_aside: int = 0
    stopped: str | None = None
    deadline: float | None = None  # a study's budget: no repeat starts that would likely end after it (clock's time)
    first_s: float | None = None  # the plan's time for the first repeat (later ones: their median so far)

    def __post_init__(self) -> None:
        self.started = self.last = self.clock()

    @classmethod
    def of(cls, measure, metric: str, clock: Callable[[], float] = time.monotonic) -> Until:
        """The rule a MeasureOptions asks for."""
        if measure.target is None:
            return cls(metric, measure.repeats, clock=clock)
        return cls(metric, measure.repeats, measure.target, measure.max_repeats, measure.max_time, clock)

    @property
    def redoes(self) -> bool:
        """Whether a disturbed repeat is set aside and redone (only while a target is pursued)."""
        return self.target is not None

    def add(self, rate: float | None, disturbed: bool = False) -> None:
        now = self.clock()
        self.durations.append(now - self.last)
        self.last = now
        self.ran += 1
        if disturbed and self.redoes:
            self.set_aside += 1
            self.disturbed += [] if rate is None else [rate]
        elif rate is not None:
            self.rates.append(rate)

    def count_all(self) -> None:
        """Every repeat was disturbed: none is set aside after all, so all count (the run says it was
        contended)."""
        self.rates, self.disturbed, self.set_aside = self.rates + self.disturbed, [], 0

    def end(self, why: str) -> None:
        """A repeat failed, was skipped or interrupted: no further one runs."""
        self.stopped = why

    def more(self) -> bool:
        if self.stopped is None:
            self.stopped = self._why_stop()
        return self.stopped is None

    @property
    def half_width(self) -> float | None:
        return half_width(self.rates) if len(self.rates) >= 2 else None

    def _why_stop(self) -> str | None:
        why = self._rule_stops()
        if why is None and self.deadline is not None:
            after = statistics.median(self.durations) if self.durations else self.first_s or 0.0
            why = "budget" if self.clock() + after > self.deadline else None
        return why

    def _rule_stops(self) -> str | None:
        if not self.redoes:
            return "repeats" if self.ran >= self.least else None
        width = self.half_width
        if len(self.rates) >= self.least and width is not None and width <= self.target:
            return "precise"
        if self.ran >= self.max_repeats:
            return "max_repeats"
        if self.max_time_s is not None and self.durations:
            if self.clock() - self.started + statistics.median(self.durations) > self.max_time_s:
                return "max_time"
        return None

    def record(self) -> Stopping:
        width = self.half_width
        return Stopping(rule="target_ci" if self.redoes else "fixed", metric=self.metric, least=self.least,
                        target_ci=self.target, max_repeats=self.max_repeats, max_time_s=self.max_time_s,
                        half_width=width if width is not None and math.isfinite(width) else None, ran=self.ran,
                        set_aside=self.set_aside, stopped=self.stopped or "repeats",
                        seconds=self.last - self.started)
