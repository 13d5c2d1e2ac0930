"""A study's device-time budget while a run runs: nothing starts that its pace says would end past it.

Before each result (an offered rate, a capacity probe) and each repeat, the run asks whether the next
one fits what is left of the budget: the first repeat of a workload at the plan's pace
(bench/launch/pace.py), each later one at the pace its own repeats showed. What does not fit is not
started: the result says what was cut and what that costs the answer (warning `budget_cut`, stop
reason `budget`); a workload nothing of which fits is `skipped`. Device time is wall time on the
device: the clock is the monotonic one, started when the study started.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass, field

from bench.launch import catalog
from bench.measure.scenario import Pace
from bench.model.report import Result, variant_label


@dataclass
class Budget:
    deadline: float  # time.monotonic() by which the study must be done
    paces: dict[str, Pace] = field(default_factory=dict)  # workload -> pace: the plan's, then its own
    clock: object = time.monotonic

    def left(self) -> float:
        return self.deadline - self.clock()

    def repeat_s(self, cfg, name: str, variant: dict | None) -> float:
        """One repeat of this result at the workload's pace."""
        pace = self.paces.get(name) or Pace(0.0, 0.0)
        return catalog.scenario(name).repeat_s(cfg.options_of(name), cfg.measure, pace, variant or {})

    def fits(self, seconds: float) -> bool:
        return self.clock() + seconds <= self.deadline

    def learn(self, name: str, result: Result, phases) -> None:
        """The workload's fixed part per repeat as its repeats showed it (their wall time less their
        measured phases): the next results are checked against it."""
        st, label = result.stopping, variant_label(result.variant)
        spans = [p.end_s - p.start_s for p in phases if p.workload == name and p.variant == label and
                 p.phase == "measure"]
        if st is None or not st.ran or st.seconds is None or not spans:
            return
        fixed = st.seconds / st.ran - statistics.mean(spans)
        pace = self.paces.get(name) or Pace(fixed, 0.0)
        if fixed >= 0:
            self.paces[name] = dataclasses.replace(pace, overhead_s=fixed, source="measured")


def not_run(name: str, variant: dict, seconds: float, left: float) -> Result:
    """A result the budget left out before any of its repeats."""
    result = Result(workload=name, status="skipped", variant=dict(variant or {}),
                    error=f"not run: the study's device-time budget had {max(left, 0):.0f} s left, and this would "
                          f"take about {seconds:.0f} s")
    result.warn("budget_cut", result.error)
    return result


def variants_cut(result: Result, scenario_name: str, seconds: float, left: float) -> None:
    """The results after this one were not run: the warning says what that costs."""
    at = variant_label(result.variant) or "this result"
    if scenario_name == "serving" and result.variant.get("requests") is not None:  # a probe names its requests
        cost = "the capacity search stopped there: its bracket is what the probes so far made it"
    else:
        cost = "the results after it are missing"
    result.warn("budget_cut", f"stopped after {at}: the next would take about {seconds:.0f} s and "
                              f"{max(left, 0):.0f} s were left of the study's device-time budget; {cost}")


def repeats_cut(result: Result, least: int) -> None:
    """Fewer repeats ran than the rule wanted because the next would have run past the budget."""
    st = result.stopping
    if st is None or st.stopped != "budget" or not st.ran:
        return
    if st.ran < least:
        verdict = ", and below 3 a side bench compare gives no verdict" if st.ran < 3 else ""
        result.warn("budget_cut", f"{st.ran} of {least} repeats ran: the next would have run past the study's "
                                  f"device-time budget; the interval rests on fewer repeats{verdict}")
    elif st.target_ci is not None:
        result.warn("budget_cut", f"{st.ran} repeats ran: the next would have run past the study's device-time budget "
                                  f"before the interval reached ±{st.target_ci:.0%}; it is as wide as it is")
