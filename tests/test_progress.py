"""The run display: one line per finished workload (never a bar printed twice), workload i of n, and
an ETA from the steps so far."""

from __future__ import annotations

import io
from types import SimpleNamespace

from reportgen import make_report

from bench.render.progress import Eta, RichView, eta_text
from bench.render.screen import Screen


def cfg(steps=10, warmup=2, budget=None):
    return SimpleNamespace(measure=SimpleNamespace(steps=steps, warmup=warmup, time_budget=budget))


def drive(view, plan, steps=10):
    view.begin(cfg(steps), plan)
    for index, (name, repeats) in enumerate(plan):
        for r in range(repeats):
            view.job(name, index, r)
            for phase, total in (("warmup", 2), ("measure", steps)):
                for done in range(total + 1):
                    view.event({"event": "progress", "rank": 0, "phase": phase, "done": done, "total": total})
        view.finished(make_report(name, 0.1, workload=name, repeats=repeats).results[0])
    view.end()


def test_a_piped_display_prints_each_repeat_started_and_workload_finished_once_and_no_bars():
    buf = io.StringIO()
    view = RichView(Screen(file=buf, force_terminal=False, width=100))
    plan = [("blender-finetune", 2), ("blender-generate", 2), ("retrieval-encode", 2), ("retrieve-refine", 2)]
    drive(view, plan)
    lines = [x for x in buf.getvalue().splitlines() if x.strip()]
    started = [x for x in lines if x.startswith("workload ")]
    finished = [x for x in lines if not x.startswith("workload ")]
    assert started == [f"workload {i + 1}/4 {n} · repeat {r + 1}/2 ..." for i, (n, _) in enumerate(plan) for r in range(2)]
    assert [x.split()[1].rstrip(":") for x in finished] == [n for n, _ in plan]
    assert all(x.startswith("ok ") and "samples/s" in x and "(2 repeat(s))" in x for x in finished)
    assert not any("━" in x for x in lines)


def test_the_live_line_names_the_workload_of_n_and_the_repeat():
    view = RichView(Screen(file=io.StringIO(), force_terminal=True, width=120))
    view.begin(cfg(), [("a", 3), ("b", 3)])
    view.job("b", 1, 2)
    view.event({"event": "progress", "rank": 0, "phase": "measure", "done": 0, "total": 10})
    assert view.line(5.0, 117).startswith("2/2 b · repeat 3/3 · measure")
    view.end()


def test_eta_counts_the_steps_left_and_the_repeats_still_to_set_up():
    eta = Eta(repeats=3)
    eta.start_repeat(0, at=100.0)
    assert eta.seconds_left(100.0) is None  # nothing measured yet: no guess
    eta.progress("warmup", 0, None, at=101.0)
    eta.progress("measure", 0, 10, at=104.0)  # set-up and warm-up took 4 s
    eta.progress("measure", 5, 10, at=109.0)  # 1 s a step
    # 5 steps left now, then 2 repeats of 4 s overhead + 10 steps
    assert eta.seconds_left(109.0) == (5 + 2 * (4 + 10), False)
    eta.start_repeat(1, at=112.0)  # the next process: the pace carries over until it measures its own
    assert eta.seconds_left(112.0) == ((4 + 10) + 1 * (4 + 10), False)
    assert eta.seconds_left(113.0) == ((3 + 10) + 14, False)


def test_eta_counts_the_requests_left_not_the_step_count():
    """A serving repeat measures its requests (60), not --steps: 38 of 60 to come is not 0:00."""
    eta = Eta(repeats=1, variants=2)
    eta.start_repeat(0, at=0.0)
    eta.progress("measure", 0, 60, at=5.0)
    eta.progress("measure", 22, 60, at=16.0)  # 0.5 s a request
    left, lower = eta.seconds_left(16.0)
    assert left == 38 * 0.5 + 1 * (5 + 60 * 0.5) and not lower  # and the next offered rate after it


