"""Every sentence a comparison says, one place per code: the analysis gives codes and values
(bench/analysis/comparison.py), this module words them. Text is plain here; each output escapes it
for its medium (the terminal, Markdown, HTML, CSV)."""

from __future__ import annotations

from bench.analysis.comparison import Capacity, GateOutcome, Note, Row, RunInfo, Speedup
from bench.core.text import clip, shell_path
from bench.model.derive import WITHIN_RUN
from bench.render.format import ms


def _span(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}x"


def _ci(s: Speedup) -> str:
    return f"95 % CI {_span(s.ci_low, s.ci_high)}" if s.ci_low is not None else "no interval"


# ---- why a speedup has no verdict (Speedup.reason), as the whole sentence of the speedup -----------

REASONS = {
    "interrupted": lambda s, v: f"inconclusive: {v['run']} was interrupted",
    "unsettled": lambda s, v: f"no verdict: the capacity of {v['box']} is unsettled ({v['why']}: the machine moved under "
                              "its search)",
    "requests_failed": lambda s, v: (f"inconclusive: {v['share']:.1%} of {v['run']}'s requests failed: a p99 of the "
                                     "completed ones is not the p99 of the requests (a server that fails its slowest "
                                     "would read faster)"),
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
    "no_values": lambda s, v: (f"no {s.metric} of each repeat to compare (a run without them, or a repeat where it "
                               "could not be computed)"),
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

VALUE_CHARS = 80  # a report's value quoted inside a sentence: the sentence stays whole, the value is cut
TEXT_CHARS = 400  # a report's text (a source, a message, an error) inside a sentence


def _q(value, limit: int = VALUE_CHARS) -> str:
    """A report's value as a sentence quotes it, cut (marked …) where it is long."""
    return clip(repr(value), limit, "…'" if isinstance(value, str) else "…")


def _t(text, limit: int = TEXT_CHARS) -> str:
    return clip(str(text), limit, "…")


def _differences(v) -> str:
    return "; ".join(f"{_t(k, VALUE_CHARS)}: {_q(a)} vs {_q(b)}" for k, a, b in v["differences"])


def _priced(v) -> str:
    price = f"priced at ${v['usd_per_hour']:g}/h for an instance of {v['devices']} device(s) ({_t(v['source'])})"
    if v.get("basis") == "held":
        return (f"{price}; published figures name no device count, and the run held all {v['used']} devices of its "
                f"machine ({_t(v.get('device'), VALUE_CHARS)}), so it is charged for the instance it held: "
                f"${v['hourly']:.4g} an hour")
    return f"{price}; the run used {v['used']}, so its hour costs ${v['hourly']:.4g}"


def _unpriced(v) -> str:
    label = f"label {_q(v['label'])}" if v["label"] else "no label"
    return (f"no price matches it ({label}, device {_q(v['backend'])}): no cost "
            "(--price LABEL_OR_DEVICE=USD_PER_HOUR[/DEVICES])")


def _unmatched(v) -> str:
    labels = ", ".join(_q(x) for x in v["labels"][:12]) or "none"
    return (f"the price for {_q(v['match'])} ({_t(v['source'], VALUE_CHARS)}) matches no run, so it priced nothing; "
            f"a price names a run's label (here: {labels}) or a device kind (here: {', '.join(v['devices']) or 'none'})")


NOTES = {
    "duplicate": lambda v: (f"{shell_path(v['path'])}: dropped, the same run as {shell_path(v['first'])} (run_id "
                            f"{v['run_id'][:12]})"),
    "same_run_id": lambda v: (f"{', '.join(map(shell_path, v['paths']))}: set aside, not compared: they claim one run "
                              f"(run_id {v['run_id'][:12]}) but differ at {v['field']}; one was edited, or another "
                              "run was given its id"),
    "baseline_missing": lambda v: f"{v['workload']}: the baseline has no usable result for it; the first run is its "
                                  "baseline",
    "no_run": lambda v: f"{v['workload']}: no run measured it",
    "handicap": lambda v: (f"ran with --handicap {v['percent']:g} %, a deliberate slow-down for testing comparisons: "
                           "its figures are not the device's"),
    "published": lambda v: f"published figures, not measured by bench ({_t(v['source'] or 'source not given')})",
    "not_comparable": lambda v: f"vs {v['baseline']}: not the same workload ({_differences(v)})",
    "verdict": lambda v: f"vs {v['baseline']}: {speedup_text(v['speedup'])}{_forced(v['forced'])}",
    "failed": lambda v: f"failed: {_t(v['error'] or 'no measured steps')}",
    "output_mismatch": lambda v: (f"vs {v['baseline']}: output_mismatch: the outputs differ beyond the precision's "
                                  f"tolerance, so the speed compares different computations ({_t(v['detail'])})"),
    "warning": lambda v: f"{v['code']}: {_t(v['message'])}",
    "priced": _priced,
    "scaling_threads": lambda v: ("the threads per rank differ between world sizes ("
                                  + ", ".join(f"world size {n}: {t if t is not None else 'unknown'}"
                                              for n, t in v["threads"])
                                  + "): the efficiency mixes more ranks with fewer threads each, not scaling alone"),
    "superlinear": lambda v: (f"efficiency {v['efficiency']:.1%} at world size {v['world_size']}: above 100 % with the "
                              "same threads per rank, "
                              + (f"and {v['base']} (the smallest world size) was contended, which understates the "
                                 "throughput it is divided by" if v["base_contended"] else
                                 "which nothing in the runs explains: check the data each rank sees")),
    "unpriced": _unpriced,
    "price_unmatched": _unmatched,
    "arithmetic": lambda v: arithmetic_text(v),
    "served_by": lambda v: (f"vs {v['baseline']}: served otherwise ({_differences(v)}): the figures compare the "
                            "serving set-ups as well"),
    "tail": lambda v: tail_text(v),
    "old_lead": lambda v: (f"a report written when serving results led with the engine-busy rate: it leads with "
                           f"{v['lead']} now, the busy rate beside it"),
    "recomputed": lambda v: recomputed_text(v),
    "settle": lambda v: settle_text(v),
    "set_aside": lambda v: (f"{v['count']} repeat{'s' if v['count'] > 1 else ''} set aside as disturbed and redone, "
                            "kept in the report and left out of its figures"
                            + (f" (first: {_t(v['first'], VALUE_CHARS)})" if v.get("first") else "")),
}


def _ops(ops: list[str], limit: int = 8) -> str:
    shown_ops = ", ".join(_t(o, VALUE_CHARS) for o in ops[:limit])
    return shown_ops + (f" and {len(ops) - limit} more" if len(ops) > limit else "")


def _arithmetic_part(d: dict) -> str:
    if d["kind"] == "matmul":
        name = {"ieee": "IEEE fp32", "tf32": "TF32"}
        return (f"its fp32 matmuls ran as {name.get(d['here'], d['here'])}, the baseline's as "
                f"{name.get(d['there'], d['there'])}")
    if not d.get("recorded"):
        return (f"{' and '.join(d['devices'])} autocast different ops to the lower precision (Gaudi's bridge lowers "
                "softmax, log_softmax and layer_norm; CUDA keeps them in fp32); these reports do not record the lists")
    sides = ([f"it lowers {_ops(d['lower_here'])}, which the baseline keeps in fp32"] if d["lower_here"] else []) + \
        ([f"the baseline lowers {_ops(d['lower_there'])}, which it keeps in fp32"] if d["lower_there"] else [])
    return "autocast: " + "; ".join(sides)


def arithmetic_text(v: dict) -> str:
    """Same precision name, different arithmetic (bench/analysis/arithmetic.py): what differs."""
    return (f"vs {v['baseline']}: the same precision, other arithmetic ({'; '.join(map(_arithmetic_part, v['differences']))}):"
            " the speed compares different computations, and so may the outputs")


def _target(v) -> str:
    """The `--target-ci` that would get there, rounded down to a tenth of a percent (at least 0.1 %)."""
    return f"--target-ci {max(0.1, int(v['target_ci'] * 1000) / 10):g}%"


def settle_text(v: dict) -> str:
    """What would settle an unclear verdict, from the two runs' variances."""
    band = f"{v['min_effect'] * 100:g} %"
    if v["more"] is None:
        return (f"vs {v['baseline']}: effectively the same: {v['ratio']:.3f}x differs by about the ±{band} band "
                f"itself, which over 100 more repeats per side would not settle")
    said = f"the same within {band}" if v["toward"] == "same" else v["toward"]
    return (f"vs {v['baseline']}: about {v['more']} more repeat{'s' if v['more'] > 1 else ''} per side "
            f"({v['repeats']} now) would likely make it {said}, were the ratio and the variances to hold; "
            f"bench run {_target(v)} on both adds repeats until each is that precise")

def _figure(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.4g}" if isinstance(value, float) else _q(value)


FIGURES_DEFINED = (0, 3)  # the release whose serving figures' definitions this bench uses


def _release(version) -> tuple[int, int] | None:
    """(major, minor) of a bench version string, where it is one (`0.2.0` -> (0, 2))."""
    parts = str(version or "").split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit() else None


def recomputed_text(v: dict) -> str:
    """A serving result whose stored figures its own request log does not bear out: a report another
    version of bench wrote (other definitions: interpolated percentiles, rates from the first arrival), or
    one whose stored figures were altered."""
    shown = "; ".join(f"{_t(k, VALUE_CHARS)} {_figure(a)} stored, {_figure(b)} from the log" for k, a, b in v["figures"])
    more = f" and {v['count'] - len(v['figures'])} more" if v["count"] > len(v["figures"]) else ""
    written = v.get("written_by")
    if _release(written) is not None and _release(written) < FIGURES_DEFINED:
        return (f"written by bench {_t(written, 20)}, whose serving figures had other definitions: every figure shown "
                f"is recomputed from its request log by this version's ({shown}{more})")
    return (f"its stored serving figures disagree with its own request log ({shown}{more}): every figure shown is "
            "recomputed from the log")


SLO_NAMES = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "e2e"}


