"""The run view's end: every workload's figures, laid out for the terminal's width, and the
problems in words."""

from __future__ import annotations

from rich.console import Group

from bench.analysis.serving import tail_notes
from bench.analysis.table import resolve_in
from bench.analysis.table import lead_interval
from bench.model.derive import lead_estimate, lead_spec
from bench.model.report import variant_label
from bench.render import words
from bench.render.format import DASH, Shown, flops, lead_text, markup, percent, seconds, size, unit_cell
from bench.render.layout import fit


def named(result) -> str:
    """The workload, with the variant where it is one of several results (`blender-serve qps=4`)."""
    label = variant_label(result.variant)
    return f"{result.workload} {label}" if label else result.workload


def _warnings(result) -> str:
    return ", ".join(sorted(result.codes()))


def _lead(result) -> str:
    """The figure the workload leads with, its interval and what it is (a throughput, or a serving result's
    latency at its offered rate)."""
    return lead_text(lead_spec(result), lead_estimate(result, interval=lead_interval))


THREAD_REASONS = {
    "given": lambda c: "--threads",
    "free": lambda c: f"every one of {c.cpus:g} CPUs free",
    "other_load": lambda c: f"other load used {c.other_load_cores:.1f} of {c.cpus:g} CPUs, measured at the start",
    "quota": lambda c: f"the cgroup's CPU quota allows {c.quota_cpus:g} CPUs",
    "affinity": lambda c: f"this process may run on {c.cpus:g} CPUs",
}


def threads_text(choice) -> str:
    """`1 thread (other load used 1.1 of 2 CPUs, measured at the start)`."""
    n = f"{choice.threads} thread{'s' if choice.threads > 1 else ''}"
    ranks = f" a rank x {choice.ranks} ranks" if choice.ranks > 1 else ""
    return f"{n}{ranks} ({THREAD_REASONS[choice.reason](choice)})"


def threads_line(choice) -> str:
    """The run line that says what bench chose and why, and how to choose otherwise."""
    also = "" if choice.reason == "given" else "; --threads N chooses otherwise"
    return f"cpu: {threads_text(choice)}{also}"


def run_summary(report, screen):
    device = report.environment.device
    title = f"bench run {report.run_id[:8]} · {device.get('backend', '?')} · {device.get('device_name') or ''}"
    if report.environment.threads is not None:
        title += f" · {threads_text(report.environment.threads)}"
    if report.distributed:
        d = report.distributed
        title += f" · world size {d.world_size} ({d.backend}; throughput summed over ranks)"
    headers = ["workload", "status", "lead [95% CI]", "step p50", "first step", "FLOP/s", "MFU", "peak mem",
               "energy/sample", "warnings"]
    rows = []
    for r in report.results:
        m, mem = r.metrics, r.memory
        energy = r.energy.device.per_sample_j if r.energy.device else None
        rows.append([named(r), r.status, _lead(r),
                     seconds(m.step_time_s.median if m.step_time_s else None), seconds(r.timing.first_step_s),
                     flops(m.achieved_flops_per_s), percent(m.mfu.value if m.mfu else None),
                     size(mem.device_peak_bytes or mem.host_peak_rss_bytes),
                     DASH if energy is None else f"{energy:.3g} J", _warnings(r) or DASH])
    return Group(fit(screen, title, headers, rows, always=3), *figure_lines(report), *capacity_lines(report))


def capacity_lines(report) -> list[Shown]:
    """A serving run with SLOs ends with its capacity: one line per curve (bench/analysis/serving.py)."""
    from bench.analysis.runs import make_runs
    from bench.analysis.serving import serving_curves

    runs, _ = make_runs([("", report)])
    curves = [c for c in serving_curves(runs) if c.capacity.code != "no_slo"]
    return [markup("[bold]{}[/]: {}", c.workload, words.capacity_line(c)) for c in curves]


def figure_lines(report) -> list[Shown]:
    """Per workload, the figures it declares beyond its lead (TTFT, ITL, TPOT, recall, ...); for a
    serving result, who served and each SLO verdict with whether its requests can support it."""
    lines = []
    for r in report.results:
        parts = [f"{f.label} {unit_cell(resolve_in(r, r.metrics, f.key), f.unit)}" for f in r.figures
                 if not f.lead and f.key != lead_spec(r).key]
        if parts and r.timing.step_times_s:
            lines.append(markup("[bold]{}[/]: {}", named(r), " · ".join(parts)))
        if r.stopping is not None and r.stopping.rule == "target_ci":
            lines.append(markup("[bold]{}[/]: {}", named(r), words.stopping_text(r.stopping)))
        lines += serving_lines(r)
    return lines


def serving_lines(result) -> list[Shown]:
    if result.served_by is None or not result.timing.step_times_s:
        return []
    out = [markup("  served by {}", words.served_text(result.served_by))]
    return out + [markup("  {}", words.note_text(n)) for n in tail_notes(None, result.workload_metrics or {})]


def print_problems(screen, report, verbose: bool = False) -> None:
    """Errors of failed or skipped workloads in full; warnings one line per cause with counts (every
    message with `verbose`: the report keeps them all); unavailable collectors in one line."""
    for r in report.results:
        if r.error:
            screen.print(markup("[bold]{}[/]: {}", named(r), r.error), soft_wrap=False)
    print_warnings(screen, [(named(r), w) for r in report.results for w in r.warnings], verbose)
    off = [(name, status.reason or "") for name, status in report.telemetry.collectors.items() if not status.available]
    if verbose:
        for name, why in off:
            screen.print(markup("[dim]collector {} unavailable: {}[/]", name, why), soft_wrap=False)
    elif off:
        screen.print(markup("[dim]collectors unavailable: {} (--verbose says why)[/]", ", ".join(n for n, _ in off)),
                     soft_wrap=False)


def warning_causes(warnings) -> list[tuple[str, int, list[str]]]:
    """(code, how many results carry it, which) per cause, the most frequent first."""
    by: dict[str, list[str]] = {}
    for where, w in warnings:
        by.setdefault(w.code, [])
        if where not in by[w.code]:
            by[w.code].append(where)
    return sorted(((code, len(ws), ws) for code, ws in by.items()), key=lambda x: (-x[1], x[0]))


def print_warnings(screen, warnings, verbose: bool = False) -> None:
    """(where, ResultWarning) pairs: each in full with `verbose`, else one line per cause."""
    if verbose:
        for where, w in warnings:
            screen.print(markup("[yellow]warning[/] {}: {}", where, w.message), soft_wrap=False)
        return
    for code, n, where in warning_causes(warnings):
        shown_where = ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")
        screen.print(markup("[yellow]warning {}[/] ×{}: {} ({})", code, n, words.warning_cause(code), shown_where),
                     soft_wrap=False)
    if warnings:
        screen.print(markup("[dim]each warning in full: --verbose, or the report's results[].warnings[/]"))
