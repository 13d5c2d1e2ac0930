"""A plan in words (bench/model/report.py `Plan`): each run's workloads with their estimated device time,
the total against the budget, what was cut to fit it and what each cut costs the answer."""

from __future__ import annotations

from rich.console import Group

from bench.core.durations import duration_text
from bench.render.format import DASH, markup
from bench.render.layout import plain_table
from bench.serve.maths import tails

DEVICE_TIME = ("device time: the wall time a run holds the device (worker start, set-up, warm-up, the measured "
               "steps or requests, the checks after): what a box billed by the hour costs")
PACES = {"default": "bench's stated default (a busy 2-core CPU box, not this box)",
         "measured": "as it ran here before (a report in --out)"}


def plan_renderable(plan, title: str = "plan"):
    """The plan's table, its total against the budget, its cuts, and what device time and the paces mean."""
    several = len({i.run for i in plan.items}) > 1
    headers = (["run"] if several else []) + ["workload", "results", "reps", "expected", "at most", "pace"]
    rows = [([i.run] if several else []) + [i.workload, "search" if i.results is None else str(i.results),
                                              str(i.repeats), duration_text(i.estimate_s), duration_text(i.worst_s),
                                              i.pace] for i in plan.items]
    table = plain_table(title, headers, rows)
    for column in table.columns[: 2 if several else 1]:  # names stay whole; the numbers may wrap
        column.no_wrap = True
    parts = [table, markup("{}", total_line(plan))]
    parts += [markup("[yellow]cut:[/] {}", cut_text(c)) for c in plan.cuts]
    parts += [markup("[dim]{}[/]", line) for line in legend(plan)]
    return Group(*parts)


def total_line(plan) -> str:
    text = (f"about {duration_text(plan.estimate_s)} of device time expected, at most "
            f"{duration_text(plan.worst_s)}")
    if plan.budget_s is None:
        return text
    over = plan.estimate_s > plan.budget_s
    return (f"{text}; budget {duration_text(plan.budget_s)}"
            + ("; the run is checked against it before each repeat and stops where the next would not fit"
               if over or plan.worst_s > plan.budget_s else ""))


def legend(plan) -> list[str]:
    lines = [DEVICE_TIME]
    for source in sorted({i.pace for i in plan.items}):
        lines.append(f"pace {source}: {PACES.get(source, source)}")
    return lines


def _n(value) -> str:
    return DASH if value is None else f"{value:g}"


def cut_text(cut) -> str:
    """A cut and what it costs the answer."""
    where = f"{cut.run} {cut.workload}" if cut.workload else cut.run
    if cut.code == "repeats":
        cost = ("one repeat shows no run-to-run variance" if cut.given == 1 else "a wider interval") + \
            ("; below 3 a side bench compare gives no verdict" if (cut.given or 0) < 3 else "")
        return f"{where}: {_n(cut.planned)} repeats -> {_n(cut.given)} ({cost})"
    if cut.code == "target_ci":
        return (f"{where}: no --target-ci (was ±{_n(cut.planned)} %): one repeat fits, and it has no run-to-run "
                "interval to narrow")
    if cut.code == "max_time":
        return (f"{where}: --target-ci's repeats start only within {_n(cut.given)} s (was "
                f"{_n(cut.planned) if cut.planned is not None else 'no bound'}): the interval may not reach its target")
    needed = tails.min_passing(0, 0.99)
    if cut.code == "requests":
        cost = f"below {needed} requests a p99 verdict is provisional" if (cut.given or 0) < needed else "fewer requests"
        return f"{where}: {_n(cut.planned)} requests a session -> {_n(cut.given)} ({cost})"
    if cut.code == "probes":
        return (f"{where}: at most {_n(cut.given)} capacity probes (was {_n(cut.planned)}): the search may stop "
                "before its bracket is within 15 %")
    if cut.code == "probe_s":
        below = needed / cut.given if cut.given else None
        return (f"{where}: each capacity probe's arrivals cut to {_n(cut.given)} s (was {_n(cut.planned)} s): a probe "
                f"below {_n(round(below, 2)) if below else DASH} requests/s gets fewer than the {needed} requests a "
                "valid p99 verdict needs, and its verdict is provisional")
    return f"{where}: not run (the budget ran out before its first repeat): its answers are missing"
