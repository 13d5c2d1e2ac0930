"""How to measure: steps or a time budget, warm-up, repeats, telemetry rate."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt


@dataclass(frozen=True)
class TelemetryOptions(Options):
    """The sampling rate (`bench serve` takes it alone; `bench run` with the rest of MeasureOptions)."""

    title = "telemetry"

    sample_hz: float = opt(10.0, "telemetry sampling rate of device collectors (host figures at most 2 Hz); 0 "
                                 "turns sampling off", minimum=0, maximum=100)

    def check(self) -> None:
        if 0 < self.sample_hz < 0.1:
            raise ConfigError(f"--sample-hz: at least 0.1 (or 0 for off), got {self.sample_hz:g}")


@dataclass(frozen=True)
class MeasureOptions(TelemetryOptions):
    title = "how to measure"
    presets = {"tiny": {"steps": 20}, "seed": {"steps": 10}}

    steps: int | None = opt(None, "measured steps per repeat", minimum=1, maximum=1_000_000, preset=True)
    time_budget: float | None = opt(None, "measure for this many seconds per repeat instead of --steps (at least "
                                          "--min-steps)", exclusive_minimum=0, maximum=7 * 24 * 3600,
                                    metavar="SECONDS")
    min_steps: int = opt(3, "floor on measured steps with --time-budget", minimum=1, maximum=1_000_000)
    warmup: int | None = opt(None, "warm-up steps before measuring, reported apart (first step and total); default: "
                                   "until successive windows of 3 steps agree within 5 % (and, where the device counts "
                                   "its compiles, the last window compiled nothing), at most 60 steps or 30 s of steps "
                                   "after the first, what it took recorded", minimum=0, maximum=100_000)
    repeats: int = opt(3, "repeats, each in a fresh worker process (model and data built anew): a verdict "
                          "needs run-to-run variance, and 3 per side is the least that gives one",
                       minimum=1, maximum=1000)
    target_ci: float | None = opt(None, "add repeats (each a fresh process) until the lead throughput's 95 % interval "
                                        "half-width is at most PCT of its value, or --max-repeats / --max-time "
                                        "stops it; --repeats counted repeats first; a repeat other load or a change "
                                        "in the host's own speed disturbed is kept, set aside and redone; e.g. 3%",
                                  exclusive_minimum=0, maximum=50, metavar="PCT")
    max_repeats: int = opt(10, "with --target-ci: at most this many repeats, set-aside ones included",
                           minimum=2, maximum=1000)
    max_time: float | None = opt(None, "with --target-ci: start no repeat that would likely end after this many "
                                       "seconds of repeats", exclusive_minimum=0, maximum=7 * 24 * 3600,
                                 metavar="SECONDS")
    handicap: float = opt(0.0, "slow every measured step down by this many percent with busy compute, inside the "
                               "timed region: a known difference for testing comparisons (benchmarks/verdicts.py); "
                               "recorded, and flagged by compare", minimum=0, maximum=100, metavar="PCT")

    def check(self) -> None:
        super().check()
        if self.steps is not None and self.time_budget is not None:
            raise ConfigError("--steps and --time-budget: give one of them, not both")
        if self.steps is not None and self.warmup is not None and self.warmup >= self.steps:
            raise ConfigError(f"--warmup: must be below --steps ({self.warmup} >= {self.steps})")
        if self.target_ci is not None and self.repeats > self.max_repeats:
            raise ConfigError(f"--max-repeats: at least --repeats ({self.max_repeats} < {self.repeats}), the counted "
                              "repeats --target-ci starts with")
        if self.target_ci is not None and self.repeats < 2:
            raise ConfigError("--repeats: at least 2 with --target-ci (an interval needs run-to-run variance)")

    @property
    def target(self) -> float | None:
        """--target-ci as a fraction."""
        return None if self.target_ci is None else self.target_ci / 100

    def check_given(self, given: frozenset[str]) -> None:
        if self.time_budget is None:
            self.ignored(given, "min_steps", "only applies with --time-budget (--steps counts the steps)")
        if self.target_ci is None:
            for name in ("max_repeats", "max_time"):
                self.ignored(given, name, "only applies with --target-ci (without it --repeats repeats run)")

    @classmethod
    def build(cls, given, preset=None):
        if isinstance(given.get("target_ci"), str):  # 3% or 3
            given = {**given, "target_ci": given["target_ci"].strip().removesuffix("%")}
        # --time-budget replaces the preset's step count rather than clashing with it
        if given.get("time_budget") is not None and given.get("steps") is None:
            fill = dict(cls.presets.get(preset or "", {}))
            fill.pop("steps", None)
            return super().build({**{k: v for k, v in fill.items()}, **given}, None)
        return super().build(given, preset)
