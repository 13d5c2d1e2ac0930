"""Fault class: tools and peers that misbehave. A query tool that answers with none of the fields asked
for is not a usable collector; a worker that dies is named as a rank, with how it died; a peer node
that never comes is waited for within a bound, and the wait says who is awaited; processes a run
started do not outlive it.

Tools are shell scripts on PATH (the fake vendors' libraries hidden, as on a machine without the
driver); torchrun's failure summary is the text torch/distributed/elastic/multiprocessing/errors
prints (ChildFailedError.format_msg: `rank : N (local_rank: M)`, `exitcode : X (pid: P)`)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import cli_run as run_cli
from faultkit import fault_fixture  # noqa: F401 - each case's own temporary directory
from test_nvidia import no_gaudi_driver, nvml, write_tool  # noqa: F401 - fixtures

from bench.devices.collectors import CollectorUnavailable
from bench.devices.registry import build_collector

CSVS = {  # what the tool prints -> what the refusal says it printed
    "other fields": ("echo 'fan.speed [%], pstate'; echo '30, P0'", "fan.speed, pstate"),
    "identity only": ("echo 'index, uuid, name'; echo '0, GPU-1, H100'", "index, uuid, name"),
    "a field of another tool": ("echo 'index, utilization.aip [%]'; echo '0, 50'", "utilization.aip"),
    "the queried names misspelt": ("echo 'index, utilisation.gpu [%], power_draw [W]'; echo '0, 50, 100'",
                                   "utilisation.gpu"),
}


@pytest.mark.parametrize("kind", list(CSVS))
def test_nvidia_smi_printing_none_of_the_fields_asked_for_is_no_collector(kind, nvml, monkeypatch, tmp_path):  # noqa: F811
    body, printed = CSVS[kind]
    nvml(lib=False)
    write_tool(tmp_path, "nvidia-smi", body)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(CollectorUnavailable, match="printed none of the fields asked for") as caught:
        build_collector({"name": "nvml", "indices": [0]})
    assert printed in str(caught.value)


@pytest.mark.parametrize("body", ["echo 'index, module_id, name'; echo '0, 0, HL-205'",
                                  "echo 'index, utilization.gpu [%]'; echo '0, 50'",  # nvidia-smi's field
                                  "echo 'index, clock.soc [MHz]'; echo '0, 1500'"])
def test_hl_smi_printing_none_of_the_fields_asked_for_is_no_collector(body, monkeypatch, tmp_path, no_gaudi_driver):  # noqa: F811
    write_tool(tmp_path, "hl-smi", body)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(CollectorUnavailable, match="hl-smi printed none of the fields asked for"):
        build_collector({"name": "habana", "indices": [0]})


def test_bench_list_does_not_call_such_a_tool_usable(nvml, monkeypatch, tmp_path, capsys, no_gaudi_driver):  # noqa: F811
    nvml(lib=False)
    write_tool(tmp_path, "nvidia-smi", CSVS["other fields"][0])
    write_tool(tmp_path, "hl-smi", CSVS["identity only"][0])
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    code, out, _ = run_cli(capsys, "list", "--json")
    rows = {c["collector"]: c for c in json.loads(out)["collectors"]}
    assert code == 0
    for name in ("nvml", "habana"):
        assert rows[name]["usable"] is False and "none of the fields asked for" in rows[name]["reason"], rows[name]


def test_a_tool_with_some_of_the_fields_is_usable_for_those(nvml, monkeypatch, tmp_path):  # noqa: F811
    nvml(lib=False)
    write_tool(tmp_path, "nvidia-smi", "echo 'index, fan.speed [%], power.draw [W]'; echo '0, 30, 120.5'")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert build_collector({"name": "nvml", "indices": [0]}).sample() == {"gpu0.power_w": 120.5}



# ---- a worker that dies is named as a rank ---------------------------------------------------------

def _summary(*failures):
    """torchrun's ChildFailedError text for (rank, exitcode, signal name) failures."""
    parts = [f"[{i}]:\n  time      : 2026-12-02_02:00:00\n  host      : node0\n  rank      : {rank} (local_rank: {rank})\n"
             f"  exitcode  : {code} (pid: {4000 + rank}){f' ({name})' if name else ''}\n  error_file: <N/A>\n"
             f"  traceback : {'Signal ' + str(-code) + ' (' + name + ') received by PID ' + str(4000 + rank) if name else 'To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html'}"
             for i, (rank, code, name) in enumerate(failures)]
    return ("torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n" + "=" * 60 +
            "\nbench.launch.worker FAILED\n" + "-" * 60 + "\nFailures:\n" + "\n".join(parts[1:] or ["  <NO_OTHER_FAILURES>"])
            + "\n" + "-" * 60 + "\nRoot Cause (first observed failure):\n" + parts[0] + "\n" + "=" * 60)


