"""One typed comparison: the analysis computes it once and says nothing in words; every output
(terminal, Markdown, CSV, JSON, HTML, DataFrame) only formats it, and every code has one wording."""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
from pathlib import Path
from typing import get_args

import pytest
from conftest import cli_run as run_cli
from reportgen import make_report, serving_report

from bench.analysis.compare import compare
from bench.analysis.comparison import CurvePoint, HintCode, NoteCode, ReasonCode, UnsettledCode
from bench.analysis.options import parse_gate
from bench.analysis.serving import capacity
from bench.model.io import dump_report, load_report
from bench.model.report import FigureSpec, Fingerprint, ServedBy
from bench.render import words
from bench.render.screen import Screen

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = [str(p) for p in sorted((ROOT / "reports" / "reference").glob("*.json"))]


def everything():
    """Reports that between them raise every note a comparison can carry."""
    base = make_report("base", 0.1, repeats=3)
    base.results[0].fingerprint = Fingerprint("loss after each of 3 fixed steps", "fp32", [6.9, 6.85, 6.8], [], [])
    wrong = make_report("wrong", 0.05, seed=1, repeats=3, warnings=[{"code": "noisy", "message": "CV 9 %"}])
    wrong.results[0].fingerprint = Fingerprint("loss after each of 3 fixed steps", "fp32", [6.9, 5.1, 3.2], [], [])
    failed = make_report("broken", 0.1, seed=2)
    failed.results[0].status, failed.results[0].error = "failed", "RuntimeError: boom"
    failed.results[0].timing.repeats[0].step_times_s = []
    failed.results[0].timing.repeats[0].step_samples = []
    failed.results[0].timing.repeats[0].step_tokens = []
    lost = make_report("lost", 0.1, seed=4, workload="retrieval-encode")  # the only run of its workload failed
    lost.results[0].status = "failed"
    slowed = make_report("slowed", 0.12, seed=3, repeats=3, params={"batch_size": 16})
    slowed.config = {"measure": {"handicap": 20.0}}
    twin, edited = make_report("twin", 0.1, seed=5), make_report("twin", 0.5, seed=5)  # one run_id, other times
    unclear = make_report("unclear", 0.101, seed=6, repeat_means=[0.09, 0.1, 0.112])  # no clear difference
    redone = make_report("redone", 0.1, seed=7, repeats=4)
    redone.results[0].timing.repeats[1].set_aside = ["other processes used 1.10 CPU cores"]
    loaded = [("base.json", base), ("wrong.json", wrong), ("broken.json", failed), ("slowed.json", slowed),
              ("unclear.json", unclear), ("redone.json", redone),
              ("copy.json", base), ("lost.json", lost), ("serve.json", serving_report("srv", [(2.0, True), (4.0, False)])),
              ("twin.json", twin), ("edited.json", edited),
              ("http.json", serving_report("srv-http", [(2.0, True)], seed=5,
                                           served_by=ServedBy("http", "bench serve", "http://127.0.0.1:8000",
                                                              "completions", "tiny", True, True))),
              ("lying.json", lying_serving_report())]
    old = serving_report("srv-old", [(2.0, True), (4.0, False)], seed=6)  # led with the busy rate, as 0.2 wrote it
    for res in old.results:
        res.figures = [FigureSpec("metrics.samples_per_s", "requests/s busy", "requests/s", "higher", lead=True)]
    return loaded + [("old.json", old)] + scaling_sweeps() + arithmetic_pair() + [(p, load_report(p)) for p in REFERENCE]


def lying_serving_report():
    """A serving report whose stored request count its own request log does not bear out."""
    from test_client_faults import serving_report as logged_serving_report

    r = logged_serving_report("liar", seed=11)
    r.results[0].workload_metrics["requests"] = 1_000_000
    return r


def arithmetic_pair(workload="mixed", precision="bf16", recorded=True):
    """A cuda run and an hpu run of one workload in the same precision, each with its stack's lists."""
    from bench.devices.cuda import autocast as cuda_lists
    from bench.devices.hpu import autocast as hpu_lists
    from bench.model.report import Arithmetic

    out = []
    for device, lists, seed in (("cuda", cuda_lists.autocast_lists(), 8), ("hpu", hpu_lists.autocast_lists({}), 9)):
        r = make_report(f"{device}-{precision}", 0.1, seed=seed, workload=workload, device=device, repeats=3,
                        params={"precision": precision})
        r.environment.arithmetic = Arithmetic(**lists) if recorded else None
        out.append((f"{device}-{precision}.json", r))
    return out


