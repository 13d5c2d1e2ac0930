"""A study run: each planned run launched in turn (one report each, carrying the study and the plan),
the budget checked before each run and inside it (bench/launch/budget.py). The caller gives the view,
the writer and how to launch; the decision is read from the reports afterwards (bench/analysis)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from bench.launch import catalog
from bench.launch.budget import Budget
from bench.model.report import Plan, PlanCut, Study, StudyRecord


@dataclass
class StudyOutcome:
    """What a study did: the reports its runs wrote (with how each was saved), the runs the budget left
    out, and the device time it took."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    reports: list = field(default_factory=list)  # (report, saved, exit code)
    not_run: list[PlanCut] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False


def run_study(study: Study, source: str, planned, plan: Plan, launch, clock=time.monotonic) -> StudyOutcome:
    """Launch each run (`launch(planned_run, record, budget)` -> (report, saved, code)), in order, within
    the budget; a run whose first repeat would not fit is not started, and said."""
    done = StudyOutcome()
    t0 = clock()
    budget = Budget(t0 + study.budget_s, clock=clock) if study.budget_s is not None else None
    for run in planned:
        if budget is not None:
            budget.paces = dict(run.paces)
            if _first_too_long(run, budget):
                done.not_run.append(PlanCut(run=run.name, code="run", planned=None, given=round(budget.left(), 1)))
                continue
        record = StudyRecord(id=done.id, run=run.name, source=source, study=study, plan=plan,
                             started_s=round(clock() - t0, 3))
        report, saved, code = launch(run, record, budget)
        done.reports.append((report, saved, code))
        if report.status == "interrupted" or code == 130:
            done.interrupted = True
            break
    done.seconds = clock() - t0
    return done


def _first_too_long(run, budget: Budget) -> bool:
    """Whether even the shortest first repeat of the run's workloads would end past the budget."""
    firsts = []
    for name in run.cfg.workloads:
        variant = next(iter(catalog.scenario(name).variants(run.cfg.options_of(name))), {})
        firsts.append(budget.repeat_s(run.cfg, name, variant))
    return bool(firsts) and not budget.fits(min(firsts))