def _launcher(world):
    from conftest import run_config

    from bench.launch.launcher import Launcher

    launcher = Launcher.__new__(Launcher)
    launcher.cfg, launcher.ranks = run_config("--nproc", world, "--device", "cpu"), {}
    return launcher


DEATHS = {  # torchrun's failures, world size -> what the report says of each rank
    "rank 1 killed (SIGKILL)": ([(1, -9, "SIGKILL")], 2, {1: "its process was killed by signal 9 (SIGKILL)",
                                                          0: "stopped after rank 1 failed"}),
    "rank 0 segfaulted": ([(0, -11, "SIGSEGV")], 2, {0: "killed by signal 11 (SIGSEGV)", 1: "after rank 0 failed"}),
    "rank 3 of 4 exited 1": ([(3, 1, None)], 4, {3: "its process exited with code 1", 2: "after rank 3 failed"}),
    "killed, torch printing no signal name": ([(1, -9, None)], 2, {1: "killed by signal 9 (SIGKILL)"}),
    "rank 0 stopped by torchrun after rank 1": ([(1, -9, None), (0, 130, None)], 2,
                                                 {0: "was stopped (exit 130: interrupted, as torchrun stops every"}),
    "two ranks of 4 killed": ([(2, -9, "SIGKILL"), (1, -6, "SIGABRT")], 4,
                              {2: "signal 9 (SIGKILL)", 1: "signal 6 (SIGABRT)", 0: "after rank 1, 2 failed"}),
}


@pytest.mark.parametrize("kind", list(DEATHS))
def test_a_worker_that_died_is_named_as_a_rank_with_how_it_died(kind):
    failures, world, said = DEATHS[kind]
    launcher = _launcher(world)
    events = [{"event": "died", "code": 1, "log": "a traceback\n" + _summary(*failures)}]
    result, _ = launcher.outcome(events, "blender-finetune", 0)
    ranks = {r.rank: r for r in launcher.ranks.values()}
    assert sorted(ranks) == list(range(world))  # every rank in the report, none left out
    for rank, words in said.items():
        assert ranks[rank].status == "failed" and words in ranks[rank].error, ranks[rank]
    assert result.status == "failed"
    for rank, _, _ in failures:
        assert f"rank {rank} " in result.error, result.error


def test_a_rank_that_died_after_another_sent_its_result_is_named(tmp_path):
    from reportgen import make_report

    from bench.model.fields import plain

    launcher = _launcher(2)
    ok = make_report("x", 0.1).results[0]
    events = [{"event": "result", "rank": 0, "result": plain(ok), "energy_counter": None, "phases": []},
              {"event": "died", "code": 1, "log": _summary((1, -9, "SIGKILL"))}]
    result, _ = launcher.outcome(events, ok.workload, 0)
    assert result.status == "failed" and "rank 1: no result: its process was killed by signal 9" in result.error


# ---- a peer node that never comes: the wait is bounded and says who is awaited ---------------------

def _nodes(*extra):
    from conftest import run_config

    return run_config("--nproc", 1, "--nnodes", 2, "--rdzv-endpoint", "127.0.0.1:29555", *extra)


@pytest.mark.parametrize("timeout,conf", [(30, "timeout=30"), (1, "timeout=1"), (90.4, "timeout=90"),
                                          (86_400, "timeout=86400")])
def test_the_rendezvous_is_bounded_by_the_dist_timeout(timeout, conf):
    from bench.launch.torchrun import torchrun_argv

    argv = torchrun_argv(_nodes("--dist-timeout", timeout), "job.json")
    assert f"--rdzv-conf={conf}" in argv  # torch's static rendezvous waits 600 s without it


@pytest.mark.parametrize("extra,said", [
    ((), "node 0 waits up to 300 s at 127.0.0.1:29555 for node(s) 1 to join"),
    (("--nnodes", 4), "for node(s) 1, 2, 3 to join"),
    (("--node-rank", 1, "--dist-timeout", 30), "node 1 joins node 0 at 127.0.0.1:29555 (waiting up to 30 s for it)"),
])
def test_a_multi_node_run_says_who_it_waits_for(extra, said):
    from bench.launch.torchrun import awaited

    assert said in awaited(_nodes(*extra))