def compared_row(pair):
    """The row of the pair's second run, against the first."""
    [row] = [r for r in compare(pair).workloads[0].rows if not r.baseline]
    return row


def test_an_hpu_vs_cuda_bf16_pair_is_flagged_as_different_arithmetic():
    """Gaudi's bridge lowers softmax, log_softmax and layer_norm in bf16 autocast (1.19 autocast_helpers.h);
    CUDA keeps them in fp32 (PyTorch Autocast Op Reference). 0.1 gave such a pair a plain verdict."""
    row = compared_row(arithmetic_pair())
    [note] = [n for n in row.notes if n.code == "arithmetic"]
    [d] = note.values["differences"]
    assert {"softmax", "log_softmax", "layer_norm"} <= set(d["lower_here"]) and d["recorded"]
    assert row.verdict != "not_comparable" and "other arithmetic" in words.sentence(note)
    assert "layer_norm" in words.sentence(note)
    older = compared_row(arithmetic_pair(recorded=False))  # reports without the lists: the stacks' defaults
    assert [n.values["differences"][0]["recorded"] for n in older.notes if n.code == "arithmetic"] == [False]
    fp32 = compared_row(arithmetic_pair(precision="fp32"))
    assert not [n for n in fp32.notes if n.code == "arithmetic"]  # no autocast, the same matmuls


def test_fp32_matmuls_as_ieee_against_tf32_are_different_arithmetic():
    from bench.model.report import Arithmetic

    pair = arithmetic_pair(precision="fp32")
    pair[0][1].environment.arithmetic = Arithmetic(matmul_fp32="tf32")
    pair[1][1].environment.arithmetic = Arithmetic(matmul_fp32="ieee")  # NVIDIA_TF32_OVERRIDE=0
    row = compared_row(pair)
    [note] = [n for n in row.notes if n.code == "arithmetic"]
    assert note.values["differences"] == [{"kind": "matmul", "here": "ieee", "there": "tf32"}]
    assert "IEEE fp32" in words.sentence(note) and "TF32" in words.sentence(note)


def scaling_sweeps():
    """Two --scaling sweeps: one whose threads per rank differ, one above 100 % with the same threads."""
    from bench.model.report import RankResult

    out = []
    for workload, points in (("blender-generate", [(1, 0.1, 2), (2, 0.1, 1)]),
                             ("retrieve-refine", [(1, 0.1, 1), (2, 0.06, 1)])):
        for n, step_s, threads in points:
            r = make_report(f"{workload}-{n}", step_s, params={"world_size": n}, workload=workload, repeats=3, seed=n)
            for rep in r.results[0].timing.repeats:
                rep.threads = threads
            r.results[0].per_rank = [RankResult(k, "ok", timing=r.results[0].timing) for k in range(n)] if n > 1 else []
            out.append((f"{workload}-{n}.json", r))
    return out


def all_notes(c):
    return list(c.notes) + [n for comp in c for row in comp.rows for n in row.notes] + \
        [n for g in c.scaling for n in g.notes]


def costing():
    from bench.analysis.comparison import Costing
    from bench.analysis.cost import parse_price

    return Costing(prices=(parse_price("base=2/2"), parse_price("hpu=dl1.24xlarge"), parse_price("gpu=1")),
                   kwh_usd=0.2)


def test_every_code_has_exactly_one_wording():
    notes, reasons = set(get_args(NoteCode)), set(get_args(ReasonCode))
    assert not notes & reasons
    assert set(words.NOTES) == notes and set(words.REASONS) == reasons
    assert set(words.HINTS) == set(get_args(HintCode)) and not set(words.HINTS) & (notes | reasons)
    assert set(words.CAPACITY) == {"bracket", "at_least", "below", "no_slo"}
    assert set(words.UNSETTLED) == set(get_args(UnsettledCode))


