"""Scaling across world sizes: runs whose identity matches but for world_size, as a series with
the scaling efficiency = throughput at N / (N / N0 x throughput at the smallest world size N0)."""

from __future__ import annotations

from bench.analysis.comparison import ScalingGroup, ScalingPoint
from bench.analysis.runs import make_runs


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


def series(runs) -> ScalingGroup:
    metric = runs[0].result.main_metric or "samples_per_s"
    runs = sorted(runs, key=world_size)
    n0, t0 = world_size(runs[0]), runs[0].throughput(metric).value
    points = []
    for r in runs:
        n, tp = world_size(r), r.throughput(metric)
        eff = tp.value / (n / n0 * t0) if tp.value and t0 else None
        points.append(ScalingPoint(world_size=n, value=tp.value, ci_low=tp.ci_low, ci_high=tp.ci_high, efficiency=eff,
                                   run=r.name))
    return ScalingGroup(workload=runs[0].workload, metric=metric, points=points)


def scaling_of(loaded) -> list[ScalingGroup]:
    """The scaling groups of reports (a `bench run --scaling` sweep)."""
    return scaling_groups(make_runs(loaded)[0])
