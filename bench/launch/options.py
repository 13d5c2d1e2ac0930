"""How a run is launched (one device, several through torchrun) and where its report goes."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import ConfigError
from bench.core.options import Options, opt

MAX_SCALING = 16  # world sizes one --scaling run may try


@dataclass(frozen=True)
class LaunchOptions(Options):
    title = "several devices (through torchrun), and process isolation"
    description = ("Each repeat of each workload runs in a fresh process: one worker on one device, or with "
                   "--nproc a torchrun group of workers. --scaling runs every world size (one report each), "
                   "every repeat of each as its own group.")

    nproc: int = opt(1, "workers on this node, one per device (gloo on cpu, nccl on cuda, hccl on hpu)",
                     minimum=1, maximum=1024)
    nnodes: int = opt(1, "machines taking part", minimum=1, maximum=4096)
    node_rank: int = opt(0, "this machine's rank among --nnodes", minimum=0, maximum=4095)
    rdzv_endpoint: str | None = opt(None, "rendezvous on node 0, for --nnodes above 1", metavar="HOST:PORT")
    scaling: tuple[int, ...] | None = opt(None, "run at each world size (e.g. 1,2,4,8) and report scaling efficiency",
                                          minimum=1, maximum=1024, max_items=MAX_SCALING)
    dist_timeout: float = opt(300.0, "bound on any collective and on the wait for the other nodes of --nnodes: a hung "
                                     "rank or a node that never comes fails the run, named, instead of hanging it",
                              minimum=1, maximum=86_400, metavar="SECONDS")
    in_process: bool = opt(False, "run every repeat in this process (debugging, profiling): faster to start, but "
                                  "the repeats share one process, so the run-to-run variance they show is "
                                  "understated (the report says so)")

    def check(self) -> None:
        if self.node_rank >= self.nnodes:
            raise ConfigError(f"--node-rank: must be between 0 and --nnodes - 1, got {self.node_rank}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ConfigError("--rdzv-endpoint: needed with --nnodes above 1 (HOST:PORT of node 0)")
        if self.rdzv_endpoint is not None:
            host, sep, port = self.rdzv_endpoint.rpartition(":")
            if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
                raise ConfigError(f"--rdzv-endpoint: expected HOST:PORT with a port 1-65535, got {self.rdzv_endpoint!r}")
        if self.in_process and (self.distributed or self.scaling):
            raise ConfigError("--in-process: one process cannot hold several ranks; drop it with --nproc/--scaling")

    def check_given(self, given: frozenset[str]) -> None:
        if self.scaling:
            self.ignored(given, "nproc", "--scaling gives the world sizes to run; give one of them")
        if not self.distributed:
            for name in ("dist_timeout", "rdzv_endpoint"):
                self.ignored(given, name, "only applies to several ranks (--nproc, --nnodes or --scaling)")
        if self.nnodes == 1:
            self.ignored(given, "node_rank", "only applies with --nnodes above 1")

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or self.nnodes > 1 or bool(self.scaling)


@dataclass(frozen=True)
class OutputOptions(Options):
    title = "output"

    out: str = opt("reports", "directory for the JSON report (checked writable before anything runs)",
                   metavar="DIR")
    label: str | None = opt(None, "a name for this run in comparisons")
    quiet: bool = opt(False, "no progress or table: print only the report path")
    verbose: bool = opt(False, "every warning in full at the end (by default one line per cause, with counts: the "
                               "report holds every message)")

    def check(self) -> None:
        if self.label is not None and (not self.label.strip() or len(self.label) > 200):
            raise ConfigError("--label: give 1-200 characters")
        if self.quiet and self.verbose:
            raise ConfigError("--verbose: --quiet prints no warning at all; give one of them")
