import html
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from reportgen import make_report

from bench import cli
from bench.model.io import dump_report as dump_atomic
from bench.model.report import SCHEMA_VERSION

EVIL = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


def run_cli(args, capsys):
    try:
        code = cli.cli(args)
    except SystemExit as exc:
        code = exc.code
    c = capsys.readouterr()
    return code, c.out, " ".join(c.err.split())  # stderr as one line: rich wraps it at the console's width


@pytest.fixture
def two(tmp_path):
    a = dump_atomic(make_report("fp32", 0.2, repeats=3), tmp_path / "a.json")
    b = dump_atomic(make_report("bf16", 0.1, seed=1, repeats=3), tmp_path / "b.json")
    return a, b


def test_compare_two_runs_prints_speedup_and_exports(two, tmp_path, capsys):
    code, out, err = run_cli(["compare", str(two[0]), str(two[1]), "--csv", str(tmp_path / "c.csv"),
                              "--markdown", str(tmp_path / "c.md")], capsys)
    assert code == 0, err
    assert "baseline" in out and "x faster" in out
    import pandas as pd

    frame = pd.read_csv(tmp_path / "c.csv", na_values=["—"])
    assert list(frame["run"]) == ["fp32", "bf16"] and frame["speedup"].iloc[1] == pytest.approx(2.0, rel=0.05)
    assert list(frame["verdict"]) == ["baseline", "faster"] and float(frame["speedup_ci_low"].iloc[1]) > 1.9
    assert "| fp32" in (tmp_path / "c.md").read_text()


def test_a_note_keeps_a_long_path_whole_on_a_narrow_terminal(two, tmp_path, capsys, monkeypatch):
    deep = tmp_path / ("d_" * 30) / "run_with_a_long_name_cpu_vm_b5f6e036.json"
    deep.parent.mkdir()
    deep.write_bytes(Path(two[0]).read_bytes())
    monkeypatch.setattr(cli.out, "width", 40)
    code, out, err = run_cli(["compare", str(two[0]), str(deep), str(two[1])], capsys)
    assert code == 0, err
    assert f"{deep}: dropped, the same run as {two[0]}" in out  # one line, nothing broken to copy


def test_glob_in_quotes_is_expanded(two, tmp_path, capsys):
    code, out, _ = run_cli(["compare", str(tmp_path / "*.json")], capsys)
    assert code == 0 and "bf16" in out


