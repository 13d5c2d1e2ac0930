"""A short check of bench on a real device: is what bench measures right there?

    PYTHONPATH=. python benchmarks/device_check.py --device cuda          # at most ~4 minutes
    PYTHONPATH=. python benchmarks/device_check.py --device hpu
    PYTHONPATH=. python benchmarks/device_check.py --device cpu --quick   # under a minute

For the seed preset of each workload in fp32 and, where the device has it, bf16:
  bench/plain  throughput of bench's measured loop (a sync and a clock read around every step) over a
               plain loop of the same steps timed as a whole (interleaved rounds, median ratio):
               near 1.00 means the per-step syncs cost nothing worth mentioning;
  sampler      step-time cost of the telemetry sampler running rather than frozen (SIGSTOP),
               adjacent steps paired;
  util / power device utilization during the measured steps, and power there against an idle
               second before them; energy: what the in-process counter read over the steps;
  parity       the workload's output fingerprint against the same computed on the CPU;
  blender-serve the serving engine's tokens/s (a sync, a clock read and an event per token every
               step) over its executor stepped in a plain loop (serve_check).
It runs from a plain checkout, bench itself not installed, on an offline image
(`PYTHONPATH=. python -S benchmarks/device_check.py` works too, with the directory that holds the
packages below on PYTHONPATH). It needs torch, transformers, psutil, rich and pydantic — pydantic
checks bench's options and reports and brings a compiled part, `pydantic-core`, as a wheel for the
platform, with `annotated-types`, `typing-extensions` and `typing-inspection`; `pip install
"pydantic>=2.11"` installs them all — and nvidia-ml-py or habana-pyhlml for telemetry.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import pydantic  # noqa: F401 - bench checks its options and reports with it
except ImportError:
    sys.exit("benchmarks/device_check.py needs pydantic: pip install 'pydantic>=2.11' (see its docstring)")

from bench.devices import registry as devices  # noqa: E402
from bench.devices.options import DeviceOptions  # noqa: E402
from bench.measure.runner import Measurement, timed_step  # noqa: E402
from bench.measure.sampler import Sampler  # noqa: E402
from bench.model.parity import disagreement  # noqa: E402
from workloads import registry as workloads  # noqa: E402
from workloads.common import CommonOptions  # noqa: E402


def build(device: str, name: str, preset: str, precision: str, cpu_backend=None):
    spec = devices.spec(device)
    own = spec.options.build({}) if spec.options else None
    backend = cpu_backend or devices.make_backend(device, DeviceOptions(device=device), own)
    cls = workloads.load(name)
    common = CommonOptions.build({"precision": precision}, preset)
    wl = cls(common, cls.Options.build({}, preset), backend)
    return wl, backend


def plain_rate(wl, backend, steps: int) -> float:
    backend.synchronize()
    t0 = time.perf_counter()
    samples = sum(wl.step().samples for _ in range(steps))
    backend.synchronize()
    return samples / (time.perf_counter() - t0)


def bench_rate(wl, backend, steps: int, tokens: bool = False) -> float:
    """Samples (or tokens) per second of bench's own measured loop."""
    from bench.measure.options import MeasureOptions

    m = Measurement(wl, backend, MeasureOptions(steps=steps, warmup=0))
    m._steps()
    r = m.repeat
    return sum(r.step_tokens if tokens else r.step_samples) / sum(r.step_times_s)


def sampler_pairs(wl, backend, sampler: Sampler, pairs: int) -> float:
    """Mean step-time ratio, sampler running over sampler frozen, over adjacent steps."""
    ratios = []
    for _ in range(pairs):
        os.kill(sampler.proc.pid, signal.SIGSTOP)
        _, frozen = timed_step(wl, backend)
        os.kill(sampler.proc.pid, signal.SIGCONT)
        _, running = timed_step(wl, backend)
        ratios.append(running / frozen)
    return statistics.mean(ratios)


