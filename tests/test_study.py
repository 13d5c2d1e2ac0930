"""Studies: a study is data, resolved by the flags' own declarations; a plan before work within a
device-time budget; the decision first (bench/study, bench/launch/plan.py, budget.py, pace.py,
bench/analysis/decision.py, bench/render/decision_view.py). Runs are faked where the point is the
planning (virtual clocks, a launch that only records); the CLI paths run `bench study --dry-run`."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from conftest import cli_run, run_config

SMALL = """
name = "small"
question = "how fast?"
budget = "5m"
epoch_samples = 1000
[prices]
cpu = 0.5
[defaults]
preset = "tiny"
[[runs]]
name = "ft"
workload = ["blender-finetune"]
repeats = 2
batch_size = 4
[[runs]]
name = "serve"
workload = ["blender-serve"]
repeats = 1
qps = [4, 8]
requests = 40
slo_ttft_ms = 500
"""


def study_file(tmp_path, text=SMALL, name="small.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def box(tmp_path, **flags) -> argparse.Namespace:
    """The study command's namespace: the box's and the output's flags."""
    from bench.cli import build_parser

    args = ["study", "x", "--device", "cpu", "--out", str(tmp_path / "out")]
    for k, v in flags.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return build_parser().parse_args(args)


def resolved(tmp_path, text=SMALL):
    from bench.study import file, resolve

    spec = file.load(str(study_file(tmp_path, text)))
    return spec, *resolve.resolve(spec, box(tmp_path))


# ---- 1. a study is data, checked by the flags' own declarations ------------------------------------------

def test_a_study_resolves_each_run_as_bench_run_would(tmp_path):
    spec, study, cfgs = resolved(tmp_path)
    assert [r.name for r in study.runs] == ["ft", "serve"]
    assert cfgs[0].common.batch_size == 4 and cfgs[0].measure.repeats == 2 and cfgs[0].workloads == ("blender-finetune",)
    same = run_config("--device", "cpu", "--preset", "tiny", "--workload", "blender-finetune", "--repeats", 2,
                      "--batch-size", 4, "--out", tmp_path / "out")
    assert cfgs[0].to_json() == same.to_json()  # the same declarations, the same resolved options
    serve = study.runs[1].config["workload:blender-serve"]
    assert serve["qps"] == [4.0, 8.0] and serve["slo_ttft_ms"] == 500 and serve["requests"] == 40
    assert "device" not in study.runs[0].config and "output" not in study.runs[0].config  # the box's, not the study's
    assert study.prices[0].match == "cpu" and study.prices[0].usd_per_hour == 0.5 and study.epoch_samples == 1000


REFUSED = [  # (a change to the file, what the error must name besides the file and the run)
    ('batch_size = 4', 'batch_size = 0', "batch_size"),  # a bad value
    ('batch_size = 4', 'batch_sise = 4', "batch_sise"),  # an unknown key
    ('batch_size = 4', 'batch_size = "eight"', "batch_size"),
    ('batch_size = 4', 'lr = nan', "lr"),  # TOML's nan and inf: no number an option takes
    ('batch_size = 4', 'lr = inf', "lr"),
    ('batch_size = 4', 'batch_size = 1e300', "batch_size"),
    ('batch_size = 4', 'min_steps = 5', "min_steps"),  # a key the run would ignore (no time_budget)
    ('batch_size = 4', 'qps = [1]', "qps"),  # another workload's option: blender-serve is not in this run
    ('batch_size = 4', 'device = "cuda"', "device"),  # the box's, not the study's
    ('batch_size = 4', 'threads = 2', "threads"),
    ('batch_size = 4', 'out = "/tmp"', "out"),
    ('batch_size = 4', 'batch_size = {a = 1}', "batch_size"),  # a table is no value
    ('batch_size = 4', 'batch_size = true', "batch_size"),  # True is not 1
    ('repeats = 2', 'repeats = 2\nsteps = 3\ntime_budget = 1', "steps and time_budget"),  # a rule across keys
]


@pytest.mark.parametrize("old,new,key", REFUSED)
def test_a_bad_key_or_value_is_refused_naming_the_file_the_run_and_the_key(tmp_path, capsys, old, new, key):
    path = study_file(tmp_path, SMALL.replace(old, new, 1))
    code, out, err = cli_run(capsys, "study", path, "--device", "cpu", "--dry-run", "--out", tmp_path / "out")
    assert code == 2, err
    assert str(path) in err and "run 'ft'" in err and key in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.json"))


