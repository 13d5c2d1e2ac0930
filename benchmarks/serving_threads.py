"""Which thread drives the serving engine matters: engine steps of one model driven from the process's
main thread, or from a side thread (as bench serve and the in-process load generator now run it), with
the same torch threads, interleaved rounds on the same box.

On a shared 2-core box, torch's intra-op threads driven from the main thread stalled: with 2 threads the
tiny model's steps took a median 31-73 ms and a p99 of 620-680 ms from the main thread, against 6 ms and
47-54 ms from a side thread (1 thread: 5-6 ms and 12-17 ms). The session generating the load waited for
each step, and so sent its requests up to 620 ms late.

    python benchmarks/serving_threads.py [--threads 2] [--requests 400] [--rounds 2] [--preset tiny]
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._scriptkit import parse, run
from bench.core.options import Options, opt


def steps(driver: str, executor, prompts) -> list[float]:
    """Seconds of each engine step while requests trickle in (one every third step), driven from `driver`."""
    from bench.serve.engine import Engine
    from bench.serve.protocol import GenRequest

    out: list[float] = []

    def drive():
        engine = Engine(executor, time.monotonic, max_batch=8)
        for i, p in enumerate(prompts):
            engine.submit(GenRequest(f"{driver}-{i}", tuple(p[: executor.max_source]), 8, 8))
            if i % 3 == 0:
                out.append(_timed(engine.step))
        while engine.running or engine.waiting:
            out.append(_timed(engine.step))

    if driver == "main":
        drive()
    else:
        side = threading.Thread(target=drive)
        side.start()
        side.join()
    return sorted(out)


def _timed(step) -> float:
    t0 = time.perf_counter()
    step()
    return time.perf_counter() - t0


@dataclass(frozen=True)
class ThreadsOptions(Options):
    title = "serving threads"
    threads: int = opt(2, "torch intra-op threads", minimum=1, maximum=512)
    requests: int = opt(400, "requests per round", minimum=8, maximum=100_000)
    rounds: int = opt(2, "interleaved rounds of each driver", minimum=1, maximum=100)
    preset: str = opt("tiny", "the model", choices=("tiny", "seed"))


def report(o: ThreadsOptions) -> int:
    from bench.devices import registry as devices
    from bench.devices.options import DeviceOptions
    from workloads.blender_servable import BlenderServable
    from workloads.common import CommonOptions

    backend = devices.make_backend("cpu", DeviceOptions(device="cpu", threads=o.threads))
    backend.prepare()
    served = BlenderServable(CommonOptions.build({}, o.preset), backend)
    served.build()
    executor = served.executor(max_rows=8, max_source=64, max_tokens=8)
    prompts = served.prompts(o.requests, 0)
    for r in range(o.rounds):
        for driver in ("main", "side"):
            s = steps(driver, executor, prompts)
            print(f"round {r + 1} {driver} thread, {o.threads} torch thread(s): {len(s)} steps, median "
                  f"{statistics.median(s) * 1e3:.2f} ms, p90 {s[int(0.9 * len(s))] * 1e3:.2f} ms, p99 "
                  f"{s[int(0.99 * len(s))] * 1e3:.2f} ms")
    return 0


def main(argv=None) -> int:
    return run(lambda: report(parse(ThreadsOptions, argv, __doc__)))


if __name__ == "__main__":
    sys.exit(main())
