"""Multi-process runs through PyTorch's own launcher (torch.distributed.run, i.e. torchrun).

The parent `bench run --nproc N` starts torchrun, which starts one worker per device; each worker
times its own steps and samples its own device, writes its report to a run directory, and rank 0
gathers every rank's report over the process group. A rank that fails exits at once, so torchrun
tears the group down instead of leaving the others in a collective; the process-group timeout
bounds a hang. The parent merges what came back into one report that names the failed ranks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

from bench.config import RunConfig
from bench.core.errors import ConfigError
from bench.model.derive import recompute
from bench.model.io import report_from_data
from bench.model.report import RankStatus, Report

DIST_BACKENDS = {"cpu": "gloo", "cuda": "nccl", "hpu": "hccl"}


def devices_present(cfg: RunConfig) -> int | None:
    """How many devices of cfg.device this node has (None: no limit, as on cpu)."""
    if cfg.device == "cuda":
        import torch

        return torch.cuda.device_count()
    if cfg.device == "hpu":
        from bench.backends import make_backend

        return make_backend(cfg).hthpu.device_count()
    return None


def check_nproc(cfg: RunConfig, nproc: int) -> None:
    present = devices_present(cfg)
    if present is not None and nproc > present:
        raise ConfigError(f"--nproc {nproc}: only {present} {cfg.device} device(s) on this node")


def torchrun_argv(cfg: RunConfig, nproc: int, cfg_path: str, run_dir: str, quiet: bool) -> list[str]:
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", f"--nnodes={cfg.nnodes}",
            f"--node-rank={cfg.node_rank}", "--max-restarts=0"]
    if cfg.rdzv_endpoint:
        # static rendezvous: --node-rank is honoured, so global rank 0 (which gathers and whose
        # node writes the report) runs on node 0; c10d would hand out ranks in join order
        argv += ["--rdzv-backend=static", f"--rdzv-endpoint={cfg.rdzv_endpoint}"]
    else:
        argv += ["--standalone"]
    return argv + ["-m", "bench.distributed", cfg_path, run_dir] + (["--quiet"] if quiet else [])


def launch(cfg: RunConfig, nproc: int, quiet: bool) -> tuple[Report, int]:
    """Run torchrun and return (merged report, torchrun's exit code)."""
    check_nproc(cfg, nproc)
    run_dir = tempfile.mkdtemp(prefix="bench-dist-")
    try:
        cfg_path = os.path.join(run_dir, "config.json")
        Path(cfg_path).write_text(json.dumps(asdict(cfg)), encoding="utf-8")
        code = run_torchrun(torchrun_argv(cfg, nproc, cfg_path, run_dir, quiet)[3:])
        world = nproc * cfg.nnodes
        return merge(collect(run_dir, world), world, cfg, code), code
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def run_torchrun(args: list[str]) -> int:
    """torchrun's own entry point, in this process (its agent starts the workers), so that a failed
    worker comes back as an exit code here rather than as torchrun's traceback."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    try:
        run(get_args_parser().parse_args(args))
    except ChildFailedError:
        return 1
    except (KeyboardInterrupt, SignalException):
        return 130
    return 0


def _rank_entry(data: dict):
    report = report_from_data(data["report"], f"rank {data['rank']['rank']}")
    r = data["rank"]
    bad = [f"{x.workload}: {x.error}" for x in report.results if x.status != "ok"]
    return report, RankStatus(r["rank"], report.status, "; ".join(bad) or None, r["local_rank"], r["host"])


def collect(run_dir: str, world: int) -> dict[int, tuple | None]:
    """Every rank's (report, status): rank 0's gathered set if it exists, else the rank files here."""
    gathered = Path(run_dir, "gathered.json")
    if gathered.exists():
        entries = [json.loads(x) for x in json.loads(gathered.read_text(encoding="utf-8"))["ranks"]]
    else:
        entries = [json.loads(p.read_text(encoding="utf-8")) for p in Path(run_dir).glob("rank*.json")]
    out: dict[int, tuple | None] = {r: None for r in range(world)}
    for e in entries:
        out[e["rank"]["rank"]] = _rank_entry(e)
    return out


def merge(by_rank: dict[int, tuple | None], world: int, cfg: RunConfig, exit_code: int) -> Report:
    """One report: rank 0's (or the lowest present) as the frame, every rank's results attached."""
    if not any(v is not None for v in by_rank.values()):
        from bench.core.errors import BenchError

        raise BenchError(f"no rank reported back (torchrun exited {exit_code}); see the output above")
    merged = Report.merge_ranks(by_rank, world, cfg.nnodes, DIST_BACKENDS[cfg.device], exit_code)
    for res in merged.results:
        res.metrics = recompute(res)
    return merged


# ---- the worker, one per rank, started by torchrun --------------------------------------------------

def worker_main(argv: list[str]) -> int:
    import torch.distributed as dist

    from bench.backends import make_backend
    from bench.cli import raise_interrupt
    from bench.registry import load_workloads
    from bench.report.terminal import RichProgress
    from bench.runner import NullProgress, run_workloads
    from bench.model.io import write_atomic

    cfg_path, run_dir, quiet = argv[0], argv[1], "--quiet" in argv
    cfg = RunConfig(**json.loads(Path(cfg_path).read_text(encoding="utf-8")))
    rank, local, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    signal.signal(signal.SIGTERM, raise_interrupt)
    if cfg.device == "cpu" and not cfg.threads:
        cfg.threads = max(1, len(os.sched_getaffinity(0)) // local_world)
    backend = make_backend(cfg, local)
    backend.rank, backend.world_size = rank, world
    if cfg.device == "hpu":
        import habana_frameworks.torch.distributed.hccl  # noqa: F401 - registers the hccl backend
    dist.init_process_group(DIST_BACKENDS[cfg.device], timeout=timedelta(seconds=cfg.dist_timeout_s))
    progress = RichProgress(_stderr_console()) if rank == 0 and not quiet else NullProgress()
    report = run_workloads(cfg, load_workloads(cfg.workloads), backend, progress)
    entry = json.dumps({"rank": {"rank": rank, "local_rank": local, "host": report.environment.host.get("hostname")},
                        "report": report.to_json()})
    write_atomic(Path(run_dir, f"rank{rank}.json"), entry)
    if report.status != "ok":
        os._exit(1)  # no collective after a failure: torchrun stops the group, nothing waits forever
    gathered = [None] * world if rank == 0 else None
    dist.gather_object(entry, gathered, dst=0)  # JSON text, not objects
    if rank == 0:
        write_atomic(Path(run_dir, "gathered.json"), json.dumps({"ranks": gathered}))
    dist.destroy_process_group()
    return 0


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False, width=160)


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
