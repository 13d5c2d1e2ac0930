"""A scenario: how a workload's results are measured. The steps scenario (runner.py: setup, warm-up,
timed steps) measures every workload that launch's table (bench/launch/catalog.py) gives no other;
the serving scenario (bench/serve/scenario.py) is one such other.

A scenario says which results a run makes of one workload (`variants`: one by default; serving, one
per offered rate, or the probes of a capacity search, chosen as results come in), how many where
that is known before it starts (`count`, for the progress display), what needs saying before it
starts (`preamble`), what its progress counts (`unit`), the measurement of one repeat
(`measurement(job, cfg, options)`: a Measurement class, or a factory taking its arguments), and,
for a scenario run under its own name, the workload class it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.measure.runner import Measurement


def once(options):
    """The options as given, one result."""
    yield {}


@dataclass(frozen=True)
class Scenario:
    name: str
    unit: str  # what the progress display counts: steps, requests
    measurement: Callable  # (job, cfg, options) -> a Measurement class or a factory with its arguments
    variants: Callable = once  # options -> a generator of variants; the launcher sends it each variant's Result
    count: Callable = lambda options: 1  # options -> how many variants (None: chosen as results come in)
    preamble: Callable = lambda options: None  # options -> what to say before the run starts (None: nothing)
    workload: type | None = None  # the workload class a scenario runs under its own name (None: the registered one)


STEPS = Scenario("steps", "steps", lambda job, cfg, options: Measurement)