SHAPES = [  # a file that is not a study: refused before any work, naming the file
    (SMALL + "\nbudgett = 1\n", "unknown key 'budgett'"),
    (SMALL.replace('budget = "5m"', 'budget = "forever"'), "budget"),
    (SMALL.replace('budget = "5m"', 'budget = 0'), "budget"),
    (SMALL.replace('budget = "5m"', 'budget = "1e9h"'), "budget"),
    (SMALL.replace("epoch_samples = 1000", "epoch_samples = 1.5"), "epoch_samples"),
    (SMALL.replace("cpu = 0.5", "cpu = -1"), "prices"),
    (SMALL.replace("cpu = 0.5", 'cpu = "cheap"'), "prices"),
    (SMALL.replace('name = "serve"', 'name = "ft"'), "named twice"),
    (SMALL.replace('name = "serve"', 'name = "../x"'), "name"),
    ('name = "x"\n', "runs"),
    ("this is = not [ toml", "not valid TOML"),
]


@pytest.mark.parametrize("text,needle", SHAPES)
def test_a_file_that_is_not_a_study_is_refused_before_any_work(tmp_path, capsys, text, needle):
    path = study_file(tmp_path, text)
    code, _, err = cli_run(capsys, "study", path, "--device", "cpu", "--out", tmp_path / "out")
    assert code == 2 and str(path) in err and needle in err, err


@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b"\xc3\x28 not utf-8", None, "dir", "big"])
def test_binary_huge_missing_or_odd_files_are_refused(tmp_path, capsys, content):
    path = tmp_path / "s.toml"
    if content == "dir":
        path.mkdir()
    elif content == "big":
        path.write_bytes(b"# x\n" * (1 << 19))
    elif content is not None:
        path.write_bytes(content)
    code, _, err = cli_run(capsys, "study", path, "--device", "cpu", "--out", tmp_path / "out")
    assert code == 2 and "s.toml" in err, err


def test_a_study_or_from_one_of_them(tmp_path, capsys):
    code, _, err = cli_run(capsys, "study", "--device", "cpu")
    assert code == 2 and "--from" in err
    code, _, err = cli_run(capsys, "study", "smoke", "--from", tmp_path / "r.json", "--device", "cpu")
    assert code == 2 and "one of them" in err


@pytest.mark.parametrize("name", ["smoke", "helpline"])
def test_the_built_in_studies_plan_with_a_total_and_a_dry_run_writes_nothing(tmp_path, capsys, name):
    code, out, err = cli_run(capsys, "study", name, "--device", "cpu", "--dry-run", "--out", tmp_path / "out")
    assert code == 0, err
    assert "device time expected" in err and "budget" in err and "device time: the wall time" in err
    assert "dry run: nothing was measured" in err
    assert not list((tmp_path / "out").glob("*.json"))


def test_the_smoke_study_touches_every_workload_the_serving_path_included():
    from bench.launch import catalog
    from bench.study import file

    spec = file.load("smoke")
    touched = {w for run in spec.runs for w in run.keys.get("workload", [])}
    assert touched == set(catalog.available())


def report_of(study, run: str, tmp_path, name="r.json", plan=None):
    """A report (synthetic figures) that carries the study, as bench study writes it."""
    from reportgen import make_report

    from bench.model.io import dump_report
    from bench.model.report import StudyRecord

    r = make_report("box-a")
    r.study = StudyRecord(id="ab" * 16, run=run, source="test", study=study, plan=plan)
    return dump_report(r, tmp_path / name)


def test_a_study_run_again_from_its_report_resolves_to_the_same_study_byte_for_byte(tmp_path, capsys):
    from bench.model.io import load_report
    from bench.study import resolve

    _, study, _ = resolved(tmp_path)
    path = report_of(study, "ft", tmp_path)
    carried = load_report(path).study.study
    again, _ = resolve.resolve(resolve.from_report(carried, "r"), box(tmp_path))
    assert resolve.canonical(again) == resolve.canonical(study) == resolve.canonical(carried)
    code, _, err = cli_run(capsys, "study", "--from", path, "--device", "cpu", "--dry-run", "--out", tmp_path / "o")
    assert code == 0, err
    assert "plan of study small" in err


@pytest.mark.parametrize("edit,needle", [
    (lambda c: c["workload:blender-finetune"].pop("optimizer"), "optimizer"),  # resolves to adamw again: differs
    (lambda c: c["common"].__setitem__("batch_size", 0), "batch_size"),  # a value the declarations refuse
    (lambda c: c["common"].__setitem__("batch_sise", 4), "batch_sise"),  # a key this bench does not have
    (lambda c: c.__setitem__("workloads", ["no-such-workload"]), "no-such-workload"),
])
def test_a_report_whose_study_does_not_resolve_the_same_is_refused(tmp_path, capsys, edit, needle):
    _, study, _ = resolved(tmp_path)
    path = report_of(study, "ft", tmp_path)
    data = json.loads(path.read_text())
    edit(data["study"]["study"]["runs"][0]["config"])
    path.write_text(json.dumps(data))
    code, _, err = cli_run(capsys, "study", "--from", path, "--device", "cpu", "--dry-run", "--out", tmp_path / "o")
    assert code == 2 and needle in err, err


