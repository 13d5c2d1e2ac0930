"""Multi-process runs through torchrun on CPU (gloo): one report, per-rank times, global = sum,
and a failing rank that neither hangs the run nor goes unreported."""

import os
import subprocess
import sys
import textwrap

import pytest

from bench.config import RunConfig, validate
from bench.distributed import check_nproc, merge
from bench.model.derive import global_metrics
from bench.model.report import RankResult, RankStatus, Repeat, Timing
from bench.core.errors import ConfigError
from bench.model.io import load_report

KNOWN = {"blender-finetune": None}


def bench(*args, env=None, timeout=240):
    cmd = [sys.executable, "-c", "import sys; from bench.cli import main; sys.argv[0] = 'bench'; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_two_cpu_workers_write_one_report_with_global_throughput(tmp_path):
    done = bench("run", "--device", "cpu", "--preset", "tiny", "--nproc", "2", "--workload", "blender-finetune",
                 "--steps", "4", "--warmup", "1", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("*.json")
    report = load_report(path)
    assert report.distributed.world_size == 2 and report.distributed.backend == "gloo"
    assert [r.status for r in report.distributed.ranks] == ["ok", "ok"]
    [res] = report.results
    assert res.params["world_size"] == 2
    assert [p.rank for p in res.per_rank] == [0, 1]
    assert all(len(p.timing.step_times_s) == 4 for p in res.per_rank)
    rates = [sum(p.timing.step_samples) / sum(p.timing.step_times_s) for p in res.per_rank]
    assert res.metrics.samples_per_s.value == pytest.approx(sum(rates))
    assert res.workload_metrics["comm.allreduce_median_s"] > 0
    assert "1" in report.telemetry.other_ranks


PLUGIN = '''
import os
from workloads.base import StepResult, Workload


class FailOnRank1(Workload):
    name = "fail-on-rank-1"
    description = "raises on rank 1"

    def params(self):
        return {"model": "none", "world_size": self.world_size}

    def step(self):
        if self.rank == 1:
            raise RuntimeError("rank one is broken")
        return StepResult(samples=1, tokens=1)
'''


@pytest.mark.slow
def test_a_failing_rank_is_reported_and_does_not_hang(tmp_path):
    site = tmp_path / "site"
    (site / "failplug-0.1.dist-info").mkdir(parents=True)
    (site / "failplug.py").write_text(textwrap.dedent(PLUGIN))
    (site / "failplug-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: failplug\nVersion: 0.1\n")
    (site / "failplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[bench.workloads]\nfail-on-rank-1 = failplug:FailOnRank1\n")
    env = {**os.environ, "PYTHONPATH": f"{site}:{os.environ.get('PYTHONPATH', '')}"}
    out = tmp_path / "out"
    done = bench("run", "--device", "cpu", "--nproc", "2", "--workload", "fail-on-rank-1", "--steps", "3",
                 "--warmup", "1", "--sample-hz", "0", "--dist-timeout", "30", "--out", str(out), env=env, timeout=180)
    assert done.returncode == 1, done.stderr[-3000:]
    [path] = out.glob("*.json")
    report = load_report(path)
    ranks = {r.rank: r for r in report.distributed.ranks}
    assert ranks[1].status == "failed" and "rank one is broken" in ranks[1].error
    [res] = report.results
    assert res.status == "failed" and "rank 1: RuntimeError: rank one is broken" in res.error
    assert "rank one is broken" in done.stderr


@pytest.mark.parametrize("kw,field", [({"nproc": 0}, "--nproc"), ({"rdzv_endpoint": "node0"}, "--rdzv-endpoint"),
                                      ({"rdzv_endpoint": "node0:99999"}, "--rdzv-endpoint"),
                                      ({"nnodes": 2}, "--rdzv-endpoint"), ({"nnodes": 2, "node_rank": 2,
                                                                           "rdzv_endpoint": "h:1"}, "--node-rank"),
                                      ({"scaling": [1, 0]}, "--scaling")])
def test_bad_distributed_options(tmp_path, kw, field):
    with pytest.raises(ConfigError, match=field):
        validate(RunConfig(out_dir=str(tmp_path), **kw), KNOWN)


def test_nproc_above_the_devices_present_is_refused(monkeypatch):
    import bench.distributed as d

    monkeypatch.setattr(d, "devices_present", lambda cfg: 4)
    with pytest.raises(ConfigError, match="only 4 cuda"):
        check_nproc(RunConfig(device="cuda"), 8)
    check_nproc(RunConfig(device="cuda"), 4)


@pytest.mark.slow
def test_cli_rejects_nproc_zero_with_exit_2(tmp_path):
    done = bench("run", "--device", "cpu", "--nproc", "0", "--out", str(tmp_path))
    assert done.returncode == 2 and "--nproc" in done.stderr and "Traceback" not in done.stderr


def test_merge_names_a_rank_that_never_reported():
    from reportgen import make_report

    r0 = make_report("x", 0.1)
    merged = merge({0: (r0, RankStatus(0, "ok", local_rank=0, host="h")), 1: None}, 2, RunConfig(device="cpu"),
                   exit_code=1)
    assert merged.status == "failed"
    assert merged.distributed.ranks[1].status == "failed"
    assert "no report" in merged.results[0].error


def test_global_metrics_sum_ranks():
    per_rank = [RankResult(r, "ok", timing=Timing([Repeat(0, step_times_s=[t] * 5, step_samples=[4] * 5,
                                                          step_tokens=[40] * 5)]))
                for r, t in enumerate((0.1, 0.2))]
    g = global_metrics(per_rank)
    assert g["samples_per_s"].value == pytest.approx(40 + 20) and g["tokens_per_s"].value == pytest.approx(600)
    assert g["samples_per_s"].ranks == 2


def test_a_rank_stopped_because_another_failed_is_not_called_a_user_interrupt():
    from reportgen import make_report

    r0, r1 = make_report("x", 0.1), make_report("x", 0.1, seed=1)
    r0.results[0].status, r0.results[0].error = "interrupted", "interrupted by the user (Ctrl-C or SIGTERM)"
    r0.status = "interrupted"
    r1.results[0].status, r1.results[0].error = "failed", "RuntimeError: boom"
    r1.status = "failed"
    by_rank = {0: (r0, RankStatus(0, "interrupted", "interrupted", 0, "h")), 1: (r1, RankStatus(1, "failed", "boom", 1, "h"))}
    merged = merge(by_rank, 2, RunConfig(device="cpu"), exit_code=1)
    assert merged.status == "failed"
    assert merged.distributed.ranks[0].error == "stopped by the launcher after rank 1 failed"
    assert merged.results[0].status == "failed"
    assert "rank 0: stopped by the launcher after rank 1 failed" in merged.results[0].error


def test_torchrun_arguments_single_node_and_multi_node():
    from bench.distributed import torchrun_argv
    from torch.distributed.run import config_from_args, get_args_parser

    one = torchrun_argv(RunConfig(device="cpu"), 2, "c.json", "/tmp/r", quiet=True)
    assert "--standalone" in one and one[-4:] == ["bench.distributed", "c.json", "/tmp/r", "--quiet"]
    multi = torchrun_argv(RunConfig(device="cpu", nnodes=2, node_rank=1, rdzv_endpoint="node0:29500"), 8,
                          "c.json", "/tmp/r", quiet=False)
    args = get_args_parser().parse_args(multi[3:])
    launch_cfg, _, _ = config_from_args(args)
    assert (launch_cfg.min_nodes, launch_cfg.nproc_per_node) == (2, 8)
    assert launch_cfg.rdzv_backend == "static" and launch_cfg.rdzv_configs["rank"] == 1  # node rank honoured
    assert launch_cfg.rdzv_endpoint == "node0:29500"