def _ms(seconds) -> str:
    return "a failed request" if seconds is None else ms(seconds)


def tail_text(v: dict) -> str:
    """An SLO verdict and whether its requests can support it: "p99 TTFT 212 ms <= 250 ms, but 60
    requests cannot support a p99 claim: about 399 more with none over"."""
    at = f" at {v['qps']:.3g} requests/s" if v.get("qps") is not None else ""
    name, pct = SLO_NAMES.get(v["slo"], v["slo"]), f"{v['confidence'] * 100:g} %"
    value = f"{_ms(v['p99_s'])} {'≤' if v['met'] else '>'}" if v["p99_s"] is not None else "is a failed request, over"
    head = f"p99 {name}{at} {value} {_ms(v['bound_s'])}"
    counts = f"{v['over']} of {v['n']} requests over"
    if v["holds"]:
        return f"{head}: holds at {pct} confidence ({counts}; early stopping needs {v['needed']})"
    if v["met"]:
        return (f"{head}, but {v['n']} requests cannot support a p99 claim: about {v['more']} more with none over "
                f"({counts})")
    if v["refuted"]:
        return f"{head}: missed, at {pct} confidence ({counts})"
    return f"{head}, but {v['n']} requests cannot show the miss at {pct} confidence ({counts}): provisional"