def test_a_report_without_a_study_cannot_be_run_again(tmp_path, capsys):
    from reportgen import make_report

    from bench.model.io import dump_report

    path = dump_report(make_report("plain"), tmp_path / "plain.json")
    code, _, err = cli_run(capsys, "study", "--from", path, "--device", "cpu", "--dry-run")
    assert code == 2 and "carries no study" in err


# ---- 2. a plan before work, within a budget ---------------------------------------------------------------

def serve_options(**given):
    from bench.serve.options import ServeOptions

    return ServeOptions.build(given, "tiny")


def test_a_steps_workload_is_estimated_from_its_pace():
    from bench.measure.scenario import STEPS, Pace
    from conftest import measure

    pace = Pace(overhead_s=10.0, step_s=0.5)
    e = STEPS.estimate(None, measure(steps=20, repeats=3), pace)
    assert (e.expected_s, e.worst_s, e.repeats) == (3 * (10 + 20 * 0.5), 3 * 20.0, 3)
    ci = STEPS.estimate(None, measure(steps=20, repeats=3, target_ci=5, max_repeats=10), pace)
    assert ci.expected_s == 60 and ci.worst_s == 200 and ci.repeats == 10
    bounded = STEPS.estimate(None, measure(steps=20, repeats=3, target_ci=5, max_time=100), pace)
    assert bounded.worst_s == 120  # the last repeat --max-time lets start runs to its end
    timed = STEPS.estimate(None, measure(time_budget=7, repeats=2), pace)
    assert timed.expected_s == 2 * (10 + 7)


def test_serving_is_arrival_bound_and_a_search_has_an_expected_and_a_worst_path():
    from bench.measure.scenario import Pace
    from bench.serve.maths.capacity import capacity_plan
    from bench.serve.scenario import SERVING
    from conftest import measure

    pace, m = Pace(overhead_s=5.0, step_s=0.1), measure(repeats=1)
    rates = SERVING.estimate(serve_options(qps=(2.0, 4.0), requests=100), m, pace)
    assert rates.results == 2 and rates.expected_s == pytest.approx((5 + 50 + 0.1) + (5 + 25 + 0.1))
    closed = SERVING.estimate(serve_options(load="concurrency:4", requests=100), m, pace)
    assert closed.expected_s == pytest.approx(5 + 100 * 0.1 / 4 + 0.1)
    o = serve_options(find_capacity=True, qps=(8.0,), max_probes=6, max_probe_s=10)
    search = SERVING.estimate(o, m, pace)
    plan = capacity_plan(o)
    path = plan.path(8.0)
    assert path[:2] == [8.0, 16.0] and len(path) <= 6
    assert search.results is None and search.expected_s == pytest.approx(
        sum(5.1 + plan.requests_at(q) / q for q in path))
    assert search.worst_s == pytest.approx(plan.worst_case_s() + 6 * 5.1) and search.worst_s >= search.expected_s


def test_a_budget_cuts_probes_requests_and_repeats_and_records_each_cut():
    from bench.measure.scenario import Pace
    from bench.serve.scenario import SERVING
    from bench.study.plan import fit_run
    from conftest import measure

    pace, m = Pace(overhead_s=5.0, step_s=0.1), measure(repeats=1)
    o = serve_options(find_capacity=True, qps=(2.0,), max_probe_s=300)
    cut, cuts = SERVING.fit(o, m, pace, 120.0)
    assert cuts[0].code == "probe_s" and cut.max_probe_s < 300
    assert SERVING.estimate(cut, m, pace).expected_s <= 120
    short, cuts = SERVING.fit(o, m, pace, 40.0)  # too little for useful probes: fewer of them, each longer
    assert [c.code for c in cuts] == ["probes", "probe_s"] and short.max_probes < o.max_probes
    assert short.max_probe_s >= 1 and SERVING.estimate(short, m, pace).expected_s <= 40
    rates = serve_options(qps=(1.0, 2.0), requests=480)
    cut, cuts = SERVING.fit(rates, m, pace, 100.0)
    assert cuts[0].code == "requests" and cut.requests < 480 and SERVING.estimate(cut, m, pace).expected_s <= 100
    assert SERVING.fit(rates, m, pace, 1e6) == (rates, [])  # what fits is left as given
    cfg = run_config("--device", "cpu", "--workload", "blender-finetune", "--repeats", 3, "--target-ci", 5)
    fitted, done = fit_run(cfg, {"blender-finetune": Pace(10.0, 1.0)}, 50.0)  # a repeat takes 30 s
    assert fitted.measure.repeats == 1 and fitted.measure.target_ci is None
    assert [c["code"] for c in done] == ["repeats", "target_ci"]


