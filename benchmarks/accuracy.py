"""bench's timed loop vs a plain hand-written loop, and the sampler's overhead, interleaved.

    python benchmarks/accuracy.py --preset tiny --rounds 15 --steps 40
    python benchmarks/accuracy.py --preset seed --rounds 4 --steps 4
    python benchmarks/accuracy.py --preset tiny --pairs 400     # adjacent-step pairs: less drift
    python benchmarks/accuracy.py --preset tiny --sampler-pairs 400

Each round runs, in rotating order on the same model, optimizer and batches:
  bench        the runner's measured loop (sync + clock around every step), sampler off
  bench+10Hz   the same with the telemetry sampler process at 10 Hz
  plain        `for batch: loss = model(**batch).loss; backward; step; zero_grad`, one clock around it
and prints the median over rounds of each throughput and of the per-round ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.backends import make_backend
from bench.config import RunConfig
from bench.runner import Measurement, NullProgress, PhaseLog
from bench.telemetry.sampler import Sampler
from workloads.blender_finetune import BlenderFinetune


def bench_loop(wl, backend, cfg, hz: float) -> float:
    t0 = time.monotonic_ns()
    m = Measurement(wl, backend, cfg, PhaseLog(t0), NullProgress())
    sampler = Sampler(backend.collector_specs(), hz, t0).start() if hz else None
    if sampler:
        time.sleep(0.5)  # let the child start, as it does during setup in a real run
    m._measure()
    if sampler:
        sampler.stop()
    t = m.result["timing"]
    return sum(t["step_samples"]) / sum(t["step_times_s"])


def plain_loop(wl, steps: int) -> float:
    model, opt, batches = wl.model, wl.optimizer, wl.batches
    start = time.perf_counter()
    for i in range(steps):
        loss = model(**batches[i % len(batches)]["inputs"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * wl.cfg.batch_size / (time.perf_counter() - start)


def paired_steps(wl, backend, pairs: int) -> list[float]:
    """Adjacent steps alternate between bench's timed_step and a plain step timed by hand, so slow
    drifts of a shared machine cancel: per-pair ratio of plain time over bench time."""
    from bench.runner import timed_step

    model, opt, batches = wl.model, wl.optimizer, wl.batches
    ratios = []
    for i in range(pairs):
        _, bench_s = timed_step(wl, backend)
        start = time.perf_counter()
        loss = model(**batches[(wl.i + i) % len(batches)]["inputs"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        plain_s = time.perf_counter() - start
        ratios.append(plain_s / bench_s)  # throughput ratio bench / plain
    return ratios


def sampler_pairs(wl, backend, pairs: int, hz: float) -> tuple[float, float]:
    """Adjacent steps with the sampler process running (SIGCONT) and frozen (SIGSTOP): mean step
    time with it over mean step time without it, and the same for medians."""
    import os
    import signal

    from bench.runner import timed_step

    sampler = Sampler(backend.collector_specs(), hz, time.monotonic_ns()).start()
    time.sleep(1.0)
    on, off = [], []
    try:
        for _ in range(pairs):
            os.kill(sampler.proc.pid, signal.SIGCONT)
            on.append(timed_step(wl, backend)[1])
            os.kill(sampler.proc.pid, signal.SIGSTOP)
            off.append(timed_step(wl, backend)[1])
    finally:
        os.kill(sampler.proc.pid, signal.SIGCONT)
        sampler.stop()
    return statistics.mean(on) / statistics.mean(off), statistics.median(on) / statistics.median(off)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--pairs", type=int, default=0, help="instead: this many adjacent bench/plain step pairs")
    ap.add_argument("--sampler-pairs", type=int, default=0,
                    help="instead: this many adjacent step pairs with the sampler running / frozen")
    args = ap.parse_args()
    cfg = RunConfig(device="cpu", preset=args.preset, steps=args.steps, warmup=0, sample_hz=0).resolved()
    backend = make_backend(cfg)
    wl = BlenderFinetune(cfg, backend)
    wl.setup()
    for _ in range(3):
        wl.step()  # warm-up
    if args.sampler_pairs:
        mean_r, median_r = sampler_pairs(wl, backend, args.sampler_pairs, 10)
        print(f"preset {args.preset}, {args.sampler_pairs} step pairs, sampler at 10 Hz running vs frozen: "
              f"step time ratio mean {mean_r:.4f}, median {median_r:.4f}")
        return
    if args.pairs:
        r = paired_steps(wl, backend, args.pairs)
        q = statistics.quantiles(r, n=4)
        print(f"preset {args.preset}, {args.pairs} adjacent step pairs: bench/plain throughput "
              f"median {statistics.median(r):.4f} (IQR {q[0]:.4f}-{q[2]:.4f})")
        return
    runs = {"bench": lambda: bench_loop(wl, backend, cfg, 0), "bench+10Hz": lambda: bench_loop(wl, backend, cfg, 10),
            "plain": lambda: plain_loop(wl, args.steps)}
    names = list(runs)
    results = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % 3:] + names[:r % 3]
        for n in order:
            results[n].append(runs[n]())
    print(f"preset {args.preset}, {args.rounds} rounds x {args.steps} steps, threads {backend.torch.get_num_threads()}")
    for n in names:
        print(f"  {n:11s} median {statistics.median(results[n]):10.3f} samples/s")
    for a, b in (("bench", "plain"), ("bench+10Hz", "bench")):
        ratios = [x / y for x, y in zip(results[a], results[b])]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"  {a} / {b}: median ratio {statistics.median(ratios):.4f} (IQR {q[0]:.4f}-{q[2]:.4f})")


if __name__ == "__main__":
    main()