def telemetry(samples, start: float, end: float, prefixes) -> dict:
    def mean(metric, a, b):
        vals = [s[f"{p}.{metric}"] for s in samples for p in prefixes if a <= s["t"] <= b
                and isinstance(s.get(f"{p}.{metric}"), int | float)]
        return statistics.mean(vals) if vals else None

    return {"util": mean("util_percent", start, end), "power": mean("power_w", start, end),
            "idle_power": mean("power_w", start - 1.2, start - 0.1)}


def check(device, name, precision, args, cpu) -> dict:
    t_start = time.monotonic()
    wl, backend = build(device, name, args.preset, precision)
    wl.setup()
    for _ in range(args.warmup):
        timed_step(wl, backend)
    row = {"workload": name, "precision": precision}
    ratios = [bench_rate(wl, backend, args.steps) / plain_rate(wl, backend, args.steps) for _ in range(args.rounds)]
    row["bench/plain"] = statistics.median(ratios)
    t0 = time.monotonic_ns()
    sampler = Sampler(10, t0).start([{"name": "host", "pid": os.getpid()},
                                     *[{**s, "own_pid": os.getpid()} for s in backend.collector_specs()
                                       if s["name"] != "host"]])
    time.sleep(1.5)  # the sampler starts; the device idles: its idle power
    meter = backend.energy_meter()
    backend.synchronize()
    e0, a = (meter() if meter else None), (time.monotonic_ns() - t0) / 1e9
    row["sampler"] = sampler_pairs(wl, backend, sampler, args.pairs) - 1
    tokens = wl.main_metric == "tokens_per_s"
    rate = bench_rate(wl, backend, args.steps, tokens)
    backend.synchronize()
    e1, b = (meter() if meter else None), (time.monotonic_ns() - t0) / 1e9
    status, samples, _ = sampler.stop()
    prefixes = sorted({k.split(".")[0] for s in samples for k in s if k.endswith(".util_percent")})
    row.update(telemetry(samples, a, b, prefixes))
    row["energy_j"] = (e1 - e0) if e0 is not None and e1 is not None else None
    row["rate"], row["unit"] = rate, "tokens/s" if tokens else "samples/s"
    fingerprint, _ = wl.verify()
    wl.teardown()
    ref, _ = reference(name, precision, args, cpu)
    row["parity"] = "n/a" if fingerprint is None else (disagreement(ref, fingerprint) or "same")
    row["collectors"] = ", ".join(f"{k}: {v.get('source') or v.get('reason')}" for k, v in status.items())
    row["seconds"] = time.monotonic() - t_start
    return row


def reference(name, precision, args, cpu):
    """The fingerprint computed on the CPU, fp32 where the CPU would take too long in bf16."""
    wl, _ = build("cpu", name, args.preset, precision, cpu_backend=cpu)
    wl.setup()
    try:
        return wl.verify()
    finally:
        wl.teardown()


def serve_check(device, precision, args) -> dict:
    """blender-serve: the engine's tokens per second, closed-loop full batches with a device sync and
    a clock read after every step and one event per token, over the executor stepped in a plain loop
    (the same steps, timed as a whole; interleaved rounds, median ratio): near 1.00 means stamping
    each token costs nothing worth mentioning."""
    from bench.serve.blender import BlenderExecutor

    t_start = time.monotonic()
    wl, backend = build(device, "blender-serve", args.preset, precision)
    wl.setup()
    ex = BlenderExecutor(wl.model, backend, max_rows=len(wl.warm_prompts), max_source=wl.common.context_len,
                         max_tokens=wl.common.new_tokens, precision=precision)
    ex.warmup()
    batch = ([tuple(p[: ex.max_source]) for p in wl.warm_prompts], wl.common.new_tokens)
    for i in range(args.warmup):
        _engine_rate(ex, backend, *batch, f"w{i}"), _plain_rate(ex, backend, *batch, f"v{i}")
    ratios = [_engine_rate(ex, backend, *batch, f"e{i}") / _plain_rate(ex, backend, *batch, f"p{i}")
              for i in range(args.rounds)]
    rate = _engine_rate(ex, backend, *batch, "last")
    wl.teardown()
    return {"workload": "blender-serve", "precision": precision, "rate": rate, "unit": "tokens/s",
            "bench/plain": statistics.median(ratios), "sampler": None, "util": None, "power": None,
            "idle_power": None, "energy_j": None, "parity": "n/a", "collectors": "—",
            "seconds": time.monotonic() - t_start}


