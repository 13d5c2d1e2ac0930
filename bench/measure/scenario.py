"""A scenario: how a workload's results are measured. The steps scenario (runner.py: setup, warm-up,
timed steps) measures every workload that launch's table (bench/launch/catalog.py) gives no other;
the serving scenario (bench/serve/scenario.py) is one such other.

A scenario says which results a run makes of one workload (`variants`: one by default; serving, one
per offered rate, or the probes of a capacity search, chosen as results come in), how many where
that is known before it starts (`count`, for the progress display), what needs saying before it
starts (`preamble`), what its progress counts (`unit`), the measurement of one repeat
(`measurement(job, cfg, options)`: a Measurement class, or a factory taking its arguments), and,
for a scenario run under its own name, the workload class it runs, and whether its worker uses the
device itself (`needs_device`: a serving session over HTTP only sends requests; the server holds the device).

Before anything runs, a scenario also says how long it will hold the device (`estimate`: the plan
bench prints), how long one repeat of one of its results takes (`repeat_s`: what a budget checks
before starting it), and how to shrink its own options to fit some seconds (`fit`: what a study's
budget cuts). Each works from a `Pace`: how fast the workload ran here before, or bench's stated
defaults. Device time is the wall time a run holds the device — worker start, set-up, warm-up, the
measured steps or requests, the checks after — what a box billed by the hour costs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.measure.runner import Measurement


@dataclass(frozen=True)
class Pace:
    """How fast one workload runs on this box, as known before it runs, in seconds: a repeat's fixed
    part (its worker's start, set-up, warm-up and checks) and one measured step (a serving request:
    one request's time in a full batch, which a closed loop's length depends on)."""

    overhead_s: float
    step_s: float
    source: str = "default"  # measured (a report written here before) | default (bench's table)


@dataclass(frozen=True)
class Estimate:
    """A workload's expected and longest device time, the results it makes (None: chosen as it goes)
    and the most repeats of each."""

    expected_s: float
    worst_s: float
    results: int | None = 1
    repeats: int = 1


@dataclass(frozen=True)
class Cut:
    """What fitting a budget changed in a workload's options: code, the value asked for, the one given."""

    code: str  # repeats | max_time | requests | probe_s
    planned: float | None
    given: float | None


def once(options):
    """The options as given, one result."""
    yield {}


def measured_s(measure, pace: Pace) -> float:
    """One repeat's measured part: --time-budget, or --steps at the pace."""
    if measure.time_budget is not None:
        return max(measure.time_budget, measure.min_steps * pace.step_s)
    return (measure.steps or 1) * pace.step_s


def repeats_of(measure) -> tuple[int, int]:
    """(expected, most) repeats of one result: --repeats, or under --target-ci from --repeats to
    --max-repeats."""
    if measure.target_ci is None:
        return measure.repeats, measure.repeats
    return measure.repeats, measure.max_repeats


def steps_repeat_s(options, measure, pace: Pace, variant=None) -> float:
    return pace.overhead_s + measured_s(measure, pace)


def steps_estimate(options, measure, pace: Pace) -> Estimate:
    """Expected: --repeats repeats (under --target-ci, the least it may stop at); worst: --max-repeats,
    or what --max-time lets start."""
    one = steps_repeat_s(options, measure, pace)
    least, most = repeats_of(measure)
    worst = most * one
    if measure.target_ci is not None and measure.max_time is not None:
        worst = min(worst, max(least * one, measure.max_time + one))
    return Estimate(least * one, worst, 1, most)


def steps_fit(options, measure, pace: Pace, seconds: float) -> tuple[object, list[Cut]]:
    """A steps workload has nothing of its own to cut: its repeats are the run's (MeasureOptions)."""
    return options, []


@dataclass(frozen=True)
class Scenario:
    name: str
    unit: str  # what the progress display counts: steps, requests
    measurement: Callable  # (job, cfg, options) -> a Measurement class or a factory with its arguments
    variants: Callable = once  # options -> a generator of variants; the launcher sends it each variant's Result
    count: Callable = lambda options: 1  # options -> how many variants (None: chosen as results come in)
    preamble: Callable = lambda options: None  # options -> what to say before the run starts (None: nothing)
    workload: type | None = None  # the workload class a scenario runs under its own name (None: the registered one)
    estimate: Callable = steps_estimate  # (options, measure, pace) -> Estimate
    repeat_s: Callable = steps_repeat_s  # (options, measure, pace, variant) -> seconds of one repeat of a variant
    fit: Callable = steps_fit  # (options, measure, pace, seconds) -> (options, [Cut]): its own options shrunk
    # options -> whether a repeat's worker uses the device itself; False: it only sends work to a server that
    # holds the device, so the worker must not take it (a Gaudi card is one process's) and watches the server's
    needs_device: Callable = lambda options: True


STEPS = Scenario("steps", "steps", lambda job, cfg, options: Measurement)