def note_text(note: Note) -> str:
    """What a note says, without the run it is about."""
    return NOTES[note.code](note.values)


def sentence(note: Note) -> str:
    """A note as a sentence that starts with its run ("b vs a: 1.20x slower ...", "b: noisy: ...")."""
    text = note_text(note)
    if note.run is None:
        return text
    return f"{note.run} {text}" if text.startswith("vs ") else f"{note.run}: {text}"


def figure_text(s: Speedup) -> str:
    """run / baseline of a declared figure, without the words of speed: "1.25x the baseline's, higher
    (95 % CI 1.10–1.42x)"."""
    if s.reason is not None:
        return REASONS[s.reason.code](s, s.reason.values)
    if s.verdict == "same":
        return f"same within {s.min_effect * 100:g} % ({_ci(s)})"
    return f"{s.ratio:.2f}x the baseline's, {'higher' if s.verdict == 'faster' else 'lower'} ({_ci(s)})"


def gate_text(g: GateOutcome) -> str:
    if g.figure is None:
        change, side = speedup_text(g.speedup), "below"
    else:
        change, side = figure_text(g.speedup), "below" if g.better == "higher" else "above"
    return (f"{g.workload}: {g.run} vs {g.baseline}, {g.gate.metric}: {change} — limit {g.gate.limit:.0%} {side}"
            + (f"; {hint_text(g.hint)}" if g.hint is not None else ""))


