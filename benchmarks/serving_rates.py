"""Are the serving rates unbiased at every session size? Simulated open-loop sessions on a virtual clock.

Each session draws n arrivals as bench's load generator does (bench/serve/arrivals.py: a seeded
Poisson process, rescaled so that the last of n lands at n / q — the default — or kept as drawn), and a
server that keeps up serves them one at a time (a single-server queue: a request completes at
max(its arrival, the previous completion) + its service time, drawn exponential with a 1 ms mean, so
that some requests miss a 1 ms TTFT SLO). Its achieved rate and interval, and goodput, are computed by
the serving maths the run uses (bench/serve/maths/metrics.py). Over many sessions per size: the mean
achieved rate against the offered rate, how often the interval covers the offered rate, and whether
goodput ever exceeded achieved. (A server's own latency is a real effect, not the estimator's: the
last request's latency L lowers a rate over the session by about L q / n.)

    python benchmarks/serving_rates.py [--sessions 1000] [--sizes 5,10,20,50,100,200,500] [--qps 2]
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._scriptkit import parse, run
from bench.core.options import Options, opt
from bench.serve.arrivals import Load, open_arrivals
from bench.model.report import Repeat, RequestLog
from bench.serve.maths.metrics import Session, achieved_interval, counting, rates, sessions, slo_verdict

SERVICE_S = 0.001  # a server that keeps up: a request takes 1 ms on average alone
SLO_S = 0.001


def session(n: int, qps: float, seed: int, as_drawn: bool, warmup: int = 0) -> tuple[Session, dict]:
    """n measured requests after `warmup` served but not measured, through the request log a run writes."""
    offsets = open_arrivals(Load("poisson"), qps, n + warmup, seed, as_drawn=as_drawn)
    service = random.Random(f"service-{seed}")
    done_at, finish = 0.0, []
    for a in offsets:
        done_at = max(a, done_at) + service.expovariate(1 / SERVICE_S)
        finish.append(done_at)
    k = len(offsets)
    log = RequestLog(arrival_s=list(offsets), start_s=[None] * k, first_token_s=finish, finish_s=finish,
                     prompt_tokens=[3] * k, new_tokens=[1] * k, batch=[None] * k, token_s=[[f] for f in finish],
                     sent_s=list(offsets), error=[None] * k, measured=[i >= warmup for i in range(k)],
                     session_start_s=0.0)
    [s] = sessions([Repeat(0, requests=log)])
    return s, {"load": "poisson", "rescaled": not as_drawn, "qps": qps}


@dataclass(frozen=True)
class Row:
    n: int
    mode: str
    mean_ratio: float  # mean achieved / offered
    stderr: float  # its standard error over the sessions
    coverage: float  # share of intervals covering the offered rate
    goodput_above: int  # sessions whose goodput exceeded their achieved rate


def simulate(n: int, count: int, qps: float, as_drawn: bool, warmup: int = 0) -> Row:
    ratios, covered, above = [], 0, 0
    for seed in range(count):
        s, params = session(n, qps, seed, as_drawn, warmup)
        how = counting(params)
        interval = achieved_interval([s], how)
        verdict = slo_verdict([s], {"ttft": SLO_S})
        goodput = rates([s], verdict, how)["goodput_rps"]
        ratios.append(interval.value / qps)
        covered += interval.ci_low <= qps <= interval.ci_high
        above += goodput > interval.value
    mean = sum(ratios) / len(ratios)
    sd = (sum((x - mean) ** 2 for x in ratios) / (len(ratios) - 1)) ** 0.5
    mode = ("as drawn" if as_drawn else "rescaled") + (f", {warmup} warm-up" if warmup else "")
    return Row(n, mode, mean, sd / len(ratios) ** 0.5, covered / count, above)


def table(count: int, sizes: tuple[int, ...], qps: float) -> list[Row]:
    """Each size as drawn and rescaled, then with a fifth as many warm-up requests before the measured ones."""
    return [simulate(n, count, qps, drawn, n // 5 * warm) for warm in (0, 1) for drawn in (True, False)
            for n in sizes]


@dataclass(frozen=True)
class RatesOptions(Options):
    title = "serving rates"
    sessions: int = opt(1000, "simulated sessions per size and mode", minimum=10, maximum=100_000)
    sizes: tuple[int, ...] = opt((5, 10, 20, 50, 100, 200, 500), "session sizes (requests)", minimum=2,
                                 maximum=100_000)
    qps: float = opt(2.0, "offered rate, requests per second", exclusive_minimum=0, maximum=10_000)


def report(o: RatesOptions) -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{o.sessions} simulated sessions per size, offered {o.qps:g}/s, service {SERVICE_S * 1e3:g} ms "
                    "(exponential)")
    for col in ("arrivals", "n", "mean achieved / offered", "± s.e.", "interval covers offered", "goodput > achieved"):
        t.add_column(col, justify="right")
    for row in table(o.sessions, o.sizes, o.qps):
        t.add_row(row.mode, str(row.n), f"{row.mean_ratio:.4f}", f"{row.stderr:.4f}", f"{row.coverage:.1%}",
                  str(row.goodput_above))
    Console(width=120).print(t)
    return 0


def main(argv=None) -> int:
    return run(lambda: report(parse(RatesOptions, argv, __doc__)))


if __name__ == "__main__":
    sys.exit(main())
