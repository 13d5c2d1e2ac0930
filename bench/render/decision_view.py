"""A study's decision in words: per box, one table of its answers (fine-tune throughput with its interval,
capacity at the SLOs with its bracket and validity, USD per million requests at capacity and per epoch,
energy per request), every empty cell saying why; then one verdict per question across boxes, with its
interval or bracket and how it was formed. The terminal, Markdown and HTML take the same cells."""

from __future__ import annotations

from rich.console import Group

from bench.render.format import DASH, markup, ms, num, with_ci
from bench.render.layout import fit

WHY = {
    "not_run": "not run (the budget, or a failure before it)", "failed": "failed", "no_result": "not in the study",
    "no_price": "no price for this box", "no_epoch": "the study names no epoch_samples", "no_slo": "no SLO",
    "no_capacity": "no capacity", "not_measured": "not measured here", "no_requests": "no request completed",
    "not_recorded": "not recorded (a report from before energy per request)",
    "unsettled": "the capacity is unsettled",
}
VERDICT_WORDS = {"more": "more", "less": "less", "same": "the same", "overlap": "no verdict: the brackets overlap",
                 "no_verdict": "no verdict", "not_comparable": "not comparable"}


def figure_text(f, unit: str = "", digits: int = 3) -> str:
    """A value with its interval `v [lo, hi]`, or `— (why)`."""
    if f.value is None:
        return f"{DASH} ({WHY.get(f.why, f.why or 'unknown')})"
    text = with_ci({"value": f.value, "ci_low": f.low, "ci_high": f.high}, digits)
    return f"{text} {unit}".strip()


def cost_text(f) -> str:
    """USD at capacity: the bracket's two ends (the rate that missed makes it cheaper) or `— (why)`."""
    if f.value is None:
        return figure_text(f)
    if f.low is not None:
        return f"{num(f.low, 3)}–{num(f.value, 3)}"
    return num(f.value, 3)


def _valid(*sides) -> str:
    if False in sides:
        return "provisional"
    return "valid" if all(s is True for s in sides) else "validity unknown"


def capacity_short(c, why=None) -> str:
    """`8–16 req/s (valid)`, `≥ 8 req/s (provisional)`, `< 2 req/s (valid)`, `unsettled (...)`, or `— (why)`."""
    if c is None:
        return f"{DASH} ({WHY.get(why, why or 'no capacity')})"
    if c.unsettled is not None:  # the machine moved under the search: the bracket is no capacity
        return f"unsettled ({UNSETTLED_SHORT[c.unsettled.code]}; as probed: {_bracket(c)})"
    return _bracket(c)


UNSETTLED_SHORT = {"disturbed": "a probe was disturbed", "verdicts": "a rate met the SLOs above one that missed",
                   "latency": "latency fell as load rose"}


def _bracket(c) -> str:
    if c.code == "bracket":
        return f"{c.qps:.3g}–{c.below_qps:.3g} req/s ({_valid(c.qps_valid, c.below_valid)})"
    if c.code == "at_least":
        return f"≥ {c.qps:.3g} req/s ({_valid(c.qps_valid)}; every rate tried met the SLOs)"
    if c.code == "below":
        return f"< {c.below_qps:.3g} req/s ({_valid(c.below_valid)}; every rate tried missed)"
    return f"{DASH} (no SLO)"


def energy_text(e) -> str:
    s, b = e.session_j, e.busy_j
    if s.value is None and b.value is None:
        return figure_text(s)
    return f"{figure_text(s, 'J')} session · {figure_text(b, 'J')} busy"


def slo_text(row) -> str:
    parts = [f"{name} p99 ≤ {ms(v)}" for name, v in (("TTFT", row.slo_ttft_s), ("TPOT", row.slo_tpot_s),
                                                       ("e2e", row.slo_e2e_s)) if v is not None]
    return ", ".join(parts) or DASH


def decision_cells(decision) -> tuple[list[str], list[list[str]]]:
    """Headers and one row per box (plain text; each output escapes it)."""
    samples = next((r.epoch_samples for r in decision.boxes if r.epoch_samples), None)
    epoch = f"USD / epoch ({samples:,} samples)" if samples else "USD / epoch"
    headers = ["box", "fine-tune samples/s [95% CI]", "capacity at the SLOs", "SLOs", "USD / 1M req at capacity",
               epoch, "J / request at capacity", "warnings"]
    rows = [[r.box, figure_text(r.finetune), capacity_short(r.capacity, r.capacity_why), slo_text(r),
             cost_text(r.usd_per_1m_requests), figure_text(r.usd_per_epoch, "", 3), energy_text(r.energy),
             warnings_text(r.warnings)] for r in decision.boxes]
    return headers, rows


def warnings_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} ×{n}" for code, n in sorted(counts.items())) or DASH


def verdict_text(v) -> str:
    """One question's verdict across boxes, with its interval or bracket and how it was formed."""
    if v.question == "finetune":
        return _finetune_text(v)
    return _capacity_text(v)


def _finetune_text(v) -> str:
    from bench.render import words

    if v.speedup is None:
        return f"fine-tune: {v.box} against {v.baseline}: {VERDICT_WORDS[v.verdict]}" + _differences(v)
    s = v.speedup
    said = s.reason is not None and s.reason.code == "one_repeat"  # its words already say how it was formed
    return f"fine-tune: {v.box} against {v.baseline}: {words.speedup_text(s)}" + ("" if said else f" ({words.method(s)})")


def _capacity_text(v) -> str:
    from bench.render import words

    head = f"capacity at the SLOs: {v.box} against {v.baseline}: "
    if v.reason is not None and v.reason.code == "unsettled":
        return head + words.REASONS["unsettled"](None, v.reason.values)
    if v.verdict in ("no_verdict", "not_comparable"):
        return head + VERDICT_WORDS[v.verdict] + _differences(v)
    span = f"[{v.low:.2g}, {'∞' if v.high is None else format(v.high, '.2g')}]"
    how = ("; the interval is the brackets' ratio: the box's lowest possible capacity over the baseline's highest, "
           "and its highest over the baseline's lowest")
    shaky = "; a bracket end rests on a provisional verdict (too few requests)" if v.provisional else ""
    if v.verdict == "overlap":
        return f"{head}no verdict: the brackets overlap (the ratio lies in {span}){how}{shaky}"
    word = "more" if v.verdict == "more" else "fewer"
    ratio = f"{v.ratio:.2g}x " if v.ratio else ""
    return f"{head}serves {ratio}{span} the requests/s within the SLOs ({word}){how}{shaky}"


def _differences(v) -> str:
    diff = (v.reason.values or {}).get("differences") if v.reason is not None else None
    return f" ({', '.join(map(str, diff))} differ)" if diff else ""


def decision_renderable(screen, decision):
    """The table and the verdicts under it."""
    headers, rows = decision_cells(decision)
    title = f"{decision.study}: {decision.question}" if decision.question else decision.study
    parts = [fit(screen, title, headers, rows, 3)]
    parts += [markup("[bold]verdict:[/] {}", verdict_text(v)) for v in decision.verdicts]
    cut = [f"{r.box}: {', '.join(r.cut)}" for r in decision.boxes if r.cut]
    parts += [markup("[yellow]not run:[/] {} (the budget ran out before them; their answers are missing)", c)
              for c in cut]
    return Group(*parts)


def print_decisions(screen, decisions) -> None:
    for d in decisions:
        screen.print(decision_renderable(screen, d))
        screen.print()
