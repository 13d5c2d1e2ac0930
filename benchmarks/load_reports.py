"""How long do loading and writing reports take? The figure `bench compare` over many runs rests on.

    python benchmarks/load_reports.py                                  # 2,000 reports, this checkout
    python benchmarks/load_reports.py --against /path/to/other/checkout --rounds 5

It writes N realistic reports (four workloads of three repeats, a hundred steps each with their
samples, tokens and losses, a workload's latency figures, per-phase telemetry summaries, 300
telemetry samples of a host and an accelerator with per-core lists) through the checkout's own
`dump_report` into a folder per checkout (made once, reused), then times `load_many` over all of
them and `dumps_report` over a tenth of them, several passes, and prints the medians.

With --against, the two checkouts take turns, each in a fresh process for every round (one process
cannot import two versions of bench), and the medians of the rounds are printed with the ratio
this/other. Only ratios from one such session mean anything: the machine's load moves the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("blender-finetune", "blender-generate", "retrieval-encode", "retrieve-refine")


def make_result(m, rng: random.Random, workload: str, steps: int, samples: int):
    from bench.model.derive import core_metrics

    repeats = []
    for i in range(3):
        times = [max(1e-4, rng.gauss(0.05, 0.002)) for _ in range(steps)]
        repeats.append(m.Repeat(index=i, pid=1000 + i, setup_s=1.2, first_step_s=0.4, warmup_s=0.6,
                                step_times_s=times, step_samples=[8.0] * steps, step_tokens=[384.0] * steps,
                                wall_s=sum(times), cpu_s=sum(times) * 3.9, cpu_wall_ratio=3.9, threads=4,
                                series={"loss": [rng.uniform(2, 9) for _ in range(steps)]}))
    timing = m.Timing(repeats)
    lat = {f"{k}_s": m.Summary(n=400, mean=0.012, median=0.011, p90=0.018, p99=0.03, stdev=0.002, cv=0.17,
                               min=0.008, max=0.04) for k in ("ttft", "token_latency", "request_latency")}
    stat = {f"{src}.{key}": m.TelemetryStat(rng.uniform(0, 100), 0.0, 100.0, samples // 12)
            for src in ("host", "gpu0") for key in ("util_percent", "power_w", "mem_used_bytes", "cpu_percent")}
    return m.Result(workload=workload, status="ok", main_metric="samples_per_s", flops_per_step=3.1e9,
                    params={"model": "tiny", "parameters": 363264, "batch_size": 8, "precision": "fp32",
                            "context_len": 32, "label_len": 16},
                    timing=timing, metrics=core_metrics(timing, 3.1e9, 1e12, "datasheet"),
                    workload_metrics={**lat, "parlai.exps": 160.0, "parlai.tps": 6100.0},
                    figures=[m.FigureSpec("metrics.samples_per_s", "samples/s", "samples/s", "higher", lead=True),
                             m.FigureSpec("workload_metrics.ttft_s.median", "TTFT p50", "s", "lower")],
                    warnings=[m.ResultWarning("noisy", "step times vary (CV 6.1% > 5%): the machine may be shared")],
                    telemetry_summary={"setup": stat, "warmup": stat, "measure": stat})


def sample(rng: random.Random, t: float) -> dict:
    return {"t": t, "host.cpu_percent": rng.uniform(90, 400), "host.rss_bytes": 2.1e9 + rng.uniform(0, 1e8),
            "host.sys_cpu_percent": rng.uniform(20, 60), "host.percpu_percent": [rng.uniform(0, 100) for _ in range(8)],
            "host.steal_percent": 0.0, "host.mem_percent": 41.5, "gpu0.util_percent": rng.uniform(80, 100),
            "gpu0.mem_used_bytes": 7.4e9, "gpu0.power_w": rng.uniform(150, 300), "gpu0.energy_j": 9000.0 + t * 250,
            "gpu0.temp_c": 61.0, "gpu0.sm_clock_hz": 1.98e9, "gpu0.throttle_reasons": 0, "gpu0.processes": 1}


def make_report(m, seed: int, steps: int, samples: int):
    rng = random.Random(seed)
    results = [make_result(m, rng, w, steps, samples) for w in WORKLOADS]
    phases = [m.Phase(w, phase, 10.0 * i + j, 10.0 * i + j + 0.9, repeat=r)
              for i, w in enumerate(WORKLOADS) for r in range(3) for j, phase in enumerate(("setup", "warmup", "measure"))]
    telemetry = m.Telemetry(sample_hz=10, phases=phases, samples=[sample(rng, i * 0.1) for i in range(samples)],
                            sources={"host": m.TelemetrySource("host", "cpu"),
                                     "gpu0": m.TelemetrySource("accelerator", "cuda", 0, "NVIDIA H100", "GPU-1234")},
                            collectors={"host": m.CollectorStatus(True, "psutil"),
                                        "gpu": m.CollectorStatus(True, "nvidia-ml-py")})
    env = m.Environment(host={"hostname": "node-a", "cpus": 8, "memory_bytes": 6.4e10},
                        python={"version": "3.11.7"}, packages={"torch": "2.4.0", "transformers": "4.44.0"},
                        torch={"version": "2.4.0", "threads": 4}, env_vars={"OMP_NUM_THREADS": "4"},
                        device={"backend": "cuda", "device_name": "NVIDIA H100", "driver": "550.54"})
    return m.Report(schema_version=m.SCHEMA_VERSION, bench_version="bench", run_id=f"{seed:032x}",
                    created_at="2026-11-28T00:00:00+00:00", status="ok", label=f"run-{seed}", environment=env,
                    config={"common": {"batch_size": 8, "precision": "fp32"}}, results=results, telemetry=telemetry,
                    provenance=m.Provenance(command=["bench", "run", "--device", "cuda"], bench_version="bench"))


def generate(folder: Path, n: int, steps: int, samples: int) -> list[Path]:
    from bench.model import report as m
    from bench.model.io import dump_report

    marker = folder / "made.json"
    wanted = {"n": n, "steps": steps, "samples": samples}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return sorted(folder.glob("r-*.json"))
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("r-*.json"):
        old.unlink()
    paths = [dump_report(make_report(m, seed, steps, samples), folder / f"r-{seed:05d}.json") for seed in range(n)]
    marker.write_text(json.dumps(wanted))
    return paths


def measure(args) -> dict:
    """One process: generate (if needed), a warm-up pass, then the timed passes; medians in seconds."""
    from bench.analysis.load import load_many
    from bench.model.io import dumps_report, load_report

    folder = Path(args.dir) / Path(args.tree).resolve().name
    paths = generate(folder, args.reports, args.steps, args.samples)
    loaded, problems = load_many([str(folder / "r-*.json")])
    if problems or len(loaded) != len(paths):
        raise SystemExit(f"{len(problems)} report(s) did not load: {problems[:3]}")
    some = [load_report(p) for p in paths[:: 10]]
    loads, dumps = [], []
    for _ in range(args.passes):
        t0 = time.perf_counter()
        load_many([str(folder / "r-*.json")])
        t1 = time.perf_counter()
        for r in some:
            dumps_report(r)
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        dumps.append(t2 - t1)
    size = sum(p.stat().st_size for p in paths) / len(paths)
    return {"load_s": statistics.median(loads), "dump_s": statistics.median(dumps), "reports": len(paths),
            "dumped": len(some), "mean_bytes": size}


def child(tree: str, args) -> dict:
    cmd = [sys.executable, __file__, "--tree", tree, "--one", "--dir", args.dir, "--reports", str(args.reports),
           "--steps", str(args.steps), "--samples", str(args.samples), "--passes", str(args.passes)]
    env = {**os.environ, "PYTHONPATH": tree}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args) -> None:
    trees = {"this": str(ROOT), "other": str(Path(args.against).resolve())}
    figures: dict[str, list[dict]] = {k: [] for k in trees}
    for i in range(args.rounds):
        for name in (("this", "other") if i % 2 else ("other", "this")):  # alternate who goes first
            figures[name].append(child(trees[name], args))
        print(f"round {i + 1}/{args.rounds}: " + ", ".join(
            f"{k} load {v[-1]['load_s']:.2f} s dump {v[-1]['dump_s']:.2f} s" for k, v in figures.items()), flush=True)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("load_s", "dump_s")} for k, v in figures.items()}
    first = figures["this"][0]
    print(f"{first['reports']} reports of {first['mean_bytes'] / 1024:.0f} KiB on average; "
          f"dump_report over {first['dumped']} of them; median of {args.rounds} rounds, each the median of "
          f"{args.passes} passes")
    for k, tree in trees.items():
        print(f"  {k:5} {tree}: load_many {med[k]['load_s']:.3f} s, dumps_report {med[k]['dump_s']:.3f} s")
    print(f"  ratio this/other: load {med['this']['load_s'] / med['other']['load_s']:.2f}, "
          f"dump {med['this']['dump_s'] / med['other']['dump_s']:.2f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reports", type=int, default=2000, help="reports to load (default 2000)")
    p.add_argument("--steps", type=int, default=100, help="measured steps per repeat (default 100)")
    p.add_argument("--samples", type=int, default=300, help="telemetry samples per report (default 300)")
    p.add_argument("--passes", type=int, default=3, help="timed passes per process (default 3)")
    p.add_argument("--rounds", type=int, default=5, help="with --against: processes per checkout (default 5)")
    p.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-load-reports"),
                   help="where the generated reports are kept, one folder per checkout")
    p.add_argument("--against", metavar="CHECKOUT", help="another checkout of bench to take turns with")
    p.add_argument("--tree", default=str(ROOT), help=argparse.SUPPRESS)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.against:
        compare(args)
        return 0
    sys.path.insert(0, args.tree)
    figures = measure(args)
    print(json.dumps(figures) if args.one else
          f"{figures['reports']} reports: load_many {figures['load_s']:.3f} s, dumps_report of "
          f"{figures['dumped']}: {figures['dump_s']:.3f} s (medians of {args.passes} passes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