def test_the_study_plan_fits_the_budget_and_says_what_it_cut(tmp_path):
    from bench.launch.config import check_before_run
    from bench.study.plan import plan_study

    _, study, cfgs = resolved(tmp_path, SMALL.replace("requests = 40", "requests = 4000"))
    cfgs = [check_before_run(c) for c in cfgs]
    runs, plan = plan_study([r.name for r in study.runs], cfgs, 120.0)
    assert plan.budget_s == 120.0 and plan.cuts and {c.run for c in plan.cuts} == {"serve"}
    assert runs[1].cfg.options_of("blender-serve").requests < 4000
    assert plan.estimate_s <= 120 * 1.05  # the serving run gave up requests; the fine-tune fits as asked
    free, unbounded = plan_study([r.name for r in study.runs], cfgs, None)
    assert not unbounded.cuts and free[1].cfg.options_of("blender-serve").requests == 4000


class Clock:
    """A virtual monotonic clock."""

    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def test_the_stopping_rule_starts_no_repeat_that_would_end_past_the_budget():
    from bench.measure.stopping import Until

    clock = Clock()
    until = Until("samples_per_s", 5, clock=clock, deadline=1100.0, first_s=30.0)
    ran = 0
    while until.more():
        clock.t += 40.0  # each repeat takes 40 s, more than the plan's 30
        until.add(1.0)
        ran += 1
    assert ran == 2 and until.stopped == "budget" and until.record().stopped == "budget"
    late = Until("samples_per_s", 3, clock=Clock(), deadline=1010.0, first_s=30.0)
    assert not late.more() and late.stopped == "budget" and late.ran == 0  # not even the first


def test_a_study_run_that_would_not_fit_is_not_started_and_said(tmp_path):
    from bench.launch.config import check_before_run
    from bench.model.report import Report
    from bench.study.plan import plan_study
    from bench.study.run import run_study

    _, study, cfgs = resolved(tmp_path)
    cfgs = [check_before_run(c) for c in cfgs]
    planned, plan = plan_study([r.name for r in study.runs], cfgs, 300.0)
    clock, launched = Clock(), []

    def launch(run, record, budget):
        launched.append((run.name, record.run, record.started_s))
        clock.t += 299.0  # the first run takes nearly the whole budget
        return Report(schema_version=4, bench_version="t", run_id=run.name, created_at="2026-01-01T00:00:00+00:00",
                      status="ok", study=record), None, 0

    done = run_study(study, "test", planned, plan, launch, clock=clock)
    assert launched == [("ft", "ft", 0.0)]
    assert [(c.run, c.code) for c in done.not_run] == [("serve", "run")] and done.seconds == 299.0


def test_a_budget_cuts_a_result_before_it_starts_and_the_results_after_the_last(tmp_path):
    from bench.launch.budget import Budget
    from bench.launch.launcher import Launcher
    from bench.measure.scenario import Pace
    from bench.model.report import Report, Result

    cfg = run_config("--device", "cpu", "--workload", "blender-serve", "--qps", "1,2", "--requests", 10,
                     "--out", tmp_path)
    clock = Clock()
    launcher = Launcher(cfg, budget=Budget(clock.t + 5.0, {"blender-serve": Pace(1.0, 0.1)}, clock))
    report = Report(schema_version=4, bench_version="t", run_id="x", created_at="2026-01-01T00:00:00+00:00",
                    status="ok")
    assert not launcher.fits("blender-serve", {"qps": [1.0]}, None, report)  # 1 + 10 + 0.1 s > 5 s
    [skipped] = report.results
    assert skipped.status == "skipped" and skipped.codes() == {"budget_cut"} and "5 s left" in skipped.error
    last = Result(workload="blender-serve", status="ok", variant={"qps": [1.0]})
    assert not launcher.fits("blender-serve", {"qps": [2.0]}, last, report)
    assert last.codes() == {"budget_cut"} and "qps=1" in last.warnings[0].message
    roomy = Launcher(cfg, budget=Budget(clock.t + 60.0, {"blender-serve": Pace(1.0, 0.1)}, clock))
    assert roomy.fits("blender-serve", {"qps": [2.0]}, None, report)


