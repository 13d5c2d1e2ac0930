"""The run display: one line per finished workload (never a bar printed twice), workload i of n, and
an ETA from the steps so far."""

from __future__ import annotations

import io
from types import SimpleNamespace

from reportgen import make_report

from bench.render import progress
from bench.render.progress import Eta, RichView
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
    task = view.progress.tasks[0]
    assert task.description.startswith("workload 2/2 b · repeat 3/3 · measure")
    view.end()


def test_eta_counts_the_steps_left_and_the_repeats_still_to_set_up(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    eta = Eta(repeats=3, steps=10, warmup=2, budget=None)
    eta.start_repeat(0)
    assert eta.seconds_left() is None  # nothing measured yet: no guess
    now[0] = 104.0  # set-up and warm-up took 4 s
    eta.progress("measure", 0)
    now[0] = 109.0
    eta.progress("measure", 5)  # 1 s a step
    # 5 steps left now, then 2 repeats of 4 s overhead + 10 steps
    assert eta.seconds_left() == 5 + 2 * (4 + 10)
    eta.start_repeat(1)  # the next process: the pace carries over until it measures its own
    now[0] = 112.0
    assert eta.seconds_left() == (10 + 1) + 1 * (4 + 10)  # 1 s of set-up still expected, then 10 steps


def test_eta_with_a_time_budget(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    eta = Eta(repeats=2, steps=None, warmup=1, budget=30.0)
    eta.start_repeat(0)
    now[0] = 5.0
    eta.progress("measure", 0)
    now[0] = 15.0
    eta.progress("measure", 20)
    assert eta.seconds_left() == 20 + 1 * (5 + 30)
