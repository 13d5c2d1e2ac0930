"""Scaling across world sizes: runs whose identity matches but for world_size, as a series with
the scaling efficiency = throughput at N / (N / N0 x throughput at the smallest world size N0).

An efficiency is only a fact about the ranks when each rank had the same resources at every world
size: a sweep whose threads per rank differ between its points is noted (`scaling_threads`), and an
efficiency above 100 % that no such difference explains is flagged (`superlinear`), with whether
the smallest world size's run was contended (which understates the throughput it is divided by)."""

from __future__ import annotations

from bench.analysis.comparison import Note, ScalingGroup, ScalingPoint
from bench.analysis.runs import make_runs
from bench.analysis.verdicts import withheld

SUPERLINEAR = 1.05  # an efficiency above this is more than the ranks alone could give


def world_size(run):
    return run.params.get("world_size", 1)


def scaling_groups(runs) -> list[ScalingGroup]:
    """A group per identity (but world size) that was run at two world sizes or more."""
    groups: dict[tuple, list] = {}
    for run in runs:
        if run.result.status == "failed" or type(world_size(run)) is not int or world_size(run) < 1:
            continue  # a published run's "8 cards present, none used" is not a world size
        key = (run.workload, repr(sorted((k, repr(v)) for k, v in run.params.items() if k != "world_size")))
        groups.setdefault(key, []).append(run)
    return [series(rs) for rs in groups.values() if len({world_size(r) for r in rs}) >= 2]


def threads_per_rank(run) -> int | None:
    """The CPU threads every rank of every repeat ran with; None where unknown or not one number."""
    timings = [p.timing for p in run.result.per_rank] or [run.result.timing]
    seen = {rep.threads for t in timings for rep in t.repeats}
    return seen.pop() if len(seen) == 1 and None not in seen else None


def lead_unit(run, metric: str) -> str:
    spec = next((f for f in run.result.figures if f.lead), None)
    return spec.unit if spec else metric.replace("_per_s", "/s")


def series(runs) -> ScalingGroup:
    metric = runs[0].result.main_metric or "samples_per_s"
    runs = sorted(runs, key=world_size)
    n0, t0 = world_size(runs[0]), runs[0].throughput(metric).value
    points = []
    for r in runs:
        n, tp = world_size(r), r.throughput(metric)
        eff = tp.value / (n / n0 * t0) if tp.value and t0 else None
        points.append(ScalingPoint(world_size=n, value=tp.value, ci_low=tp.ci_low, ci_high=tp.ci_high, efficiency=eff,
                                   run=r.name, threads=threads_per_rank(r)))
    return ScalingGroup(workload=runs[0].workload, metric=metric, unit=lead_unit(runs[0], metric), points=points,
                        notes=scaling_notes(points, runs[0]))


def scaling_notes(points: list[ScalingPoint], smallest) -> list[Note]:
    """Threads per rank that differ between world sizes; efficiencies above 100 % they do not explain."""
    threads = {p.threads for p in points}
    if len(threads) > 1:
        return [Note(code="scaling_threads", values={"threads": [[p.world_size, p.threads] for p in points]})]
    shared = withheld(smallest)
    return [Note(code="superlinear", run=p.run, values={"world_size": p.world_size, "efficiency": p.efficiency,
                                                        "base": smallest.name,
                                                        "base_contended": shared is not None and
                                                        shared.code == "contended"})
            for p in points if p.efficiency is not None and p.efficiency > SUPERLINEAR]


def scaling_of(loaded) -> list[ScalingGroup]:
    """The scaling groups of reports (a `bench run --scaling` sweep)."""
    return scaling_groups(make_runs(loaded)[0])