def _quieter(run: str | None, v) -> str:
    load = f" (other load used {v['other_load']:.1f} of {v['cpus']:g} cores)" if v["other_load"] is not None and \
        v["cpus"] else ""
    fewer = f", or again with --threads {v['fit']}" if v["fit"] and v["threads"] and v["fit"] < v["threads"] else ""
    return f"for a verdict: run {run or 'it'} where nothing else shares the machine{load}{fewer}"


def _narrower(v) -> str:
    head = f"for a verdict: an interval narrower than {v['ci_low']:.2f}–{v['ci_high']:.2f}x"
    if v.get("toward") is None:
        return f"{head} — more repeats ({v['repeats']} now) or longer ones (--time-budget)"
    if v["more"] is None:
        return f"{head}: the ratio sits at the limit itself, which over 100 more repeats per side would not settle"
    return (f"{head}: about {v['more']} more repeats per side ({v['repeats']} now) would likely make it "
            f"{v['toward']}, were the ratio and the variances to hold (bench run {_target(v)} on both)")


HINTS = {
    "quieter": _quieter,
    "rerun": lambda run, v: ("for a verdict: run both again, one after the other" if v["why"] == "host_changed" else
                             "for a verdict: run it again to the end"),
    "more_repeats": lambda run, v: f"for a verdict: --repeats {v['needed']} or more on each side ({v['repeats']} now)",
    "narrower": lambda run, v: _narrower(v),
}


def hint_text(note: Note) -> str:
    """What would give an inconclusive gate a verdict."""
    return HINTS[note.code](note.run, note.values)


STOPPED = {
    "precise": lambda st: "the target was reached",
    "max_repeats": lambda st: f"--max-repeats {st.max_repeats} stopped it first",
    "max_time": lambda st: f"--max-time {st.max_time_s:g} s stopped it first (no repeat was started that would end "
                           "after it)",
    "failed": lambda st: "a repeat failed", "skipped": lambda st: "a repeat was skipped",
    "interrupted": lambda st: "it was interrupted", "repeats": lambda st: "the fixed --repeats ran",
    "budget": lambda st: "the next repeat would have run past the study's device-time budget",
}


CAUSES = {  # a note's cause in a line, where the notes are summed up (compare without --verbose)
    "arithmetic": "the same precision name, other arithmetic (what differs: --verbose)",
    "served_by": "served otherwise than the baseline (how: --verbose)",
    "tail": "an SLO verdict per offered rate (each: --verbose)",
    "set_aside": "repeats set aside as disturbed and redone",
}


def cause_line(key: tuple[str, str | None], runs: list[str | None]) -> str:
    """`warning contended (3 runs: a, b, c): other load shared the machine ...`."""
    code, sub = key
    named = [r for r in runs if r]
    who = f"{len(named)} run{'s' if len(named) != 1 else ''}: " + ", ".join(_t(r, VALUE_CHARS) for r in named[:4]) + \
        (f" and {len(named) - 4} more" if len(named) > 4 else "")
    what = warning_cause(sub) if code == "warning" else CAUSES.get(code, code)
    return f"{code if sub is None else f'warning {sub}'} ({who}): {what}"


def warning_cause(code: str) -> str:
    """What a warning code means, in a line (the model's table of codes)."""
    from bench.model.report import WARNING_CODES

    return WARNING_CODES.get(code, code)


def stopping_text(st) -> str:
    """How a --target-ci result's repeats ended: "5 repeats counted, 95 % interval ±2.8 % (target ±3 %):
    the target was reached; 2 set aside as disturbed and redone"."""
    counted = st.ran - st.set_aside
    width = f"±{st.half_width * 100:.1f} %" if st.half_width is not None else "no interval"
    redone = f"; {st.set_aside} set aside as disturbed and redone (kept in the report)" if st.set_aside else ""
    return (f"{counted} repeat{'s' if counted != 1 else ''} counted, 95 % interval of {st.metric} {width} (target "
            f"±{st.target_ci * 100:g} %): {STOPPED[st.stopped](st)}{redone}")