def write_report_here(tmp_path, cfg, step_s=0.25, phases=True, **result):
    """A report in --out as this host ran it: one repeat of 10 s with a measured phase of 4 s."""
    import socket

    data = {"status": "ok", "config": cfg.to_json(),
            "environment": {"device": {"backend": "cpu"}, "host": {"hostname": socket.gethostname()}},
            "telemetry": {"phases": [{"workload": "blender-finetune", "phase": "measure", "start_s": 3.0,
                                      "end_s": 7.0, "variant": None}] if phases else []},
            "results": [{"workload": "blender-finetune", "variant": {}, "stopping": {"seconds": 10.0, "ran": 1},
                         "timing": {"repeats": [{"step_times_s": [step_s] * 16}]}, **result}]}
    path = Path(cfg.output.out) / "earlier.json"
    path.write_text(json.dumps(data))
    return path


def test_the_pace_is_the_one_a_report_here_showed_else_the_stated_default(tmp_path):
    from bench.launch.pace import default_pace, paces

    cfg = run_config("--device", "cpu", "--workload", "blender-finetune", "--out", tmp_path)
    assert paces(cfg)["blender-finetune"] == default_pace("blender-finetune", "tiny", 12.0)
    assert paces(cfg)["blender-finetune"].source == "default"
    write_report_here(tmp_path, cfg)
    pace = paces(cfg)["blender-finetune"]
    assert (pace.overhead_s, pace.step_s, pace.source) == (6.0, 0.25, "measured")
    other = run_config("--device", "cpu", "--workload", "blender-finetune", "--batch-size", 2, "--out", tmp_path)
    assert paces(other)["blender-finetune"].source == "default"  # other options: another pace


@pytest.mark.parametrize("garbage", [b"\x00\xff" * 10, b"[1, 2]", b'{"status": "ok", "results": "x"}',
                                     b'{"status": "ok", "environment": 5, "results": [1]}', b"NaN", b"{" * 100000])
def test_a_report_in_out_that_is_no_report_leaves_the_default_pace(tmp_path, garbage):
    from bench.launch.pace import paces

    (tmp_path / "junk.json").write_bytes(garbage)
    cfg = run_config("--device", "cpu", "--workload", "blender-finetune", "--out", tmp_path)
    assert paces(cfg)["blender-finetune"].source == "default"


@pytest.mark.parametrize("field", [{"stopping": {"seconds": -5, "ran": 1}}, {"stopping": {"seconds": 1e300, "ran": 0}},
                                   {"timing": {"repeats": [{"step_times_s": [float("nan")]}]}},
                                   {"stopping": {"seconds": 1.0, "ran": 1}}])  # a fixed part below zero
def test_a_report_whose_times_make_no_pace_is_passed_over(tmp_path, field):
    from bench.launch.pace import paces

    cfg = run_config("--device", "cpu", "--workload", "blender-finetune", "--out", tmp_path)
    write_report_here(tmp_path, cfg, **field)
    assert paces(cfg)["blender-finetune"].source == "default"


def test_bench_run_prints_its_plan_before_it_starts(tmp_path, capsys, monkeypatch):
    from bench.launch import launcher

    seen = {}

    def refuse(self):
        seen["plan"] = self.plan
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher.Launcher, "run", refuse)
    code, _, err = cli_run(capsys, "run", "--device", "cpu", "--workload", "blender-finetune", "--out", tmp_path)
    assert code == 130
    assert "device time expected" in err and "blender-finetune" in err and "pace default" in err
    assert seen["plan"].items[0].workload == "blender-finetune" and seen["plan"].items[0].estimate_s > 0


def test_the_eta_is_the_plans_until_the_workload_shows_its_own_pace():
    from bench.render.progress import Eta, eta_text

    eta = Eta(repeats=1, planned_s=100.0, at=0.0)
    assert eta.seconds_left(30.0) == (70.0, False)
    assert eta.seconds_left(150.0) == (1.0, True)  # past the plan: a lower bound, never 0:00
    assert eta_text(eta, 30.0, later_s=60.0) == "ETA 2:10"  # and the plan's estimate of what follows
    eta.start_repeat(0, at=0.0)
    eta.progress("measure", 0, 10, at=5.0)
    eta.progress("measure", 5, 10, at=10.0)  # its own pace: 1 s a step, 5 left
    assert eta.seconds_left(10.0) == (5.0, False)
    assert Eta(repeats=1).seconds_left(5.0) is None  # no plan, no pace: no guess


# ---- 3. the decision first ----------------------------------------------------------------------------------

HELPLINE = """
name = "mini-helpline"
question = "which box?"
epoch_samples = 27018
[prices]
cpu = "2.0"
[[runs]]
name = "finetune"
workload = ["blender-finetune"]
[[runs]]
name = "capacity"
workload = ["blender-serve"]
find_capacity = true
qps = [2]
slo_ttft_ms = 500
"""


