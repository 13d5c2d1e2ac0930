"""Multi-process runs through torchrun on CPU (gloo): one report, per-rank times, global = sum,
and a failing rank that neither hangs the run nor goes unreported."""

import math
from pathlib import Path
import subprocess
import sys
import types

import pytest
from conftest import run_config
from plugins import env_with, plugin_site, workload_eps
from reportgen import make_report

from bench.core.errors import ConfigError
from bench.launch.config import _check_ranks
from bench.launch.launcher import Launcher
from bench.model.derive import global_metrics
from bench.model.io import load_report
from bench.model.report import RankResult, Repeat, Timing


def bench(*args, env=None, timeout=900):
    cmd = [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
def test_two_cpu_workers_write_one_report_with_global_throughput(tmp_path):
    done = bench("run", "--device", "cpu", "--preset", "tiny", "--nproc", "2", "--workload", "blender-finetune",
                 "--steps", "4", "--warmup", "1", "--repeats", "2", "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = tmp_path.glob("*.json")
    report = load_report(path)
    assert report.distributed.world_size == 2 and report.distributed.backend == "gloo"
    assert [r.status for r in report.distributed.ranks] == ["ok", "ok"]
    assert report.provenance.launcher == "torchrun"
    [res] = report.results
    assert res.params["world_size"] == 2
    assert [p.rank for p in res.per_rank] == [0, 1]
    assert all([len(r.step_times_s) for r in p.timing.repeats] == [4, 4] for p in res.per_rank)  # 2 repeats each
    # in each repeat the ranks' rates add up; the run's figure is the geometric mean over repeats
    per_repeat = [sum(sum(p.timing.repeats[i].step_samples) / sum(p.timing.repeats[i].step_times_s)
                      for p in res.per_rank) for i in range(2)]
    assert res.metrics.samples_per_s.value == pytest.approx(math.sqrt(per_repeat[0] * per_repeat[1]))
    assert res.workload_metrics["comm.allreduce_median_s"] > 0
    assert report.telemetry.samples  # the parent's sampler covered the torchrun workers


@pytest.mark.slow
def test_a_failing_rank_is_reported_and_does_not_hang(tmp_path):
    site = plugin_site(tmp_path, workload_eps("fail-on-rank-1"))
    out = tmp_path / "out"
    done = bench("run", "--device", "cpu", "--nproc", "2", "--workload", "fail-on-rank-1", "--steps", "3",
                 "--warmup", "1", "--repeats", "2", "--sample-hz", "0", "--dist-timeout", "30", "--out", str(out),
                 env=env_with(site), timeout=900)
    assert done.returncode == 1, done.stderr[-3000:]
    [path] = out.glob("*.json")
    report = load_report(path)
    ranks = {r.rank: r for r in report.distributed.ranks}
    assert ranks[1].status == "failed" and "rank one is broken" in ranks[1].error
    [res] = report.results
    assert res.status == "failed" and "rank 1: RuntimeError: rank one is broken" in res.error
    assert len(res.timing.repeats) == 1  # a failed repeat is not repeated
    assert "rank one is broken" in done.stderr


def test_nproc_above_the_devices_present_is_refused():
    spec = types.SimpleNamespace(name="cuda", count=lambda: 4)
    with pytest.raises(ConfigError, match="only 4 cuda"):
        _check_ranks(run_config("--nproc", 8), spec)
    with pytest.raises(ConfigError, match="--nproc 8: only 4"):
        _check_ranks(run_config("--scaling", "1,2,8"), spec)
    _check_ranks(run_config("--nproc", 4), spec)


def _launcher(world=2):
    launcher = Launcher.__new__(Launcher)
    launcher.cfg, launcher.ranks = run_config("--nproc", world, "--device", "cpu"), {}
    return launcher


def test_a_rank_that_never_reported_is_named():
    result = make_report("x", 0.1).results[0]
    launcher = _launcher()
    ranks = launcher.rank_statuses({0: result}, [])
    result.merge_ranks({0: result}, ranks)
    assert ranks[1].status == "failed" and "no result" in ranks[1].error
    assert result.status == "failed" and "rank 1: no result" in result.error


def test_a_rank_stopped_because_another_failed_is_not_called_a_user_interrupt():
    r0, r1 = make_report("x", 0.1).results[0], make_report("x", 0.1, seed=1).results[0]
    r0.status, r0.error = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
    r1.status, r1.error = "failed", "RuntimeError: boom"
    ranks = _launcher().rank_statuses({0: r0, 1: r1}, [])
    r0.merge_ranks({0: r0, 1: r1}, ranks)
    assert ranks[0].error == "stopped by the launcher after rank 1 failed"
    assert r0.status == "failed" and "rank 0: stopped by the launcher after rank 1 failed" in r0.error


def test_global_metrics_sum_ranks():
    per_rank = [RankResult(r, "ok", timing=Timing([Repeat(0, step_times_s=[t] * 5, step_samples=[4] * 5,
                                                          step_tokens=[40] * 5)]))
                for r, t in enumerate((0.1, 0.2))]
    g = global_metrics(per_rank)
    assert g["samples_per_s"].value == pytest.approx(40 + 20) and g["tokens_per_s"].value == pytest.approx(600)
    assert g["samples_per_s"].ranks == 2


def test_torchrun_arguments_single_node_and_multi_node():
    from torch.distributed.run import config_from_args, get_args_parser

    from bench.launch.torchrun import torchrun_argv

    one = torchrun_argv(run_config("--nproc", 2), "j.json")
    assert "--standalone" in one and one[-3:] == ["-m", "bench.launch.worker", "j.json"]
    multi = torchrun_argv(run_config("--nproc", 8, "--nnodes", 2, "--node-rank", 1, "--rdzv-endpoint", "node0:29500"),
                          "j.json")
    args = get_args_parser().parse_args(multi[multi.index("torch.distributed.run") + 1:])
    launch_cfg, _, _ = config_from_args(args)
    assert (launch_cfg.min_nodes, launch_cfg.nproc_per_node) == (2, 8)
    assert launch_cfg.rdzv_backend == "static" and launch_cfg.rdzv_configs["rank"] == 1  # node rank honoured
    assert launch_cfg.rdzv_endpoint == "node0:29500"


# ---- gathering results over the Gaudi bridge's hccl (tests/fake_habana, after bridge 1.19's C++) ---------

FAKE_HABANA = str(Path(__file__).parent / "fake_habana")
HCCL_LIBRARIES = {"lazy": {"PT_HPU_LAZY_MODE": "1"},
                  "lazy collectives": {"PT_HPU_LAZY_MODE": "1", "PT_HPU_ENABLE_LAZY_COLLECTIVES": "true"},
                  "eager": {"PT_HPU_LAZY_MODE": "0"}}


def payload_of(length: int):
    """A JSON value whose text is exactly `length` bytes."""
    return length % 10 if length == 1 else "a" * (length - 2)


@pytest.fixture
def hccl_group(monkeypatch):
    """A one-rank process group of the fake bridge's hccl, in this process."""
    import torch.distributed as dist

    monkeypatch.syspath_prepend(FAKE_HABANA)

    def start(library):
        for k, v in HCCL_LIBRARIES[library].items():
            monkeypatch.setenv(k, v)
        import habana_frameworks.torch.distributed.hccl  # noqa: F401 - registers hccl

        dist.init_process_group("hccl", store=dist.HashStore(), rank=0, world_size=1)

    yield start
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize("library", HCCL_LIBRARIES)
def test_every_payload_length_survives_the_gather_over_hccl(hccl_group, library):
    from bench.launch.collective import gather_json

    hccl_group(library)
    for length in [*range(1, 65), 2**20]:
        assert gather_json(payload_of(length), "cpu") == [payload_of(length)]  # 0.1: died in lazy mode


def test_the_fake_hccl_carries_buffers_as_the_bridge_does(hccl_group):
    import torch
    import torch.distributed as dist

    hccl_group("lazy collectives")
    out = [torch.zeros(5, dtype=torch.uint8)]
    dist.all_gather(out, torch.arange(1, 6, dtype=torch.uint8))
    assert out[0].tolist() == [1, 2, 3, 4, 0]  # numel / 2 bf16 values: the odd last byte is not sent
    lengths = [torch.zeros(1, dtype=torch.long)]
    dist.all_gather(lengths, torch.tensor([7], dtype=torch.long))
    assert lengths[0].item() != 7  # int64 without PT_ENABLE_INT64_SUPPORT: half its bytes, the rest garbage
    words = [torch.zeros(2, dtype=torch.int32)]
    dist.all_gather(words, torch.tensor([7, -1], dtype=torch.int32))
    assert words[0].tolist() == [7, -1]
    with pytest.raises(RuntimeError, match="not supported for HCCL"):
        dist.all_gather([torch.zeros(1, dtype=torch.int16)], torch.zeros(1, dtype=torch.int16))


@pytest.mark.parametrize("release,library", [("1.23.0", "eager"), ("1.19.0", "lazy")])
def test_the_fake_hccl_picks_the_group_of_its_releases_default_mode(monkeypatch, release, library):
    """PT_HPU_LAZY_MODE unset: the bridge's own default mode decides (1.19 lazy, later releases eager).
    0.1's fake took lazy whatever its release."""
    from test_hpu import forget

    monkeypatch.syspath_prepend(FAKE_HABANA)
    monkeypatch.delenv("PT_HPU_LAZY_MODE", raising=False)
    monkeypatch.setenv("FAKE_BRIDGE_RELEASE", release)
    forget("habana_frameworks")
    try:
        import habana_frameworks.torch.distributed.hccl as hccl

        assert hccl._library() == library
    finally:
        forget("habana_frameworks")


GATHER_SCRIPT = '''
import os, sys, torch.distributed as dist
import habana_frameworks.torch.distributed.hccl
from bench.launch.collective import gather_json

def payload_of(length, rank):
    return (length + rank) % 10 if length == 1 else chr(97 + rank) * (length - 2)

dist.init_process_group("hccl")
rank = dist.get_rank()
for length in [*range(1, 65), 2**20]:
    got = gather_json(payload_of(length + rank, rank), "cpu")
    assert got == [payload_of(length + r, r) for r in range(2)], (length, [str(g)[:20] for g in got])
dist.destroy_process_group()
sys.stdout.write(f"gathered {rank}\\n")  # one write: the ranks share stdout
'''


@pytest.mark.slow
@pytest.mark.parametrize("library", ["lazy", "lazy collectives"])
def test_two_ranks_gather_payloads_of_every_length_over_the_fake_hccl(tmp_path, library):
    """Ranks whose payloads differ in length (and in length mod 4) at once, as a real gather of results."""
    import os

    script = tmp_path / "gather.py"
    script.write_text(GATHER_SCRIPT)
    import bench as under_test

    root = str(Path(under_test.__file__).parent.parent)  # the checkout being tested
    env = {**os.environ, **HCCL_LIBRARIES[library], "PYTHONPATH": f"{FAKE_HABANA}{os.pathsep}{root}"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script)], capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gathered 0" in done.stdout and "gathered 1" in done.stdout


FAKE_HPU_DEVICE = '''
import dataclasses

from bench.devices.hpu.backend import HpuBackend
from bench.devices.hpu.spec import SPEC as HPU


class HpuOnCpu(HpuBackend):
    """The real hpu backend over the fake bridge, its tensors on the CPU (torch here has no hpu device)."""

    def device_str(self):
        return "cpu"


SPEC = dataclasses.replace(HPU, name="fakehpu", backend="fakehpu:HpuOnCpu", options=None, count=lambda: 2,
                           description="hpu over the fake bridge, tensors on the CPU")
'''


@pytest.mark.slow
def test_a_two_node_run_over_the_fake_hccl_gathers_its_results(tmp_path):
    """bench run on 2 "nodes" (two launchers on this machine, one rank each) on the hpu backend over the fake
    bridge's hccl, lazy collectives on: node 0's report holds node 1's result only through the final
    gather of every rank's result JSON; DDP and the all-reduce figure go through the fake hccl too."""
    import os
    import socket

    site = plugin_site(tmp_path, {"bench.devices": {"fakehpu": "fakehpu:SPEC"}}, {"fakehpu": FAKE_HPU_DEVICE})
    env = env_with(site)
    env.update(HCCL_LIBRARIES["lazy collectives"])
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}{os.pathsep}{FAKE_HABANA}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-c", "import sys; from bench.entry import main; sys.argv[0] = 'bench'; main()", "run",
           "--device", "fakehpu", "--preset", "tiny", "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint",
           f"127.0.0.1:{port}", "--workload", "blender-finetune", "--steps", "3", "--warmup", "1", "--repeats", "1",
           "--sample-hz", "0", "--quiet", "--dist-timeout", "120"]
    nodes = [subprocess.Popen([*cmd, "--node-rank", str(n), "--out", str(tmp_path / f"n{n}")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in (0, 1)]
    outs = [p.communicate(timeout=900) for p in nodes]  # a hang guard only
    assert nodes[0].returncode == 0, outs[0][1][-3000:]  # 0.1: the gather died; node 1's rank had no result
    [path] = (tmp_path / "n0").glob("*.json")
    report = load_report(path)
    assert report.distributed.backend == "hccl" and [r.status for r in report.distributed.ranks] == ["ok", "ok"]
    [res] = report.results
    assert res.status == "ok", res.error
    assert [p.rank for p in res.per_rank] == [0, 1] and all(len(p.timing.repeats) == 1 for p in res.per_rank)
    assert res.workload_metrics["comm.allreduce_median_s"] > 0