def _sure(valid) -> str:
    return {True: " at 99 % confidence", False: ", provisionally"}.get(valid, "")


CAPACITY = {
    "no_slo": lambda c: "no SLO to judge by",
    "below": lambda c: f"below {c.below_qps:.3g} requests/s (the lowest rate tried missed the SLO{_sure(c.below_valid)})",
    "at_least": lambda c: (f"at least {c.qps:.3g} requests/s (every rate tried met the SLO; the highest"
                           f"{_sure(c.qps_valid)})"),
    "bracket": lambda c: (f"{c.qps:.3g} requests/s (met the SLO{_sure(c.qps_valid)}; {c.below_qps:.3g} did not"
                          f"{_sure(c.below_valid)})"),
}


def served_text(s) -> str:
    """Who served a serving run: "in-process", "http://127.0.0.1:41213 (bench serve, started by the run)"."""
    if s is None:
        return "—"
    if s.engine == "in-process":
        return "in-process" + (" (static shapes)" if s.static_shapes else "")
    parts = [p for p in (s.server, "started by the run" if s.started_by_run else None,
                         "static shapes" if s.static_shapes else None, "no telemetry of its machine" if s.telemetry
                         else None) if p]
    return f"{s.endpoint or 'http'}" + (f" ({', '.join(parts)})" if parts else "")


UNSETTLED = {
    "disturbed": lambda v: f"the probe at {v['qps']:.3g} requests/s was disturbed ({v['why']})",
    "verdicts": lambda v: f"{v['met_qps']:.3g} requests/s met the SLO where {v['missed_qps']:.3g} missed it",
    "latency": lambda v: (f"p99 {v['slo'].upper()} fell from {_ms(v['low_p99_s'])} at {v['low_qps']:.3g} requests/s to "
                          f"{_ms(v['high_p99_s'])} at {v['high_qps']:.3g}, beyond their 95 % intervals"),
}


SETTLE = {
    "quieter": lambda v: "a quieter machine",
    "more_requests": lambda v: (f"{v['more']:,} more requests at {v['qps']:.3g} requests/s (--requests)" if v.get("more")
                                else f"more requests at {v['qps']:.3g} requests/s (--requests)"),
    "between": lambda v: f"a probe between {v['low']:.3g} and {v['high']:.3g} requests/s",
    "higher": lambda v: f"a rate above {v['qps']:.3g} requests/s",
    "lower": lambda v: f"a rate below {v['qps']:.3g} requests/s",
}


def capacity_line(curve) -> str:
    """The run's last line for a serving curve: the capacity at its SLOs, the bracket, how valid, and
    what would settle it: "capacity at p99 TTFT <= 250 ms: 8 requests/s (met the SLO at 99 % confidence;
    16 did not, provisionally); to settle it: 210 more requests at 16 requests/s (--requests)"."""
    slos = ", ".join(f"p99 {k.upper()} <= {_ms(v)}" for k, v in (("ttft", curve.slo_ttft_s), ("tpot", curve.slo_tpot_s),
                                                                  ("e2e", curve.slo_e2e_s)) if v is not None)
    c = curve.capacity
    fix = "; ".join(SETTLE[s.code](s.values) for s in c.settle)
    return f"capacity at {slos or 'no SLO'}: {capacity_text(c)}" + (f"; to settle it: {fix}" if fix else "")


def capacity_text(c: Capacity) -> str:
    """The capacity and its bracket; where the probes do not settle it, that first, and why: latency
    that falls as load rises is a machine whose speed moved, not a capacity."""
    text = CAPACITY[c.code](c)
    if c.unsettled is None:
        return text
    return (f"unsettled: {UNSETTLED[c.unsettled.code](c.unsettled.values)} — the machine moved under the search; "
            f"rerun on a quieter machine (as probed: {text})")


def display(run: RunInfo) -> str:
    """The run's name, marked where it did not end well."""
    return run.name + {"interrupted": " (interrupted)", "failed": " (failed)"}.get(run.status, "")