def test_a_repeat_whose_rendezvous_never_completed_names_the_nodes_awaited():
    from bench.launch.launcher import Launcher

    launcher = Launcher.__new__(Launcher)
    launcher.cfg, launcher.ranks = _nodes("--dist-timeout", 30), {}
    events = [{"event": "died", "code": 1, "log": "torch.distributed.DistStoreError: Timed out after 31 seconds "
                                                  "waiting for clients. 1/2 clients joined."}]
    result, _ = launcher.outcome(events, "blender-finetune", 0)
    assert result.status == "failed" and "no rank started: node 0 waits up to 30 s at 127.0.0.1:29555 for node(s) 1" \
        in result.error, result.error
    assert sorted(launcher.ranks) == [0, 1]  # both ranks named in the report


# ---- a node other than 0 follows the group, and says its own failures ------------------------------

def _node1():
    from bench.launch.launcher import Launcher

    launcher = Launcher.__new__(Launcher)
    launcher.cfg, launcher.ranks = _nodes("--node-rank", 1), {}
    return launcher


def _result_event(rank, status="ok"):
    from reportgen import make_report

    from bench.model.fields import plain

    r = make_report("x", 0.1, seed=rank).results[0]
    r.status, r.error = status, None if status == "ok" else "RuntimeError: boom"
    return {"event": "result", "rank": rank, "result": plain(r), "energy_counter": None, "phases": []}


def test_node_1_does_not_fail_a_repeat_for_the_ranks_node_0_gathers():
    result, _ = _node1().outcome([_result_event(1)], "blender-finetune", 0)
    assert result.status == "ok", result.error  # else it stops repeating while node 0 waits for it


@pytest.mark.parametrize("events,said", [
    ([_result_event(1, "failed")], "rank 1: RuntimeError: boom"),
    ([_result_event(1), {"event": "gather_failed", "rank": 1, "error": "DistBackendError: connection reset"}],
     "the final gather of every rank's result failed (rank 1: DistBackendError: connection reset)"),
    ([_result_event(1), {"event": "gather_failed", "rank": 1, "error": "RuntimeError: Timed out"}], "Timed out"),
])
def test_node_1_says_what_failed_on_it(events, said):
    result, _ = _node1().outcome(events, "blender-finetune", 0)
    assert result.status == "failed" and said in result.error, result.error


def test_a_failed_gather_on_node_1_is_said_and_exits_1(monkeypatch, capsys):
    from reportgen import make_report

    from bench import cli

    report = make_report("x", 0.1)
    report.status, report.results[0].status = "failed", "failed"
    report.results[0].error = "the final gather of every rank's result failed (rank 1: RuntimeError: Timed out)"
    monkeypatch.setattr(cli, "_launch", lambda c, threads=None: (report, None, False))
    code, out, err = run_cli(capsys, "run", "--device", "cpu", "--preset", "tiny", "--workload", "blender-finetune",
                             "--nproc", 1, "--nnodes", 2, "--node-rank", 1, "--rdzv-endpoint", "127.0.0.1:29555")
    assert code == 1 and f"node 1: {report.results[0].workload} failed: the final gather" in err and "finished" not in out, err
    assert "node 1 joins node 0 at 127.0.0.1:29555" in err


# ---- through the command line, with torchrun itself ----------------------------------------------

@pytest.mark.slow
def test_a_worker_killed_during_a_two_rank_run_is_named_in_the_report(tmp_path):
    from faultkit import run_bench
    from plugins import env_with, plugin_site, workload_eps

    from bench.model.io import load_report

    site = plugin_site(tmp_path, workload_eps("killed-on-rank-1"))
    done = run_bench("run", "--device", "cpu", "--nproc", 2, "--workload", "killed-on-rank-1", "--steps", 4,
                     "--warmup", 1, "--repeats", 2, "--sample-hz", 0, "--dist-timeout", 60, "--out", tmp_path / "out",
                     env=env_with(site))
    assert done.returncode == 1, done.stderr[-3000:]
    [path] = (tmp_path / "out").glob("*.json")
    report = load_report(path)
    ranks = {r.rank: r for r in report.distributed.ranks}
    assert "killed by signal 9 (SIGKILL)" in ranks[1].error and ranks[1].status == "failed", ranks
    assert "rank 1" in report.results[0].error and len(report.results[0].timing.repeats) <= 1


