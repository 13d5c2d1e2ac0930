"""A run's plan, made before anything is measured: each workload's estimated device time (its scenario's
`estimate` at its pace: bench/measure/scenario.py, bench/launch/pace.py), as `bench run` prints it and
its report records it. A study's plan (bench/study/plan.py) is its runs' plans, fitted to its budget."""

from __future__ import annotations

from bench.launch import catalog
from bench.launch.pace import paces
from bench.measure.scenario import Estimate, Pace
from bench.model.report import Plan, PlanItem


MOST_S = 1e9  # about 32 years: an estimate beyond it (a rate of 1e-300 requests/s) is shown as this


def estimates(cfg, known: dict[str, Pace]) -> dict[str, Estimate]:
    """Each workload's estimate; a --scaling sweep runs them once per world size."""
    sizes = len(cfg.launch.scaling or (cfg.launch.nproc,))
    out = {}
    for name in cfg.workloads:
        e = catalog.scenario(name).estimate(cfg.options_of(name), cfg.measure, known[name])
        out[name] = Estimate(_bounded(e.expected_s * sizes), _bounded(e.worst_s * sizes), e.results, e.repeats)
    return out


def _bounded(seconds: float) -> float:
    return seconds if seconds <= MOST_S else MOST_S  # inf and NaN included (NaN <= x is false)


def items(cfg, run: str, known: dict[str, Pace]) -> list[PlanItem]:
    return [PlanItem(run=run, workload=name, repeats=e.repeats, estimate_s=e.expected_s, worst_s=e.worst_s,
                     pace=known[name].source, results=e.results) for name, e in estimates(cfg, known).items()]


def run_plan(cfg, run: str = "run") -> tuple[Plan, dict[str, Pace]]:
    """A plain run's plan (no budget) and the paces it was made with."""
    known = paces(cfg)
    return Plan(items=items(cfg, run, known)), known
