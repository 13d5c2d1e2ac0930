"""The host's own speed: a fixed CPU kernel timed around each repeat's measured steps.

Two runs of one command on one machine 12 s apart were measured 1.25-1.30x apart while every repeat
inside each agreed, the worker had its full CPU time and no other process or steal was seen: the
machine itself was slower for a while. Timed side by side on that 2-vCPU VM, a tiny fine-tune step
moved between two levels (9.1 and 11.6 ms at the median, 1.29x) and so did 200 chained small matrix
products on the worker's threads (1.26 and 2.28 ms) — correlation +0.89 over 1738 rounds — while a
large matmul (+0.55, 7 % spread), a pure-Python loop (+0.07) and a memory sweep (-0.75) did not
follow it. The state is in how fast the threads hand small pieces of work to each other, which no
process-level count shows. The workload's figures cannot tell that from a real difference; this
kernel can (bench/analysis/verdicts.py withholds a verdict when it moved)."""

from __future__ import annotations

import statistics
import time

SIZE, CHAIN, WARM, ROUNDS = 64, 200, 3, 15  # ~1.3 ms a round on two quiet cores; ~25 ms in all


def host_speed_s() -> float | None:
    """Median seconds of one round of the reference kernel (a chain of small matrix products on the
    worker's own torch threads); None where it cannot run."""
    try:
        import torch

        x0 = torch.full((SIZE, SIZE), 0.5)
        w = torch.eye(SIZE)
        times = []
        for _ in range(WARM + ROUNDS):  # the first rounds: allocation, kernel choice, clocks ramping up
            x = x0
            t0 = time.perf_counter()
            for _ in range(CHAIN):
                x = torch.addmm(w, x, w, beta=0.5, alpha=0.001)
            times.append(time.perf_counter() - t0)
        return statistics.median(times[WARM:])
    except Exception:  # noqa: BLE001 - a probe that cannot run leaves the verdict to the other checks
        return None