@pytest.mark.slow
def test_a_second_node_that_never_comes_ends_the_run_within_the_bound_naming_it(tmp_path):
    import socket

    from faultkit import run_bench

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_bench("run", "--device", "cpu", "--preset", "tiny", "--workload", "retrieval-encode", "--steps", 2,
                     "--warmup", 1, "--repeats", 2, "--sample-hz", 0, "--nproc", 1, "--nnodes", 2, "--node-rank", 0,
                     "--rdzv-endpoint", f"127.0.0.1:{port}", "--dist-timeout", 2, "--out", tmp_path / "out")
    err = " ".join(done.stderr.split()) + " ".join(done.stdout.split())
    assert done.returncode == 1, err
    assert f"node 0 waits up to 2 s at 127.0.0.1:{port} for node(s) 1 to join" in err
    assert "no rank started" in err and "rendezvous did not complete" in err


# ---- nothing a tool or a repeat started outlives it ------------------------------------------------

def _gone(pid: int) -> bool:
    """Ended (a zombie its new parent has yet to reap counts): SIGKILL lands within moments. The guard is
    a hang guard, far above any loaded machine and far below the 300 s the escaped processes sleep."""
    import time

    import psutil

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


ESCAPES = {  # a tool that leaves a process behind, its PID written to $1 before the tool answers
    "setsid": "setsid sh -c 'echo $$ > \"$1\"; exec sleep 300' _ \"$1\" </dev/null >/dev/null 2>&1 &",
    "a double fork": "( setsid sh -c 'echo $$ > \"$1\"; exec sleep 300' _ \"$1\" </dev/null >/dev/null 2>&1 & ) &",
    "nohup, its own group": "set -m; nohup sh -c 'echo $$ > \"$1\"; exec sleep 300' _ \"$1\" </dev/null >/dev/null 2>&1 &",
    "holding the tool's stdout": "setsid sh -c 'echo $$ > \"$1\"; exec sleep 300' _ \"$1\" &",
}


@pytest.mark.parametrize("kind", list(ESCAPES))
def test_a_tools_escaped_grandchild_does_not_outlive_the_query(kind, tmp_path):
    from bench.devices.tools import ToolError, run_tool

    pidfile = tmp_path / "pid"
    write_tool(tmp_path, "tool", ESCAPES[kind] + "\nwhile [ ! -s \"$1\" ]; do sleep 0.05; done\necho 'index, power.draw [W]'")
    try:
        run_tool([str(tmp_path / "tool"), str(pidfile)], timeout_s=3 if "stdout" in kind else 60)
    except ToolError:
        assert kind == "holding the tool's stdout"  # it kept the pipe open: the query timed out, said
    assert _gone(int(pidfile.read_text())), kind


def test_a_process_a_workload_started_in_its_own_session_does_not_outlive_the_run(tmp_path, capsys, monkeypatch):
    from faultkit import QUICK
    from plugins import plugin_site, workload_eps

    site = plugin_site(tmp_path, workload_eps("escapes"))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.syspath_prepend(str(site))
    pids = tmp_path / "pids"
    monkeypatch.setenv("ESCAPED_PIDS", str(pids))
    code, _, err = run_cli(capsys, "run", *QUICK, "--workload", "escapes", "--repeats", 2, "--sample-hz", 0,
                           "--out", tmp_path / "out")
    assert code == 0, err
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 2 and all(_gone(p) for p in started)  # one per repeat, each ended with its repeat


@pytest.mark.slow
def test_nothing_torchrun_or_its_workers_started_outlives_the_run(tmp_path):
    from faultkit import run_bench
    from plugins import env_with, plugin_site, workload_eps

    site = plugin_site(tmp_path, workload_eps("escapes"))
    pids = tmp_path / "pids"
    done = run_bench("run", "--device", "cpu", "--nproc", 2, "--workload", "escapes", "--steps", 2, "--warmup", 1,
                     "--repeats", 1, "--sample-hz", 0, "--dist-timeout", 60, "--out", tmp_path / "out",
                     env={**env_with(site), "ESCAPED_PIDS": str(pids)})
    assert done.returncode == 0, done.stderr[-3000:]
    started = [int(x) for x in pids.read_text().split()]
    assert len(started) == 2 and all(_gone(p) for p in started)
