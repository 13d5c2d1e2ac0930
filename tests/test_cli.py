import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S, steps_measured, wait_until
from plugins import plugin_site, workload_eps

from bench import cli
from bench.model.io import load_report

ROOT = Path(__file__).resolve().parent.parent


def run_cli(args, capsys):
    try:
        code = cli.cli(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("args,names", [
    (["run", "--device", "tpu"], ["auto", "cpu", "cuda", "hpu"]),
    (["run", "--preset", "huge"], ["tiny", "seed"]),
    (["run", "--precision", "int4"], ["fp32", "bf16", "fp16"]),
    (["run", "--workload", "nope", "--device", "cpu"], ["blender-finetune"]),
    (["run", "--steps", "0", "--device", "cpu"], ["--steps"]),
    (["run", "--steps", "-2", "--device", "cpu"], ["--steps"]),
    (["run", "--steps", "3", "--warmup", "3", "--device", "cpu"], ["--warmup"]),
    (["run", "--steps", "three"], ["--steps"]),
    (["run", "--lr", "nan", "--device", "cpu"], ["--lr", "finite"]),
    (["run", "--beams", "0", "--device", "cpu"], ["--beams"]),
    (["run", "--beams", "9", "--device", "cpu"], ["--beams"]),
    (["run", "--new-tokens", "0", "--device", "cpu"], ["--new-tokens"]),
    (["run", "--pool-size", "5", "--top-k", "10", "--device", "cpu"], ["--pool-size", "--top-k"]),
    (["run", "--encoder", "gpt", "--device", "cpu"], ["minilm", "bert-base"]),
    (["run", "--hpu-mode", "lazy", "--device", "auto"], ["--hpu-mode", "picked cpu"]),
    (["run", "--nproc", "0", "--device", "cpu"], ["--nproc"]),
    (["run", "--rdzv-endpoint", "host", "--device", "cpu"], ["--rdzv-endpoint", "HOST:PORT"]),
])
def test_bad_input_exits_2_and_names_the_choices(args, names, capsys, tmp_path, no_accelerators):
    code, out, err = run_cli(args + ["--out", str(tmp_path)], capsys)
    assert code == 2
    assert "Traceback" not in err
    for n in names:
        assert n in err
    assert list(tmp_path.glob("*.json")) == []


def test_unwritable_out_is_refused_before_anything_runs(capsys, tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("")
    code, out, err = run_cli(["run", "--device", "cpu", "--out", str(blocker / "x")], capsys)
    assert code == 2 and "--out" in err


@pytest.mark.parametrize("device,needle", [("cuda", "CUDA build of torch"), ("hpu", "Gaudi software stack")])
def test_absent_device_is_an_error_never_a_fallback(device, needle, capsys, tmp_path, no_accelerators):
    code, out, err = run_cli(["run", "--device", device, "--out", str(tmp_path)], capsys)
    assert code == 2 and needle in err.replace("\n", " ")
    assert list(tmp_path.glob("*.json")) == []


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    site = plugin_site(tmp_path, workload_eps("boom", "fine", "crash"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", f"{site}:{os.environ.get('PYTHONPATH', '')}")
    return site


def test_a_failing_workload_does_not_stop_the_others(plugins, capsys, tmp_path):
    code, out, err = run_cli(["run", "--device", "cpu", "--workload", "boom", "--workload", "fine", "--steps", "3",
                              "--warmup", "1", "--sample-hz", "0", "--repeats", "1", "--in-process",
                              "--out", str(tmp_path), "--quiet"], capsys)
    assert code == 1
    [path] = tmp_path.glob("*.json")
    assert out.strip().endswith(path.name)
    report = load_report(path)
    by = {r.workload: r for r in report.results}
    assert by["boom"].status == "failed" and "boom at step 2" in by["boom"].error
    assert by["fine"].status == "ok" and len(by["fine"].timing.step_times_s) == 3
    assert report.status == "failed" and report.provenance.launcher == "inline"


@pytest.mark.slow
def test_each_repeat_is_a_fresh_process_and_a_dead_worker_is_reported(plugins, capsys, tmp_path):
    code, out, err = run_cli(["run", "--device", "cpu", "--workload", "crash", "--workload", "fine", "--steps", "3",
                              "--warmup", "1", "--sample-hz", "0", "--repeats", "2", "--out", str(tmp_path),
                              "--quiet"], capsys)
    assert code == 1, err
    report = load_report(next(tmp_path.glob("*.json")))
    crash, fine = report.results
    assert crash.status == "failed" and "killed by signal 9" in crash.error
    assert fine.status == "ok" and [len(r.step_times_s) for r in fine.timing.repeats] == [3, 3]
    pids = [r.pid for r in fine.timing.repeats]
    assert len(set(pids)) == 2 and os.getpid() not in pids  # two workers, none of them this process
    assert report.provenance.launcher == "process"


def bench_cmd(*args):
    return [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()", *args]


@pytest.mark.slow
def test_end_to_end_tiny_run_writes_a_valid_report(tmp_path):
    # --requests: blender-serve's session, 480 requests at 20/s by default, would be 24 s of arrivals
    done = subprocess.run(bench_cmd("run", "--device", "cpu", "--preset", "tiny", "--steps", "5", "--repeats", "1",
                                    "--warmup", "1", "--requests", "20", "--out", str(tmp_path), "--label", "smoke"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    [path] = tmp_path.glob("*.json")
    assert path.name.split("_")[1] == "cpu"
    report = load_report(path)
    assert report.label == "smoke" and report.status == "ok"
    by = {r.workload: r for r in report.results}
    assert set(by) == {"blender-finetune", "blender-generate", "retrieval-encode", "retrieve-refine", "blender-serve"}
    assert all(r.status == "ok" for r in by.values()), [r.error for r in by.values()]
    r = by["blender-finetune"]
    assert len(r.timing.step_times_s) == 5
    assert r.metrics.samples_per_s.value > 0
    assert r.flops_per_step > 0 and r.metrics.mfu.peak_source
    assert report.telemetry.collectors["host"].available is True
    assert len(report.telemetry.samples) > 0
    assert {p.phase for p in report.telemetry.phases} == {"setup", "warmup", "measure", "verify"}
    assert report.environment.device["threads"] >= 1
    assert "blender-finetune" in done.stdout and str(path) in done.stdout.replace("\n", "")


@pytest.mark.slow
def test_sigterm_writes_an_interrupted_report_and_exits_130(tmp_path):
    out_dir, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(bench_cmd("run", "--device", "cpu", "--preset", "tiny", "--steps", "100000",
                                      "--warmup", "1", "--repeats", "1", "--out", str(out_dir), "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp)})

    def measured():  # the worker writes its events to the run's folder under TMPDIR
        assert proc.poll() is None, proc.stderr.read()
        return steps_measured(tmp) >= 1

    wait_until(measured, "a first step measured", poll_s=0.05)  # bench took the signals long before
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, err
    files = os.listdir(out_dir)
    assert len(files) == 1 and files[0].endswith(".json"), files  # no temporary left behind
    report = load_report(out_dir / files[0])
    assert report.status == "interrupted"
    assert report.results[0].status == "interrupted"


def test_a_missing_model_dir_exits_2_before_any_work(capsys, tmp_path):
    code, out, err = run_cli(["run", "--device", "cpu", "--model", str(tmp_path / "nope"), "--sample-hz", "0",
                              "--out", str(tmp_path)], capsys)
    assert code == 2
    assert "not a directory" in err and "Traceback" not in err
    assert list(tmp_path.glob("*.json")) == []  # refused before any workload ran: no report


def test_a_missing_model_is_refused_even_for_workloads_that_do_not_use_it(capsys, tmp_path):
    code, _, err = run_cli(["run", "--device", "cpu", "--model", "/nonexistent", "--workload", "retrieval-encode",
                            "--out", str(tmp_path)], capsys)
    assert code == 2 and "--model /nonexistent" in err and not list(tmp_path.glob("*.json"))


def test_html_without_plotly_is_refused_before_any_table(capsys, tmp_path, monkeypatch):
    from reportgen import make_report

    from bench.model.io import dump_report

    a = dump_report(make_report("a", 0.1), tmp_path / "a.json")
    monkeypatch.setitem(sys.modules, "plotly", None)
    code, out, err = run_cli(["compare", str(a), "--html", str(tmp_path / "r.html")], capsys)
    assert code == 2 and "pip install 'plotly>=5.18'" in err and out == ""


def test_the_first_install_command_brings_what_the_html_page_needs():
    """The README's first command installs bench's default dependencies, and plotly is one of them:
    `bench compare --html` works after it (it failed with `needs plotly`)."""
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(re.match(r"plotly\b", d) for d in project["dependencies"])
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S).group(1)
    assert re.search(r"pip install [^\n]*-e \.(\s|$)", first)  # the project itself, with its defaults


def test_env_shows_times_and_sizes_for_people(capsys):
    code, out, _ = run_cli(["env"], capsys)
    assert code == 0 and " UTC" in out and "GiB" in out


def test_list_shows_workloads_presets_devices_and_collectors(capsys, no_accelerators):
    code, out, err = run_cli(["list", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert {w["workload"] for w in data["workloads"]} >= {"blender-finetune", "blender-generate",
                                                          "retrieval-encode", "retrieve-refine"}
    assert {p["preset"] for p in data["presets"]} == {"tiny", "seed"}
    devices = {d["device"]: d for d in data["devices"]}
    assert devices["cpu"]["present"] is True
    assert devices["hpu"]["present"] is False and "habana_frameworks" in devices["hpu"]["reason"]
    assert devices["cuda"]["present"] is False and "is_available() is False" in devices["cuda"]["reason"]
    collectors = {c["collector"]: c for c in data["collectors"]}
    assert collectors["host"]["usable"] is True
    assert "hl-smi not found" in collectors["habana"]["reason"] and "nvidia-smi not found" in collectors["nvml"]["reason"]
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0 and "blender-finetune" in out and "collectors" in out


def test_list_on_a_box_with_a_gpu_and_gaudi_stack(capsys, monkeypatch):
    """The same listing where torch sees a GPU and habana_frameworks is importable (faked)."""
    import importlib.util

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: object() if name == "habana_frameworks"
                        else real(name, *a, **k))
    code, out, _ = run_cli(["list", "--json"], capsys)
    devices = {d["device"]: d for d in json.loads(out)["devices"]}
    assert code == 0 and devices["cuda"]["present"] is True and devices["hpu"]["present"] is True
    assert devices["cuda"]["reason"] is None and devices["hpu"]["reason"] is None


def test_env_prints_the_environment_record(capsys, no_accelerators):
    code, out, _ = run_cli(["env", "--json"], capsys)
    env = json.loads(out)
    assert code == 0 and env["python"]["bench_version"] and env["torch"]["version"]
    assert env["host"]["cpu_count_logical"] >= 1 and "packages" in env
    code, out, _ = run_cli(["env", "--device", "cpu"], capsys)
    assert code == 0 and "device.threads" in out
    code, _, err = run_cli(["env", "--device", "cuda"], capsys)
    assert code == 2 and "CUDA" in err