def box_reports(tmp_path, label, mean_s, rates, study, study_id, repeats=3, seed=0, energy=None):
    """A box's two reports of the study: its fine-tune (mean step time `mean_s`, batch 8) and its capacity
    probes (rate, met) — as `bench study` writes them, with synthetic figures."""
    from reportgen import make_report, serving_report

    from bench.model.io import dump_report
    from bench.model.report import StudyRecord

    ft = make_report(label, mean_s, repeats=repeats, seed=seed, host=label)
    sv = serving_report(label, rates, seed=seed)
    sv.environment.host["hostname"] = label
    for r in sv.results:
        r.workload_metrics["slo.valid"] = True
        if energy is not None:
            r.energy.device = energy
    paths = []
    for run, rep in (("finetune", ft), ("capacity", sv)):
        rep.run_id = f"{label}-{run}"
        rep.study = StudyRecord(id=study_id, run=run, source="test", study=study)
        paths.append(dump_report(rep, tmp_path / f"{label}-{run}.json"))
    return paths


@pytest.fixture
def two_boxes(tmp_path):
    _, study, _ = resolved(tmp_path, HELPLINE)
    a = box_reports(tmp_path, "box-a", 0.1, [(2, True), (4, True), (8, False)], study, "a" * 32, seed=1)
    b = box_reports(tmp_path, "box-b", 0.05, [(2, True), (4, True), (8, True), (16, True), (32, False)], study,
                    "b" * 32, seed=2)
    return a + b


def decided(paths, **kw):
    from bench.analysis.decision import decisions
    from bench.analysis.runs import make_runs
    from bench.model.io import load_report

    return decisions(make_runs([(str(p), load_report(p)) for p in paths])[0], **kw)


def test_a_box_row_holds_its_answers_each_with_its_interval_or_why_not(two_boxes):
    [d] = decided(two_boxes)
    a, b = d.boxes
    assert (d.study, d.question, a.box, b.box) == ("mini-helpline", "which box?", "box-a", "box-b")
    assert a.finetune.value == pytest.approx(80, rel=0.05) and a.finetune.low < a.finetune.value < a.finetune.high
    assert (a.capacity.code, a.capacity.qps, a.capacity.below_qps) == ("bracket", 4, 8)
    assert a.slo_ttft_s == 0.5
    # $2 an hour: 1e6 requests at 4/s take 69.4 h ($138.9), at 8/s (the rate that missed) half that
    assert a.usd_per_1m_requests.value == pytest.approx(2 / 3600 * 1e6 / 4)
    assert a.usd_per_1m_requests.low == pytest.approx(2 / 3600 * 1e6 / 8)
    # an epoch of 27,018 samples at ~80 samples/s: ~338 s, $0.19; the interval's ends swap
    assert a.usd_per_epoch.value == pytest.approx(2 / 3600 * 27018 / a.finetune.value)
    assert a.usd_per_epoch.low == pytest.approx(2 / 3600 * 27018 / a.finetune.high)
    assert a.energy.session_j.value is None and a.energy.session_j.why == "not_measured"


def test_across_boxes_each_question_gets_one_verdict_with_how_it_was_formed(two_boxes):
    [d] = decided(two_boxes)
    ft, cap = d.verdicts
    assert ft.question == "finetune" and ft.verdict == "more" and ft.method == "welch"
    assert ft.ratio == pytest.approx(2.0, rel=0.05) and ft.low < ft.ratio < ft.high
    # box-b serves [16, 32) against box-a's [4, 8): between 16/8 and 32/4 times as many, no overlap
    assert cap.question == "capacity" and cap.verdict == "more" and cap.method == "bracket"
    assert (cap.low, cap.high) == (2.0, 8.0) and cap.ratio == pytest.approx(math.sqrt(16 * 32) / math.sqrt(4 * 8))


@pytest.mark.parametrize("rates_b,verdict", [
    ([(2, True), (4, True), (6, False)], "overlap"),  # [4, 6) against [4, 8): overlapping brackets, no verdict
    ([(2, True), (3, False)], "less"),  # [2, 3) against [4, 8)
    ([(2, True), (4, True), (8, True)], "overlap"),  # at least 8: could be anything above
    ([(2, False)], "less"),  # below 2
])
def test_overlapping_capacity_brackets_give_no_verdict(tmp_path, rates_b, verdict):
    _, study, _ = resolved(tmp_path, HELPLINE)
    a = box_reports(tmp_path, "box-a", 0.1, [(2, True), (4, True), (8, False)], study, "a" * 32)
    b = box_reports(tmp_path, "box-b", 0.1, rates_b, study, "b" * 32, seed=3)
    [d] = decided(a + b)
    assert d.verdicts[1].verdict == verdict