def test_a_comparison_carries_every_note_as_a_code_and_each_is_worded():
    c = compare(everything(), costing=costing(), gates=(parse_gate("samples_per_s:5%"),))
    notes = all_notes(c)
    assert {n.code for n in notes} == set(get_args(NoteCode))
    for n in notes:
        assert words.sentence(n).startswith(n.run or ""), n
    broken = next(r for comp in c for r in comp.rows if r.run.name == "broken")
    assert [n.code for n in broken.notes if n.code != "unpriced"] == ["failed"]  # not "not the same workload ()"


def test_the_analysis_holds_no_sentence_meant_for_the_user():
    """Strings of three words or more in bench/analysis/ are docstrings, error messages, option help or
    data tables; anything a comparison says is a code its renderer words."""
    found = []
    for path in sorted((ROOT / "bench" / "analysis").glob("*.py")):
        tree = ast.parse(path.read_text())
        skip = _exempt(tree)
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, ast.Constant | ast.JoinedStr):
                continue
            text = node.value if isinstance(node, ast.Constant) else "".join(
                v.value for v in node.values if isinstance(v, ast.Constant))
            if isinstance(text, str) and sum(1 for w in text.split() if re.search(r"[A-Za-z]{2,}", w)) >= 3:
                found.append(f"{path.name}:{node.lineno}: {text[:60]!r}")
    assert found == []


def _exempt(tree) -> set[int]:
    """Nodes under a docstring, a raise, an error's construction, an opt() declaration, a group's
    title or description, or a module-level data table (an upper-case name)."""
    roots = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            roots.append(body[0])
        if isinstance(node, ast.Raise):
            roots.append(node)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "").endswith(("Error", "opt")):
            roots.append(node)
        if isinstance(node, ast.Assign) and all(getattr(t, "id", "").isupper() or getattr(t, "id", "") in
                                                ("title", "description") for t in node.targets):
            roots.append(node)
    return {id(n) for root in roots for n in ast.walk(root)}


def test_the_outputs_only_format_the_comparison(tmp_path, monkeypatch):
    """Once compared, no analysis runs again: every function of bench.analysis raises, and every
    output is still made."""
    pytest.importorskip("plotly")
    import bench.analysis as analysis
    from bench.render import compare_view, html, tables
    from bench.render.frame import comparison_frame
    from bench.render.records import document

    c = compare(everything(), costing=costing(), gates=(parse_gate("samples_per_s:5%"),))

    def analyses(*args, **kwargs):
        raise AssertionError("a renderer ran the analysis again")

    for module in [m for name, m in vars(analysis).items() if inspect.ismodule(m)] + \
            [__import__(f"bench.render.{n}", fromlist=["x"]) for n in ("compare_view", "html", "tables", "records",
                                                                       "words", "frame", "format")]:
        for name, value in list(vars(module).items()):
            if inspect.isfunction(value) and value.__module__.startswith("bench.analysis"):
                monkeypatch.setattr(module, name, analyses)
    screen = Screen(file=io.StringIO(), width=120)
    compare_view.print_comparison(screen, c)
    compare_view.print_gates(screen, c)
    text = screen.console.file.getvalue()
    assert "capacity at the SLO" in text and "regression" not in text
    assert "| base" in tables.markdown_text(c)
    assert "verdict_reason" in tables.csv_text(comparison_frame(c))
    json.dumps(document(c, "test", "2026-11-28T00:00:00+00:00"), allow_nan=False, default=str)
    page = html.render(c)
    assert page.count('class="plotly-graph-div"') >= 4 and "Serving: latency against offered load" in page


def test_serving_values_of_the_wrong_type_are_unknown_not_a_crash_or_a_pass():
    r = serving_report("srv", [(2.0, True), (4.0, True)])
    r.results[1].workload_metrics["slo.met"] = "no"  # a string is not a verdict
    r.results[1].workload_metrics["achieved_qps"] = "4"
    r.results[0].workload_metrics["requests"] = 60.5
    [curve] = compare([("s.json", r)]).serving
    assert [p.slo_met for p in curve.points] == [True, None] and curve.points[1].achieved_qps is None
    assert curve.capacity.code == "at_least" and curve.capacity.qps == 2.0  # "no" counted neither way
    assert curve.points[0].requests is None