def test_eta_never_reads_zero_with_work_left():
    """A 70 s step in flight, past the pace of the steps before it: a lower bound, not 0:00."""
    eta = Eta(repeats=1)
    eta.start_repeat(0, at=0.0)
    eta.progress("measure", 0, 3, at=10.0)
    eta.progress("measure", 2, 3, at=30.0)  # 10 s a step
    assert eta.seconds_left(35.0) == (5.0, False)
    left, lower = eta.seconds_left(100.0)  # the last step has run 70 s
    assert lower and left >= 1.0 and eta_text(eta, 100.0) == "ETA ≥0:01"
    budget = Eta(repeats=2, budget=30.0, min_steps=3)
    budget.start_repeat(0, at=0.0)
    budget.progress("measure", 0, None, at=5.0)
    budget.progress("measure", 1, None, at=45.0)  # one 40 s step: the budget is spent, 2 steps still due
    left, lower = budget.seconds_left(46.0)
    assert left >= 2 * 40 - 1 and not lower


def test_eta_with_a_time_budget():
    eta = Eta(repeats=2, budget=30.0)
    eta.start_repeat(0, at=0.0)
    eta.progress("measure", 0, None, at=5.0)
    eta.progress("measure", 20, None, at=15.0)
    assert eta.seconds_left(15.0) == (20 + 1 * (5 + 30), False)


def test_a_capacity_search_makes_the_eta_a_lower_bound():
    eta = Eta(repeats=1, variants=None)
    eta.start_repeat(0, at=0.0)
    eta.progress("measure", 0, 10, at=1.0)
    eta.progress("measure", 5, 10, at=6.0)
    assert eta.seconds_left(6.0) == (5.0, True)


def test_no_absurd_rate_from_events_read_at_once():
    """Events are read in batches: the pace comes from the worker's own clock readings, and no rate
    is shown before the phase has run long enough to have one."""
    view = RichView(Screen(file=io.StringIO(), force_terminal=True, width=200))
    view.begin(cfg(), [("a", 1)])
    view.job("a", 0, 0)
    view.event({"event": "progress", "rank": 0, "phase": "measure", "done": 0, "total": 20, "t": 100.0})
    view.event({"event": "progress", "rank": 0, "phase": "measure", "done": 1, "total": 20, "t": 100.004})
    assert "/s" not in view.line(1.0, 197)  # 4 ms of a phase: no rate yet
    view.event({"event": "progress", "rank": 0, "phase": "measure", "done": 10, "total": 20, "t": 101.0})
    assert "10 steps/s" in view.line(2.0, 197)
    view.end()


def test_the_line_fits_80_columns_and_keeps_the_counts_and_times():
    import time

    view = RichView(Screen(file=io.StringIO(), force_terminal=True, width=80))
    view.begin(cfg(), [("blender-finetune", 3), ("blender-generate", 3), ("retrieval-encode", 3),
                       ("retrieve-refine", 3), ("blender-serve", 3, 2, "req")])
    view.job("blender-serve", 4, 1, "qps=20")
    view.eta.overhead_s, view.eta.unit_s = 5.0, 0.5
    now = time.monotonic()
    view.event({"event": "progress", "rank": 0, "phase": "measure", "done": 0, "total": 60, "t": now - 11.0})
    view.event({"event": "progress", "rank": 0, "phase": "measure", "done": 22, "total": 60, "t": now})
    line = view.line(754.0, 78)  # 80 columns less the spinner
    assert len(line) <= 78 and "5/5 blender-serve qps=20" in line
    assert "measure 22/60 req" in line and "ETA " in line and "12:34" in line  # the counts and both times
    narrow = view.line(754.0, 50)
    assert len(narrow) <= 50 and "22/60" in narrow and "measure" in narrow  # the name gives way first
    assert "[" in view.line(754.0, 200) and "req/s" in view.line(754.0, 200)  # the bar and rate where there is room
    view.end()