def test_bad_inputs_are_named_and_the_rest_still_compared(two, tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "other.json").write_text(json.dumps({"name": "not bench"}))
    newer = make_report("new", 0.1).to_json()
    newer["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    full = Path(two[0]).read_text()
    (tmp_path / "cut.json").write_text(full[: len(full) // 2])
    args = ["compare", str(two[0]), str(two[1]), str(tmp_path / "missing.json"), str(tmp_path / "nomatch*.json")]
    args += [str(tmp_path / n) for n in ("bad.json", "list.json", "other.json", "newer.json", "cut.json")]
    code, out, err = run_cli(args, capsys)
    assert code == 1
    flat = err.replace("\n", " ")
    for needle in ("missing.json: no such file", "matches no file", "bad.json: invalid JSON", "list.json: not a bench report",
                   "other.json: not a bench report", "newer than this bench", "cut.json: invalid JSON"):
        assert needle in flat, needle
    assert "Traceback" not in err and "x faster" in out


def test_nothing_usable_exits_2(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("")
    code, out, err = run_cli(["compare", str(tmp_path / "bad.json")], capsys)
    assert code == 2 and "empty file" in err


def test_fail_on_gate_exit_codes(tmp_path, capsys):
    a = dump_atomic(make_report("base", 0.1, repeats=3), tmp_path / "a.json")
    b = dump_atomic(make_report("slow", 0.13, seed=2, repeats=3), tmp_path / "b.json")
    code, _, err = run_cli(["compare", str(a), str(b), "--fail-on", "samples_per_s:5%"], capsys)
    assert code == 1 and "regression" in err
    code, _, _ = run_cli(["compare", str(a), str(b), "--fail-on", "samples_per_s:50%"], capsys)
    assert code == 0
    one = dump_atomic(make_report("one", 0.13, seed=3), tmp_path / "one.json")  # one repeat: can't be ruled out
    code, _, err = run_cli(["compare", str(a), str(one), "--fail-on", "samples_per_s:5%"], capsys)
    assert code == 3 and "gate inconclusive" in err
    code, _, _ = run_cli(["compare", str(a), str(b)], capsys)
    assert code == 0  # without --fail-on, verdicts never change the exit code
    code, _, err = run_cli(["compare", str(a), "--fail-on", "bogus"], capsys)
    assert code == 2 and "--fail-on" in err


@pytest.mark.slow
def test_two_identical_tiny_runs_never_fail_the_gate_and_get_no_verdict(tmp_path, capsys):
    """One real run, and the same measurements again under another run id: their ratio is exactly 1
    with an interval around it, whatever the machine did, so no faster/slower verdict and no failed
    gate can come of it (two separate runs would flake at the method's false-verdict rate)."""
    # in this process and short: what is compared is the run's own numbers against themselves, whatever they are
    code, _, err = run_cli(["run", "--device", "cpu", "--workload", "blender-finetune", "--repeats", "3", "--steps", "5",
                            "--warmup", "1", "--in-process", "--sample-hz", "0", "--label", "first", "--out", str(tmp_path),
                            "--quiet"], capsys)
    assert code == 0, err
    (a,) = tmp_path.glob("*.json")
    twin = json.loads(a.read_text())
    twin["run_id"], twin["label"] = "f" * 32, "second"
    b = tmp_path / "second.json"
    b.write_text(json.dumps(twin))
    code, out, err = run_cli(["compare", str(a), str(b), str(a), "--fail-on", "samples_per_s:5%", "--json", "-"],
                             capsys)
    assert code in (0, 3), err
    doc = json.loads(out)
    rows = [r for w in doc["workloads"] for r in w["rows"]]
    assert [r["verdict"] for r in rows if r["baseline"]] == ["baseline"] and len(rows) == 2
    (row,) = [r for r in rows if not r["baseline"]]
    assert row["speedup"] == pytest.approx(1.0) and row["verdict"] not in ("faster", "slower")
    assert row["speedup_ci_low"] <= 1.0 <= row["speedup_ci_high"]
    assert [g["outcome"] for g in doc["gates"]] in (["pass"], ["inconclusive"])
    assert any(n["code"] == "duplicate" and n["values"]["path"] == str(a) for n in doc["notes"])


def test_reference_comparison_says_why_it_does_not_hold(capsys):
    code, out, err = run_cli(["compare", "reports/reference/seed-habana-dl1.json",
                              "reports/reference/seed-colab-p100.json"], capsys)
    flat = " ".join(out.split())
    assert code == 0
    assert "not comparable" in flat and "idle_accelerator" in flat and "published figures" in flat
    assert "blended_skill_talk" in flat and "tutorial_transformer_generator" in flat


def evil_reports(tmp_path):
    a = make_report(EVIL, 0.2, params={"model": EVIL}, host=EVIL, device_name=EVIL,
                    warnings=[{"code": "noisy", "message": EVIL}])
    b = make_report("plain", 0.1, seed=1, params={"model": EVIL})
    return dump_atomic(a, tmp_path / "a.json"), dump_atomic(b, tmp_path / "b.json")


def test_html_is_self_contained_and_escapes_report_strings(tmp_path, capsys):
    a, b = evil_reports(tmp_path)
    out_html = tmp_path / "r.html"
    code, _, err = run_cli(["compare", str(a), str(b), "--html", str(out_html)], capsys)
    assert code == 0, err
    page = out_html.read_text()
    assert EVIL not in page and "<img src=x" not in page
    assert html.escape(EVIL, quote=True) in page  # shown as text
    assert "<script src=" not in page and "src=\"http" not in page  # plotly.js is inline, no CDN
    assert page.count('class="plotly-graph-div"') >= 3


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="Chromium not installed (apt-get install chromium); .ci/run installs it")
def test_html_renders_in_headless_chromium_without_console_errors(tmp_path, capsys):
    a, b = evil_reports(tmp_path)
    ref = Path("reports/reference")
    page = tmp_path / "r.html"
    code, _, err = run_cli(["compare", str(a), str(b), *map(str, sorted(ref.glob("*.json"))), "--html", str(page)], capsys)
    assert code == 0, err
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=900)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="main-svg"') >= 4, "plotly did not draw the charts"
    assert "pwned" not in dom.stdout.split("</title>")[0], "a report string ran as code"
    assert "<script>document.title" not in dom.stdout
    console_errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and ("Error" in l or "Uncaught" in l)]
    assert console_errors == []
    shot = tmp_path / "compare.png"
    done = subprocess.run([_chromium(), *flags, "--window-size=1400,2600", f"--screenshot={shot.resolve()}",
                           page.as_uri()], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000


def _mutated(tmp_path, name, mutate):
    d = make_report("bad", 0.1).to_json()
    mutate(d)
    p = tmp_path / name
    p.write_text(json.dumps(d))  # json.dumps writes NaN and Infinity as bare tokens, as a careless tool would
    return str(p)


def test_malformed_reports_are_named_with_the_field_and_the_others_compared(two, tmp_path, capsys):
    rep0 = lambda d: d["results"][0]["timing"]["repeats"][0]
    bad = [_mutated(tmp_path, "code.json", lambda d: d["results"][0]["warnings"].append({"code": 3, "message": "m"})),
           _mutated(tmp_path, "mfu.json", lambda d: d["results"][0]["metrics"].update(mfu="12 %")),
           _mutated(tmp_path, "short.json", lambda d: rep0(d)["step_samples"].pop()),
           _mutated(tmp_path, "device.json", lambda d: d["environment"].update(device="cuda")),
           _mutated(tmp_path, "nan.json", lambda d: rep0(d)["step_times_s"].__setitem__(1, float("nan"))),
           _mutated(tmp_path, "inf.json", lambda d: rep0(d)["step_samples"].__setitem__(0, float("inf")))]
    code, out, err = run_cli(["compare", str(two[0]), *bad, str(two[1])], capsys)
    flat = " ".join(err.split())
    assert code == 1 and "Traceback" not in err
    for needle in ("code.json: invalid at results[0].warnings[0].code", "mfu.json: invalid at results[0].metrics.mfu",
                   "short.json: invalid at results[0].timing.repeats[0]: per-item lists differ",
                   "device.json: invalid at environment.device",
                   "nan.json: invalid at results[0].timing.repeats[0].step_times_s[1]: not a finite number",
                   "inf.json: invalid at results[0].timing.repeats[0].step_samples[0]: not a finite number"):
        assert needle in flat, needle
    assert "x faster" in out  # the two good files are still compared


def test_odd_but_valid_values_do_not_break_compare(tmp_path, capsys):
    a = make_report("a", 0.1, params={"world_size": "8 cards present, none used", "note": None},
                    origin="published")  # a published run's own words; a measured run's world size is a number
    b = make_report("b", 0.1, seed=1, params={"world_size": 2, "note": None})
    c = make_report("c", 0.1, seed=2, params={"world_size": 1, "note": None})
    paths = [dump_atomic(r, tmp_path / f"{r.label}.json") for r in (a, b, c)]
    code, out, err = run_cli(["compare", *map(str, paths), "--force", "--csv", str(tmp_path / "x.csv")], capsys)
    assert code == 0, err
    assert "Traceback" not in err and "scaling" in out  # b and c form a series; a's text is left out of it
