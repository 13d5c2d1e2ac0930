"""Several devices through PyTorch's own launcher (torch.distributed.run, i.e. torchrun).

Each repeat of each workload is one torchrun group of --nproc workers per node (`--scaling` runs one
report per world size). Every rank times its own steps and writes its own event file; after a
successful repeat rank 0 also gathers every rank's result (JSON bytes through an all-gather, never
pickles), which is how a multi-node run's ranks reach node 0. A rank that fails exits at once
without a collective, so torchrun stops the group instead of leaving the others waiting; the
process-group timeout bounds a hang.
"""

from __future__ import annotations

import json
import os
import subprocess

from bench.core.proc import Tree, child_env, python_argv
from bench.launch.config import RunConfig
from bench.launch.events import EventReader
from bench.launch.runners import watch


def awaited(cfg: RunConfig) -> str | None:
    """Who a multi-node repeat waits for, and for how long: said before each run starts."""
    c = cfg.launch
    if c.nnodes < 2 or not c.rdzv_endpoint:
        return None
    if c.node_rank == 0:
        others = ", ".join(map(str, range(1, c.nnodes)))
        return f"node 0 waits up to {c.dist_timeout:g} s at {c.rdzv_endpoint} for node(s) {others} to join"
    return f"node {c.node_rank} joins node 0 at {c.rdzv_endpoint} (waiting up to {c.dist_timeout:g} s for it)"


def torchrun_argv(cfg: RunConfig, job_path: str) -> list[str]:
    c = cfg.launch
    argv = [*python_argv("-m", "torch.distributed.run"), f"--nproc-per-node={c.nproc}", f"--nnodes={c.nnodes}",
            f"--node-rank={c.node_rank}", "--max-restarts=0"]
    if c.rdzv_endpoint:
        # static rendezvous: --node-rank is honoured, so global rank 0 (which gathers and whose node
        # writes the report) runs on node 0; c10d would hand out ranks in join order
        argv += ["--rdzv-backend=static", f"--rdzv-endpoint={c.rdzv_endpoint}",
                 # the wait for the other nodes is bounded as a collective is (torch's default: 600 s);
                 # static_tcp_rendezvous reads `timeout` (seconds) from --rdzv-conf
                 f"--rdzv-conf=timeout={max(1, round(c.dist_timeout))}"]
    else:
        argv += ["--standalone"]
    return argv + ["-m", "bench.launch.worker", job_path]


class TorchrunRunner:
    kind = "torchrun"

    def __init__(self, run_dir: str, on_event, env: dict | None = None):
        self.run_dir, self.on_event, self.env = run_dir, on_event, env or {}

    def run(self, job: dict) -> list[dict]:
        cfg = RunConfig.from_json(job["config"])
        stem = os.path.join(self.run_dir, f"{job['workload']}-{job['repeat']}")
        job = {**job, "events": stem + ".rank{rank}.events"}
        with open(stem + ".job", "w", encoding="utf-8") as fh:
            json.dump(job, fh)
        first = cfg.launch.node_rank * cfg.launch.nproc
        readers = [EventReader(job["events"].replace("{rank}", str(r))) for r in range(first, first + cfg.launch.nproc)]
        env = child_env({"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **self.env})  # torchrun's default
        tree = Tree()  # torchrun, its agents, its workers and whatever they start
        with open(stem + ".log", "wb") as log:
            proc = subprocess.Popen(torchrun_argv(cfg, stem + ".job"), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=tree.env(env))
        try:
            return watch(proc, readers, self.on_event, stem + ".log")
        finally:
            tree.end()  # none of it outlives the repeat, also what left torchrun's session
