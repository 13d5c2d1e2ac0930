"""bench's blender-generate loop vs a plain `model.generate` loop timed by hand, interleaved.

    python benchmarks/generate_accuracy.py --preset seed --batch-size 1 --rounds 5 --steps 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.backends import make_backend
from bench.config import RunConfig
from bench.runner import Measurement, NullProgress, PhaseLog
from workloads.blender_generate import BlenderGenerate


def bench_loop(wl, backend, cfg) -> float:
    m = Measurement(wl, backend, cfg, PhaseLog(time.monotonic_ns()), NullProgress())
    m._measure()
    t = m.result["timing"]
    return sum(t["step_tokens"]) / sum(t["step_times_s"])


def plain_loop(wl, steps: int, new_tokens: int) -> float:
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(steps):
            inputs = wl.batches[i % len(wl.batches)]["inputs"]
            out = wl.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                    num_beams=wl.cfg.beams, do_sample=False, forced_eos_token_id=None)
            tokens += out.shape[0] * (out.shape[1] - 1)
    return tokens / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="seed")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cfg = RunConfig(device="cpu", preset=args.preset, batch_size=args.batch_size, steps=args.steps,
                    warmup=0, sample_hz=0).resolved()
    backend = make_backend(cfg)
    wl = BlenderGenerate(cfg, backend)
    wl.setup()
    for _ in range(2):
        wl.step()
    bench, plain = [], []
    for r in range(args.rounds):
        pair = [("bench", lambda: bench.append(bench_loop(wl, backend, cfg))),
                ("plain", lambda: plain.append(plain_loop(wl, args.steps, cfg.new_tokens)))]
        for _, fn in (pair if r % 2 == 0 else pair[::-1]):
            fn()
    ratios = [b / p for b, p in zip(bench, plain)]
    print(f"preset {args.preset}, batch {args.batch_size}, {args.rounds} rounds x {args.steps} requests")
    print(f"  bench median {statistics.median(bench):.2f} new tokens/s, plain median {statistics.median(plain):.2f}")
    print(f"  bench / plain median ratio {statistics.median(ratios):.4f}, per round {[round(x, 4) for x in ratios]}")


if __name__ == "__main__":
    main()