@pytest.mark.parametrize("points,code,text", [
    ([(1, True), (2, True), (4, False), (3, True)], "bracket", "3 requests/s (met the SLO; 4 did not)"),
    ([(1, False), (2, False)], "below", "below 1 requests/s"),
    ([(5, True)], "at_least", "at least 5 requests/s"),
    ([(5, None)], "no_slo", "no SLO to judge by"),
    ([(2, True), (8, False), (1.5, True)], "bracket", "2 requests/s (met the SLO; 8 did not)"),
    # a rate that met the SLO above one that missed it: the machine moved under the search
    ([(2, True), (8, False), (1, False)], "bracket", "unsettled: 2 requests/s met the SLO where 1 missed it"),
])
def test_capacity_is_a_code_and_its_bracket(points, code, text):
    cap = capacity([CurvePoint(qps=q, slo_met=ok) for q, ok in points])
    assert cap.code == code and words.capacity_text(cap).startswith(text)


@pytest.mark.parametrize("args,needle", [
    (["--width", "19"], "--width: must be at least 20, got 19"),
    (["--width", "10001"], "--width: must be at most 10000"),
    (["--width", "wide"], "--width: expected a whole number"),
    (["--min-repeats", "0"], "--min-repeats: must be at least 1, got 0"),
    (["--min-repeats", "1001"], "--min-repeats: must be at most 1000"),
    (["--min-effect", "100%"], "--min-effect: between 0% and 100%"),
    (["--min-effect", "nan"], "--min-effect: between 0% and 100%"),
    (["--min-effect", "lots"], "--min-effect: expected a percentage"),
    (["--kwh-price", "inf"], "--kwh-price: must be a finite number"),
    (["--fail-on", "samples_per_s:5%", "--fail-on", "joy:5%"], "--fail-on joy: no workload compared has that figure"),
    (["--fail-on", "joy_per_s:5%"], "--fail-on: metric must be one of"),
    (["--price", "cpu=free"], "--price: 'free' is neither"),
    (["--baseline", "nobody"], "--baseline 'nobody' matches no run"),
])
def test_a_bad_compare_option_exits_2_naming_its_flag(args, needle, tmp_path, capsys):
    a = dump_report(make_report("a", 0.1, repeats=3), tmp_path / "a.json")
    code, out, err = run_cli(capsys, "compare", a, *args)
    assert code == 2 and needle in err and out == "", err


def test_compare_help_comes_from_the_declarations(capsys):
    from bench import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--baseline", "--force", "--min-repeats N", "--min-effect PCT", "--fail-on METRIC:PCT", "--price",
                 "--prices FILE", "--kwh-price USD", "--html", "--csv", "--markdown", "--json", "--width COLUMNS"):
        assert flag in text, flag
    assert "(default: 3)" in text and "(default: 2%)" in text


def test_the_json_lists_every_gate_and_the_notes_as_codes(tmp_path, capsys):
    a = dump_report(make_report("a", 0.1, repeats=3), tmp_path / "a.json")
    b = dump_report(make_report("b", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    code, out, err = run_cli(capsys, "compare", a, b, a, "--fail-on", "samples_per_s:50%", "--json", "-")
    doc = json.loads(out)
    assert code == 0 and doc["format_version"] == 3
    [gate] = doc["gates"]  # a passing gate is listed too
    assert gate["outcome"] == "pass" and gate["run"] == "b" and gate["metric"] == "samples_per_s"
    assert 0.9 < gate["speedup_ci_low"] <= gate["speedup"] <= gate["speedup_ci_high"] < 1.1
    [dup] = doc["notes"]
    assert dup["code"] == "duplicate" and dup["values"]["first"] == str(a) and dup["text"].startswith(f"{a}: dropped")
    assert "dropped, the same run" in err  # and said on stderr, off stdout


def test_names_of_another_type_in_the_environment_are_shown_not_a_crash(tmp_path, capsys):
    a = make_report("a", 0.1, repeats=3, host=7, device=True)
    b = make_report("b", 0.1, seed=1, repeats=3, device_name=12.5)
    paths = [dump_report(r, tmp_path / f"{r.label}.json") for r in (a, b)]
    code, out, err = run_cli(capsys, "compare", *paths, "--width", 200, "--json", "-")
    rows = json.loads(out)["workloads"][0]["rows"]
    assert code == 0 and [(r["host"], r["backend"], r["device"]) for r in rows] == [("7", "True", "Test CPU"),
                                                                                   ("host-a", "cpu", "12.5")]