def test_an_unsettled_capacity_gets_no_verdict_and_says_so_in_its_cell(tmp_path):
    """A search whose box met the SLOs at 4/s but missed at 2/s (the machine moved under it) gives no
    capacity to compare: no verdict, and the table's cell says unsettled."""
    from bench.render.decision_view import capacity_short, verdict_text

    _, study, _ = resolved(tmp_path, HELPLINE)
    a = box_reports(tmp_path, "box-a", 0.1, [(2, True), (4, True), (8, False)], study, "a" * 32)
    b = box_reports(tmp_path, "box-b", 0.1, [(2, False), (4, True), (8, False)], study, "b" * 32, seed=3)
    [d] = decided(a + b)
    v = d.verdicts[1]
    assert v.verdict == "no_verdict" and v.reason.code == "unsettled" and "box-b" in verdict_text(v)
    shaky = next(r for r in d.boxes if r.box == "box-b")
    assert capacity_short(shaky.capacity).startswith("unsettled (a rate met the SLOs above one that missed")


def test_null_figures_say_why(tmp_path):
    from bench.analysis.comparison import Costing

    _, study, _ = resolved(tmp_path, HELPLINE.replace('[prices]\ncpu = "2.0"', "").replace("epoch_samples = 27018", ""))
    paths = box_reports(tmp_path, "box-a", 0.1, [(2, True), (4, False)], study, "a" * 32)
    [d] = decided(paths[:1])  # the capacity run wrote no report
    row = d.boxes[0]
    assert row.usd_per_epoch.why == "no_epoch" and row.capacity is None and row.capacity_why == "not_run"
    assert row.cut == ["capacity"]
    [d] = decided(paths)
    assert d.boxes[0].usd_per_1m_requests.why == "no_price"
    from bench.analysis.comparison import Price

    priced = Costing(prices=(Price(match="box-a", usd_per_hour=1.0, devices=1, source="--price"),))
    [d] = decided(paths, costing=priced)  # compare's --price names the box by its label
    assert d.boxes[0].usd_per_1m_requests.value == pytest.approx(1 / 3600 * 1e6 / 2)


def test_energy_per_request_is_the_sessions_and_the_busy_spans_as_the_report_names_them(tmp_path):
    from bench.model.io import dump_report, load_report
    from bench.model.report import EnergyFigure

    _, study, _ = resolved(tmp_path, HELPLINE)
    paths = box_reports(tmp_path, "box-a", 0.1, [(2, True), (4, False)], study, "a" * 32,
                        energy=EnergyFigure(joules=600.0, window_s=60.0, per_sample_j=2.5))
    [d] = decided(paths)  # a report before the named fields: its window's energy is not taken for either
    assert d.boxes[0].energy.session_j.value is None and d.boxes[0].energy.session_j.why == "not_recorded"
    rep = load_report(paths[1])
    for res in rep.results:
        res.energy.session_per_request_j, res.energy.busy_per_request_j = 2.0, 1.5
    dump_report(rep, paths[1])
    [d] = decided(paths)
    e = d.boxes[0].energy
    assert e.session_j.value == 2.0 and e.busy_j.value == 1.5  # 0.1: the window's over the measured requests


def test_bench_compare_leads_with_the_decision_and_the_html_page_opens_with_it(two_boxes, tmp_path, capsys):
    page, md = tmp_path / "c.html", tmp_path / "c.md"
    code, out, err = cli_run(capsys, "compare", *two_boxes, "--html", page, "--markdown", md, "--width", 200)
    assert code == 0, err
    first = out.index("mini-helpline: which box?")
    assert first < out.index("blender-finetune ·") and "verdict: fine-tune: box-b against box-a" in out
    assert "serves 4x [2, 8] the requests/s within the SLOs" in out
    assert "blender-finetune: the baseline has no usable" not in out  # the box is the baseline, not one file
    html = page.read_text()
    assert html.index("id='decision-mini-helpline'") < html.index("class='workload'")
    assert md.read_text().startswith("### mini-helpline: decision")
    code, out, _ = cli_run(capsys, "compare", *two_boxes, "--json", "-")
    doc = json.loads(out)
    assert doc["decisions"][0]["verdicts"][1]["verdict"] == "more" and doc["decisions"][0]["boxes"][0]["box"] == "box-a"