def _engine_rate(ex, backend, prompts, k: int, tag: str) -> float:
    """Tokens per second of one full batch through the engine (sync, clock read and events every step)."""
    from bench.serve.engine import Engine
    from bench.serve.protocol import GenRequest

    engine = Engine(ex, time.perf_counter, sync=backend.synchronize, max_batch=len(prompts))
    for j, prompt in enumerate(prompts):
        engine.submit(GenRequest(f"{tag}-{j}", prompt, k, k))
    t0, tokens = time.perf_counter(), 0
    while engine.running or engine.waiting:
        tokens += engine.step().rows
    backend.synchronize()
    return tokens / (time.perf_counter() - t0)


def _plain_rate(ex, backend, prompts, k: int, tag: str) -> float:
    """The same steps of the executor in a plain loop, timed as a whole."""
    from bench.serve.protocol import GenRequest

    backend.synchronize()
    t0 = time.perf_counter()
    ex.step([GenRequest(f"{tag}-{j}", prompt, k, k) for j, prompt in enumerate(prompts)])
    for _ in range(k - 1):
        ex.step([])
    ex.drop([f"{tag}-{j}" for j in range(len(prompts))])
    backend.synchronize()
    return len(prompts) * k / (time.perf_counter() - t0)


def print_table(rows) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench device check ({len(rows)} checks)", title_justify="left")
    for col in ("workload", "prec", "throughput", "bench/plain", "sampler", "util %", "power W (idle)",
                "energy J", "parity", "s"):
        table.add_column(col)

    def fmt(v, spec):
        return "—" if v is None else format(v, spec)

    for r in rows:
        table.add_row(r["workload"], r["precision"], f"{r['rate']:,.1f} {r['unit']}", fmt(r["bench/plain"], ".3f"),
                      fmt(r["sampler"], "+.1%"), fmt(r["util"], ".0f"),
                      f"{fmt(r['power'], '.0f')} ({fmt(r['idle_power'], '.0f')})", fmt(r["energy_j"], ".1f"),
                      r["parity"] if len(r["parity"]) < 40 else r["parity"][:37] + "...", f"{r['seconds']:.0f}")
    Console(width=160).print(table)
    print("telemetry:", rows[0]["collectors"] if rows else "—")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="the tiny preset and few steps (a smoke test)")
    p.add_argument("--budget", type=float, default=240.0, help="seconds; checks past it are skipped, said so")
    args = p.parse_args(argv)
    args.preset = "tiny" if args.quick else "seed"
    args.steps, args.rounds, args.pairs, args.warmup = (4, 3, 6, 2) if args.quick else (6, 3, 10, 3)
    device = devices.detect() if args.device == "auto" else args.device
    spec = devices.require(device)
    cpu = devices.make_backend("cpu", DeviceOptions(device="cpu"))
    rows, start = [], time.monotonic()
    for precision in [p for p in ("fp32", "bf16") if p in spec.precisions]:
        for name in workloads.available():
            if time.monotonic() - start > args.budget:
                print(f"skipped {name} {precision}: past the {args.budget:.0f} s budget")
                continue
            try:
                serves = workloads.load(name).serves
                rows.append(serve_check(device, precision, args) if serves else check(device, name, precision, args, cpu))
            except Exception as exc:  # noqa: BLE001 - one failing check does not hide the others
                print(f"{name} {precision}: {type(exc).__name__}: {exc}")
    print_table(rows)
    print(f"device: {device}; preset {args.preset}; {time.monotonic() - start:.0f} s in all")
    return 0 if rows and all(r["parity"] in ("same", "n/a") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
