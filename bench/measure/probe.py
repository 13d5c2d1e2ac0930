"""The host's own speed: a fixed CPU kernel timed just before each repeat's measured steps.

Two runs of one command on one machine 12 s apart were measured 1.25-1.30x apart while every repeat
inside each agreed, the worker had its full CPU time and no other process or steal was seen: the
machine itself was slower (a virtual machine's vCPUs moved onto busier or slower cores). The
workload's figures cannot tell that from a real difference; the same fixed kernel, timed on the host
in every repeat, can (bench/analysis/verdicts.py withholds a verdict when it moved)."""

from __future__ import annotations

import statistics
import time

SIZE, INNER, WARM, ROUNDS = 256, 20, 3, 15  # rounds of 20 fp32 256x256 matmuls: ~60 ms in all on two cores


def host_speed_s() -> float | None:
    """Median seconds of one round of the reference kernel, with the worker's own torch threads
    (None where it cannot run)."""
    try:
        import torch

        a = torch.full((SIZE, SIZE), 0.5)
        b = torch.eye(SIZE)
        times = []
        for _ in range(WARM + ROUNDS):  # the first rounds: allocation, kernel choice, clocks ramping up
            t0 = time.perf_counter()
            for _ in range(INNER):
                a @ b
            times.append(time.perf_counter() - t0)
        return statistics.median(times[WARM:])
    except Exception:  # noqa: BLE001 - a probe that cannot run leaves the verdict to the other checks
        return None