def test_compare_notes_are_one_line_per_cause_and_every_note_a_flag_away(tmp_path, capsys):
    from reportgen import make_report

    from bench.model.io import dump_report

    noisy = [{"code": "noisy", "message": f"detail {i}"} for i in range(3)]
    paths = [dump_report(make_report(f"r{i}", warnings=noisy, repeats=3, seed=i), tmp_path / f"r{i}.json")
             for i in range(4)]
    _, out, _ = cli_run(capsys, "compare", *paths, "--width", 200)
    lines = [x for x in out.splitlines() if "warning noisy" in x]  # the table's column names it per row too
    assert len(lines) == 1 and "4 runs" in lines[0] and "detail 1" not in out
    _, out, _ = cli_run(capsys, "compare", *paths, "--width", 200, "--verbose")
    assert out.count("detail 1") == 4


def test_run_warnings_are_one_line_per_cause_unless_verbose(capsys):
    from reportgen import make_report

    from bench.render.screen import Screen
    from bench.render.summary import print_problems

    warnings = [{"code": "noisy", "message": "detail a"}, {"code": "contended", "message": "detail b"},
                {"code": "noisy", "message": "detail c"}]
    report = make_report("x", warnings=warnings)
    report.results.append(make_report("y", workload="blender-generate", warnings=warnings[:1]).results[0])
    screen = Screen()
    screen.width = 200
    print_problems(screen, report)
    text = capsys.readouterr().out
    assert "warning noisy ×2" in text and "warning contended ×1" in text and "detail" not in text
    assert "blender-finetune, blender-generate" in text and "--verbose" in text
    print_problems(screen, report, verbose=True)
    text = capsys.readouterr().out
    assert all(d in text for d in ("detail a", "detail b", "detail c"))


QUICK_STUDY = """
name = "quick"
question = "does it run?"
budget = "10m"
epoch_samples = 100
[prices]
cpu = 1.0
[defaults]
preset = "tiny"
in_process = true
repeats = 1
sample_hz = 0
[[runs]]
name = "ft"
workload = ["blender-finetune"]
steps = 3
warmup = 1
[[runs]]
name = "serve"
workload = ["blender-serve"]
qps = [50]
requests = 10
"""


def test_a_study_runs_end_to_end_and_each_report_carries_it(tmp_path, capsys):
    """A real (tiny, in-process) study through the CLI: a report per run, the decision table and the
    device time at the end, and the study run again from a report it wrote resolves the same."""
    from bench.model.io import load_report
    from bench.study import resolve

    path = study_file(tmp_path, QUICK_STUDY, "quick.toml")
    code, out, err = cli_run(capsys, "study", path, "--device", "cpu", "--out", tmp_path / "out", "--label", "me")
    assert code == 0, err
    reports = [load_report(p) for p in sorted((tmp_path / "out").glob("*.json"))]
    assert sorted(r.study.run for r in reports) == ["ft", "serve"] and len({r.study.id for r in reports}) == 1
    assert resolve.canonical(reports[0].study.study) == resolve.canonical(reports[1].study.study)
    assert reports[0].study.plan.budget_s == 600 and reports[0].plan is None
    assert "quick: does it run?" in out and "USD / epoch (100 samples)" in out
    assert "device time" in err and "the plan expected" in err
    again = tmp_path / "out" / sorted(p.name for p in (tmp_path / "out").glob("*.json"))[0]
    code, _, err = cli_run(capsys, "study", "--from", again, "--device", "cpu", "--dry-run", "--out", tmp_path / "o2")
    assert code == 0 and "plan of study quick" in err, err


# a session's arrivals span at most a day (bench/serve/options.py): 1,000,000 requests at 11.6/s is the longest allowed
@pytest.mark.parametrize("flags", [("--qps", "11.6", "--requests", 1000000), ("--steps", 1000000, "--repeats", 1000),
                                   ("--qps", "1e-300", "--find-capacity", "--max-probe-s", 86400, "--max-probes", 32)])
def test_an_absurd_but_valid_run_plans_a_finite_time_that_a_report_holds(tmp_path, flags):
    from bench.launch.plan import MOST_S, run_plan
    from bench.model.report import Report
    from bench.render.plan_view import plan_renderable
    from bench.render.progress import eta_text, Eta

    workload = "blender-serve" if "--qps" in flags else "blender-finetune"
    cfg = run_config("--device", "cpu", "--workload", workload, *flags, "--out", tmp_path)
    plan, _ = run_plan(cfg)
    assert all(0 < i.estimate_s <= i.worst_s <= MOST_S for i in plan.items)
    Report(schema_version=4, bench_version="t", run_id="x", created_at="2026-01-01T00:00:00+00:00", status="ok",
           plan=plan).to_json()  # within the model's bounds: it can be written
    plan_renderable(plan)
    assert eta_text(Eta(1, planned_s=plan.items[0].estimate_s, at=0.0), 0.0).startswith("ETA ")
