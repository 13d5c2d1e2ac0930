"""Every sentence a comparison says, one place per code: the analysis gives codes and values
(bench/analysis/comparison.py), this module words them. Text is plain here; each output escapes it
for its medium (the terminal, Markdown, HTML, CSV)."""

from __future__ import annotations

from bench.analysis.comparison import Capacity, GateOutcome, Note, Row, RunInfo, Speedup
from bench.core.text import shell_path
from bench.model.derive import WITHIN_RUN


def _span(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}x"


def _ci(s: Speedup) -> str:
    return f"95 % CI {_span(s.ci_low, s.ci_high)}" if s.ci_low is not None else "no interval"


# ---- why a speedup has no verdict (Speedup.reason), as the whole sentence of the speedup -----------

REASONS = {
    "interrupted": lambda s, v: f"inconclusive: {v['run']} was interrupted",
    "contended": lambda s, v: f"inconclusive: {v['run']} was contended ({v['detail']})",
    "host_changed": lambda s, v: (f"inconclusive: the machine itself ran {v['factor']:.2f}x slower during {v['run']} "
                                  "(a fixed reference kernel, same host): its speed changed between the runs; run "
                                  "both again"),
    "one_repeat": lambda s, v: f"{s.ratio:.2f}x (1 repeat: run-to-run variance unknown; within-run {_ci(s)})",
    "few_repeats": lambda s, v: (f"{s.ratio:.2f}x ({v['repeats']} repeats: a verdict needs {v['needed']} per side "
                                 f"(--min-repeats); {_ci(s)})"),
    "no_ratio": lambda s, v: "no ratio: a run's throughput is zero or not a finite number (no work measured?)",
    "no_raw_times": lambda s, v: f"{s.ratio:.2f}x (published figures: no raw times, no interval)",
    "no_throughput": lambda s, v: "no throughput to compare",
    "no_interval": lambda s, v: f"no clear difference: {s.ratio:.2f}x (no interval)",
    "unclear": lambda s, v: f"no clear difference: {s.ratio:.2f}x ({_ci(s)})",
}


def speedup_text(s: Speedup) -> str:
    """The speedup and its verdict: "1.56x slower (95 % CI 1.52–1.61x)", the interval in the
    headline's direction, or why there is no verdict."""
    if s.reason is not None:
        return REASONS[s.reason.code](s, s.reason.values)
    if s.verdict == "faster":
        return f"{s.ratio:.2f}x faster ({_ci(s)})"
    if s.verdict == "slower":
        return f"{1 / s.ratio:.2f}x slower (95 % CI {_span(1 / s.ci_high, 1 / s.ci_low)})"
    return f"same within {s.min_effect * 100:g} % ({_ci(s)})"


def method(s: Speedup) -> str:
    """How the speedup's interval was computed."""
    return {"welch": f"Welch t on log throughputs, {s.repeats[0]} vs {s.repeats[1]} repeats",
            "within_run": WITHIN_RUN, "published": "published figures"}[s.method]


def short(row: Row) -> str:
    """The verdict in a few words for a table cell; the full sentence (why a verdict is withheld)
    goes in the notes under the table."""
    s, code = row.speedup, row.verdict
    if code in ("baseline", "not_comparable", "failed") or s is None or s.ratio is None:
        return {"not_comparable": "not comparable", "no_verdict": "no verdict"}.get(code, code)
    ci = f" [{s.ci_low:.2f}–{s.ci_high:.2f}]" if s.ci_low is not None and s.ci_high is not None else ""
    if code == "faster":
        return f"{s.ratio:.2f}x faster{ci}"
    if code == "slower":
        inv = f" [{1 / s.ci_high:.2f}–{1 / s.ci_low:.2f}]" if ci else ""
        return f"{1 / s.ratio:.2f}x slower{inv}"
    if code == "same":
        return f"same{ci}"
    return f"{s.ratio:.2f}x, {code.replace('_', ' ')}"


def _forced(diff: list[str]) -> str:
    return f" (forced: {', '.join(diff)} differ)" if diff else ""


