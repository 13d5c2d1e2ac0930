"""Continuous against static batching on the same arrivals, in one process, side by side.

For each offered rate, the same seeded Poisson arrivals and prompts (blender-serve's, at --preset)
are served by the in-process engine with `--batching continuous` and with `--batching static`, the
two alternating for --rounds rounds; the table gives each policy's median over the rounds of TTFT
p50, TTFT p99 and end-to-end p99 (latency from the scheduled arrival), the achieved rate, and the
ratio static / continuous. One model and one warmed executor serve every session.

    python benchmarks/serving_policies.py --preset tiny --qps 20,60
    python benchmarks/serving_policies.py --preset seed --qps 1,2.5 --requests 40
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from bench.devices import registry as devices
from bench.devices.options import DeviceOptions
from bench.model.report import Repeat
from bench.serve.engine import Engine
from bench.serve.maths.metrics import serving_metrics
from bench.serve.options import ServeOptions
from bench.serve.plan import ServingPlan
from bench.serve.session import InProcessClient, request_log, run_session
from bench.serve.workload import BlenderServe
from workloads.common import CommonOptions

FIGURES = (("ttft_s", "median", "TTFT p50"), ("ttft_s", "p99", "TTFT p99"), ("e2e_s", "p99", "e2e p99"))


def session(executor, backend, options, plan: ServingPlan, batching: str) -> dict:
    engine = Engine(executor, time.monotonic, batching=batching, max_batch=options.max_batch,
                    batch_wait_s=options.batch_wait_ms / 1000, sync=backend.synchronize)
    traces = run_session(plan, InProcessClient(engine, time.monotonic), time.monotonic)
    return serving_metrics([Repeat(0, requests=request_log(traces, plan.prompt_tokens))], {}, None, None)


def at_rate(plan: ServingPlan, from_qps: float, qps: float) -> ServingPlan:
    """The same arrival pattern at another rate (blender-serve's arrivals scale with the rate)."""
    return ServingPlan(tuple(a * from_qps / qps for a in plan.arrivals), plan.prompts, plan.new_tokens)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", choices=("tiny", "seed"))
    p.add_argument("--qps", default="20,60", help="offered rates, comma-separated")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    rates = [float(q) for q in args.qps.split(",")]
    backend = devices.make_backend("cpu", DeviceOptions(device="cpu", threads=args.threads))
    backend.prepare()
    options = ServeOptions.build({"qps": str(rates[0]), "requests": args.requests}, args.preset)
    wl = BlenderServe(CommonOptions.build({}, args.preset), options, backend)
    wl.setup()
    c = wl.common
    executor = wl.served.executor(max_rows=options.max_batch, max_source=c.context_len, max_tokens=c.new_tokens,
                                  precision=c.precision)
    warm = ServingPlan((0.0,) * options.max_batch, tuple(tuple(x) for x in wl.warm_prompts),
                       (c.new_tokens,) * options.max_batch)
    session(executor, backend, options, warm, "continuous")
    runs: dict[tuple[float, str], list[dict]] = {}
    started = time.monotonic()
    for _ in range(args.rounds):
        for qps in rates:
            plan = at_rate(wl.plan, rates[0], qps)
            for batching in ("continuous", "static"):
                runs.setdefault((qps, batching), []).append(session(executor, backend, options, plan, batching))
    print_table(args, rates, runs, time.monotonic() - started, backend.threads())
    return 0


def median_of(runs: list[dict], key: str, stat: str | None = None) -> float:
    return statistics.median(getattr(r[key], stat) if stat else r[key] for r in runs)


def print_table(args, rates, runs, seconds: float, threads) -> None:
    table = Table(title=f"{args.preset}: {args.requests} requests, median of {args.rounds} alternating rounds, "
                        f"{threads} thread(s), {seconds:.0f} s")
    for col in ("qps", "batching", *(label for _, _, label in FIGURES), "achieved req/s"):
        table.add_column(col, justify="right")
    for qps in rates:
        cont, stat = runs[(qps, "continuous")], runs[(qps, "static")]
        for name, rs in (("continuous", cont), ("static", stat)):
            cells = [f"{median_of(rs, k, s) * 1000:.1f} ms" for k, s, _ in FIGURES]
            table.add_row(f"{qps:g}", name, *cells, f"{median_of(rs, 'achieved_qps'):.2f}")
        ratios = [f"{median_of(stat, k, s) / median_of(cont, k, s):.2f}x" for k, s, _ in FIGURES]
        table.add_row(f"{qps:g}", "static / cont.", *ratios, "")
    Console(width=140).print(table)


if __name__ == "__main__":
    sys.exit(main())
