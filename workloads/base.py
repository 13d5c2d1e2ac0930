"""The Workload protocol: what the runner calls, and what one measured step returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class StepResult:
    """What one measured step did. `tokens` is what the workload's tokens_per_s counts."""

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

    def __init__(self, cfg, backend):
        self.cfg = cfg
        self.backend = backend

    @property
    def world_size(self) -> int:
        return getattr(self.backend, "world_size", 1)

    @property
    def rank(self) -> int:
        return getattr(self.backend, "rank", 0)

    @property
    def data_seed(self) -> int:
        """Each rank draws its own data shard; the model seed stays the same on every rank."""
        return self.cfg.seed + self.rank

    def setup(self) -> None:
        """Build the model and inputs, move them to the device. Timed apart as setup."""

    def params(self) -> dict:
        """The workload's identity: everything that must match for two runs to be comparable."""
        raise NotImplementedError

    def step(self) -> StepResult:
        raise NotImplementedError

    def flops_per_step(self) -> float | None:
        """Matmul FLOPs of one step where they can be counted, else None."""
        return None

    def extra_metrics(self, steps: list[StepResult], times: list[float]) -> dict:
        """The workload's own figures, computed after timing (never inside a step): a flat map of
        dotted names to numbers, strings, bools, None, or bench.model Interval / Summary values."""
        return {}

    def series(self) -> dict[str, list]:
        """Per-step series (e.g. the loss curve), computed after timing."""
        return {}

    def teardown(self) -> None:
        """Drop references so the next workload gets the memory back."""