def verdict_text(row: Row) -> str:
    """The row's verdict as a sentence: baseline, failed and why, not comparable and on what, or the
    speedup (marked where --force compared it anyway)."""
    if row.verdict == "baseline":
        return "baseline"
    if row.verdict == "failed":
        return NOTES["failed"](next(n.values for n in row.notes if n.code == "failed"))
    if row.speedup is None:
        diff = row.differences
        return f"not comparable ({', '.join(diff)} differ{'s' if len(diff) == 1 else ''}; --force compares anyway, marked)"
    return speedup_text(row.speedup) + _forced(row.differences if row.forced else [])


# ---- notes: the comparison's (whole sentences) and a row's (after its run's name) -------------------

def _differences(v) -> str:
    return "; ".join(f"{k}: {a!r} vs {b!r}" for k, a, b in v["differences"])


NOTES = {
    "duplicate": lambda v: (f"{shell_path(v['path'])}: dropped, the same run as {shell_path(v['first'])} (run_id "
                            f"{v['run_id'][:12]})"),
    "same_run_id": lambda v: (f"{', '.join(map(shell_path, v['paths']))}: set aside, not compared: they claim one run "
                              f"(run_id {v['run_id'][:12]}) but differ at {v['field']}; one was edited, or another "
                              "run was given its id"),
    "price_unused": lambda v: (f"the price for {v['match']!r} ({v['source']}) names no run here (no label, name or "
                               "device kind): it priced nothing"),
    "baseline_missing": lambda v: f"{v['workload']}: the baseline has no usable result for it; the first run is its "
                                  "baseline",
    "no_run": lambda v: f"{v['workload']}: no run measured it",
    "handicap": lambda v: (f"ran with --handicap {v['percent']:g} %, a deliberate slow-down for testing comparisons: "
                           "its figures are not the device's"),
    "published": lambda v: f"published figures, not measured by bench ({v['source'] or 'source not given'})",
    "not_comparable": lambda v: f"vs {v['baseline']}: not the same workload ({_differences(v)})",
    "verdict": lambda v: f"vs {v['baseline']}: {speedup_text(v['speedup'])}{_forced(v['forced'])}",
    "failed": lambda v: f"failed: {v['error'] or 'no measured steps'}",
    "output_mismatch": lambda v: (f"vs {v['baseline']}: output_mismatch: the outputs differ beyond the precision's "
                                  f"tolerance, so the speed compares different computations ({v['detail']})"),
    "warning": lambda v: f"{v['code']}: {v['message']}",
    "priced": lambda v: (f"priced at ${v['usd_per_hour']:g}/h for an instance of {v['devices']} device(s) "
                         f"({v['source']}); the run used {v['used']}, so its hour costs ${v['hourly']:.4g}"),
    "unpriced": lambda v: (f"no price matches it (label {v['label']!r}, device {v['backend']!r}): no cost "
                           "(--price LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES])"),
}


def note_text(note: Note) -> str:
    """What a note says, without the run it is about."""
    return NOTES[note.code](note.values)


def sentence(note: Note) -> str:
    """A note as a sentence that starts with its run ("b vs a: 1.20x slower ...", "b: noisy: ...")."""
    text = note_text(note)
    if note.run is None:
        return text
    return f"{note.run} {text}" if text.startswith("vs ") else f"{note.run}: {text}"


def gate_text(g: GateOutcome) -> str:
    return (f"{g.workload}: {g.run} vs {g.baseline}, {g.gate.metric}: {speedup_text(g.speedup)} — limit "
            f"{g.gate.limit:.0%} below")


CAPACITY = {
    "no_slo": lambda c: "no SLO to judge by",
    "below": lambda c: f"below {c.below_qps:g} requests/s (the lowest rate tried missed the SLO)",
    "at_least": lambda c: f"at least {c.qps:g} requests/s (every rate tried met the SLO)",
    "bracket": lambda c: f"{c.qps:g} requests/s (met the SLO; {c.below_qps:g} did not)",
}


def capacity_text(c: Capacity) -> str:
    return CAPACITY[c.code](c)


def display(run: RunInfo) -> str:
    """The run's name, marked where it did not end well."""
    return run.name + {"interrupted": " (interrupted)", "failed": " (failed)"}.get(run.status, "")
