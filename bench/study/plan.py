"""A study's plan: every run's estimated device time against the budget, and the cuts that fit it.

Each run's workloads are estimated at their pace (bench/launch/plan.py). Where the expected total is
over the budget, the budget is shared max-min fairly: a run that expects less than an even share of
what is left keeps all it asks for, and the others split the rest evenly. Each run is fitted to its
share: first its repeats (MeasureOptions, shared by its workloads: fewer repeats, or under --target-ci
a --max-time), then what its workloads' scenarios can cut of their own (bench/measure/scenario.py
`fit`: a capacity search's probes shortened, an offered rate's requests fewer). Each cut is recorded
with the value asked for and the one given; the run then checks the budget before every repeat
(bench/launch/budget.py), so a pace the plan got wrong cuts at run time, said in the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from bench.launch import catalog
from bench.launch.config import RunConfig
from bench.launch.pace import paces
from bench.launch.plan import estimates, items
from bench.measure.scenario import STEPS, Pace
from bench.model.report import Plan, PlanCut


@dataclass(frozen=True)
class PlannedRun:
    name: str
    cfg: RunConfig  # fitted to its share of the budget
    paces: dict[str, Pace]


def plan_study(names: list[str], cfgs: list[RunConfig], budget_s: float | None) -> tuple[list[PlannedRun], Plan]:
    """Each run fitted to its share of the budget, and the plan: estimates after the cuts, and the cuts."""
    known = [paces(c) for c in cfgs]
    expected = [_expected(c, k) for c, k in zip(cfgs, known, strict=True)]
    fitted, cuts = list(cfgs), []
    if budget_s is not None and sum(expected) > budget_s:
        left = budget_s
        order = sorted(range(len(cfgs)), key=lambda i: expected[i])
        for k, i in enumerate(order):  # max-min fair: the smallest first, each at most an even split of what is left
            share = left / (len(order) - k)
            if expected[i] > share:
                fitted[i], done = fit_run(cfgs[i], known[i], share)
                cuts += [PlanCut(run=names[i], **c) for c in done]
            left -= min(_expected(fitted[i], known[i]), left)  # what a run leaves unused goes to the next
    runs = [PlannedRun(n, c, k) for n, c, k in zip(names, fitted, known, strict=True)]
    plan = Plan(items=[i for r in runs for i in items(r.cfg, r.name, r.paces)], budget_s=budget_s,
                cuts=sorted(cuts, key=lambda c: names.index(c.run)))
    return runs, plan


def _expected(cfg, known) -> float:
    return sum(e.expected_s for e in estimates(cfg, known).values())


def fit_run(cfg: RunConfig, known: dict[str, Pace], seconds: float) -> tuple[RunConfig, list[dict]]:
    """The run cut to fit `seconds`: its repeats, then each workload's own options."""
    cfg, cuts = _fit_repeats(cfg, known, seconds)
    est = estimates(cfg, known)
    fixed = sum(e.expected_s for n, e in est.items() if not _cuttable(n))
    flexible = sum(e.expected_s for n, e in est.items() if _cuttable(n))
    if fixed + flexible <= seconds or not flexible:
        return cfg, cuts
    options = dict(cfg.workload_options)
    for name in [n for n in cfg.workloads if _cuttable(n)]:
        share = max(0.0, seconds - fixed) * est[name].expected_s / flexible
        options[name], done = catalog.scenario(name).fit(options[name], cfg.measure, known[name], share)
        cuts += [{"workload": name, "code": c.code, "planned": c.planned, "given": c.given} for c in done]
    return cfg.replace(workload_options=MappingProxyType(options)), cuts


def _cuttable(name: str) -> bool:
    """Whether a workload's scenario cuts options of its own (the steps scenario's fit has none to cut)."""
    return catalog.scenario(name).fit is not STEPS.fit


def _fit_repeats(cfg: RunConfig, known: dict[str, Pace], seconds: float) -> tuple[RunConfig, list[dict]]:
    """Fewer repeats (at least 1), and under --target-ci a --max-time of the run's share; where even two
    repeats do not fit, --target-ci is dropped: one repeat has no interval to narrow."""
    m = cfg.measure
    est = estimates(cfg, known)
    expected = sum(e.expected_s for e in est.values())
    if expected <= seconds and (m.target_ci is None or sum(e.worst_s for e in est.values()) <= seconds):
        return cfg, []
    per_repeat = expected / m.repeats
    repeats = max(1, min(m.repeats, math.floor(seconds / per_repeat))) if per_repeat > 0 else m.repeats
    cuts = [] if repeats == m.repeats else [{"code": "repeats", "planned": m.repeats, "given": repeats}]
    changes: dict = {"repeats": repeats}
    if m.target_ci is not None and repeats < 2:
        changes["target_ci"] = None
        cuts.append({"code": "target_ci", "planned": m.target_ci, "given": None})
    elif m.target_ci is not None:
        share = round(min(seconds * e.expected_s / expected for e in est.values()), 1)
        if m.max_time is None or share < m.max_time:
            changes["max_time"] = max(share, 1.0)
            cuts.append({"code": "max_time", "planned": m.max_time, "given": changes["max_time"]})
    return cfg.replace(measure=m.replace(**changes)), cuts
