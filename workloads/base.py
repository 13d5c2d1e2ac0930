"""The Workload protocol: what the runner calls, and what one measured step returns.

A workload is one module: a Workload subclass with its name, its own options (an Options dataclass),
the figures it leads with and adds, a `check` run before anything starts, and `metrics`, a pure
function of the raw per-repeat data that the report keeps. It imports bench.core and bench.model
only, and uses the backend object it is given (never a device's internals). The steps scenario
(bench/measure/runner.py) measures it; a generating workload may also offer its model to the serving
scenario (a `servable` class, as blender-generate does: workloads/blender_servable.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from bench.core.options import Options
from bench.model.report import FigureSpec, Fingerprint, Repeat


@dataclass(frozen=True)
class NoOptions(Options):
    """A workload without options of its own."""


@dataclass
class StepResult:
    """What one measured step did. `tokens` is what the workload's tokens_per_s counts; `extra` holds
    raw values the workload turns into its per-step record after the clock was read."""

    samples: int
    tokens: int
    extra: dict = field(default_factory=dict)
    flops: float | None = None  # this step's FLOPs, where they vary by step (else flops_per_step)


class Workload:
    """One unit of work, measured many times. The runner owns clocks and syncs; a step never reads
    a clock or synchronizes unless the workload itself measures inside a step (and says so)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    tokens_are: ClassVar[str] = "tokens"  # what StepResult.tokens counts, said in the report
    main_metric: ClassVar[str] = "samples_per_s"  # the throughput comparisons lead with
    Options: ClassVar[type[Options]] = NoOptions
    figures: ClassVar[tuple[FigureSpec, ...]] = ()  # what every output shows for this workload, with units
    generates: ClassVar[bool] = False  # runs model.generate() (devices that cannot replay it safely refuse)
    memory_flags: ClassVar[tuple[str, ...]] = ("--batch-size",)  # what an out-of-memory error tells the user to lower
    eager: ClassVar[str | None] = None  # why --compile cannot apply to it (it runs eager: --compile is refused)
    # generates over caches allocated once and shapes padded to buckets, so that a graph captured per input shape
    # (HPU graphs) replays every step correctly: a generating workload that does may take --hpu-graphs
    graph_safe: ClassVar[bool] = False

    def __init__(self, common, options, backend, rank: int = 0, world_size: int = 1):
        self.common, self.options, self.backend = common, options, backend
        self.rank, self.world_size = rank, world_size

    @property
    def data_seed(self) -> int:
        """Each rank draws its own data shard; the model seed stays the same on every rank."""
        return self.common.seed + self.rank

    # -- before anything runs ------------------------------------------------------------------------
    @classmethod
    def figures_for(cls, options) -> tuple[FigureSpec, ...]:
        """The figures its results declare with these options (the one marked `lead` is what they lead
        with; none marked: its throughput, `main_metric`). By default its `figures`."""
        return cls.figures

    @classmethod
    def check(cls, common, options, device) -> None:
        """Refuse, with ConfigError, a configuration this workload cannot run (lengths beyond the
        model's positions, a missing extra, a model directory that is not one). `device` describes
        the device: its name and whether it needs static shapes. Runs before any workload starts."""

    # -- measured ------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Build the model and inputs, move them to the device. Timed apart as setup."""

    def params(self) -> dict:
        """The workload's identity: everything that must match for two runs to be comparable."""
        raise NotImplementedError

    def start_measuring(self) -> None:
        """Called once between warm-up and the measured steps (outside any timed region)."""

    def step(self) -> StepResult:
        raise NotImplementedError

    def record(self, step: StepResult) -> dict:
        """The step's raw values for the report (numbers, or lists of numbers such as the gaps
        between tokens). Called after the step's clock was read, never inside the timed region."""
        return {}

    def flops_per_step(self) -> float | None:
        """Matmul FLOPs of one step where they can be counted, else None."""
        return None

    def series(self) -> dict[str, list]:
        """Per-step values that can only be read after timing (the loss: reading it syncs)."""
        return {}

    def verify(self) -> tuple[Fingerprint | None, dict]:
        """After timing, on fixed inputs: the output fingerprint (for parity across devices) and
        figures that need the live model (recall). Not timed."""
        return None, {}

    def teardown(self) -> None:
        """Drop references so the memory is returned."""

    # -- after all repeats ---------------------------------------------------------------------------
    @classmethod
    def metrics(cls, repeats: list[Repeat], params: dict, options=None) -> dict:
        """The workload's own figures from the raw data of every repeat (pure, no model): a flat map of
        dotted names to numbers, strings, None, or Interval / Summary values. `options`: the workload's
        options as run (what is not identity but judges the figures, such as a serving SLO)."""
        return {}


def concat(repeats: list[Repeat], name: str) -> list[float]:
    """One raw series over all repeats, missing values dropped."""
    return [v for r in repeats for v in r.series.get(name, []) if v is not None]


def first_figure(repeats: list[Repeat], name: str):
    """A figure computed on a repeat's live model: the first repeat that has it."""
    return next((r.figures[name] for r in repeats if name in r.figures), None)
