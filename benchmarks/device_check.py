"""A short check of bench on a real device: is what bench measures right there?

    PYTHONPATH=. python benchmarks/device_check.py --device cuda          # at most ~6 minutes
    PYTHONPATH=. python benchmarks/device_check.py --device hpu
    PYTHONPATH=. python benchmarks/device_check.py --device cpu --quick   # a minute or two

For the seed preset of each workload in fp32 and, where the device has it, bf16:
  bench/plain  throughput of bench's measured loop (a sync and a clock read around every step) over a
               plain loop of the same steps timed as a whole (interleaved rounds, median ratio):
               near 1.00 means the per-step syncs cost nothing worth mentioning;
  sampler      step-time cost of the telemetry sampler running rather than frozen (SIGSTOP),
               adjacent steps paired;
  util / power device utilization during the measured steps, and power there against an idle
               second before them; energy: what the in-process counter read over the steps;
  compiles     graphs compiled during the measured steps (where the stack counts them), after warm-up;
  parity       the workload's output fingerprint against the same computed on the CPU;
  blender-serve the serving engine's tokens/s (a sync, a clock read and an event per token every
               step) over its executor stepped in a plain loop (serve_check; no telemetry row of its own).
Then once, what only the hardware settles:
  processes    NVML's process list against our PID (a container sees host PIDs: bench must say unknown,
               not contended);
  uuid         the UUID bench resolved for torch's device against `nvidia-smi -L`; on Gaudi, the card
               the bridge acquired against the one pinned;
  gather       results of odd and even lengths gathered over the device's process group on 2 ranks
               (HCCL carries a narrow set of types);
  hlml_minor   on Gaudi, the acquired card's device node against the HLML minor number of the card bench
               watches (the HLML index is another number);
  own_server   a process started apart from the run on its GPU (as a local server is) is another job
               until the run claims it, then its own (NVML: unknown, not contended, in a container);
  autocast     the dtypes bf16 autocast gives softmax, log_softmax, layer_norm and linear on the device,
               against the op lists bench records for it;
  oom          an allocation past the device's memory, and whether bench calls its error out-of-memory;
  peak         the device's name against the peak table;
  warmup       a tiny fine-tune warmed up until steady where the device counts compiles (Gaudi's mode,
               torch.compile on cuda): nothing may compile while measuring;
  served_card  (first, before this process takes the device) `bench run --engine http`: the run holds no
               device, watches the card bench serve said it acquired, and reports the utilization over the
               busy spans and the energy per request of that card;
  hpu_graphs   (first) on Gaudi, --hpu-graphs: the serving executor's decode buckets replayed while serving
               (the Python forward not run again, nothing compiled), greedy tokens as without graphs.
It fails (exit 1) on a parity mismatch, a failed check, or an accelerator row with no utilization
sample (then telemetry does not watch the card the work ran on). On Gaudi it pins a card first, as
`bench run` does. It runs from a plain checkout, bench itself not installed, on an offline image
(`PYTHONPATH=. python -S benchmarks/device_check.py` works too, with the directory that holds the
packages below on PYTHONPATH). It needs torch, transformers, psutil, rich and pydantic — pydantic
checks bench's options and reports and brings a compiled part, `pydantic-core`, as a wheel for the
platform, with `annotated-types`, `typing-extensions` and `typing-inspection`; `pip install
"pydantic>=2.11"` installs them all — and nvidia-ml-py or habana-pyhlml for telemetry.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    import pydantic  # noqa: F401 - bench checks its options and reports with it
except ImportError:
    sys.exit("benchmarks/device_check.py needs pydantic: pip install 'pydantic>=2.11' (see its docstring)")

from benchmarks._scriptkit import parse, run
from bench.core.options import Options, opt
from bench.core.proc import child_env
from bench.core.text import terminal_safe
from bench.devices import registry as devices
from bench.devices.options import DeviceOptions
from bench.launch import catalog
from bench.measure.compiles import CompileLog
from bench.measure.runner import Measurement, timed_step
from bench.measure.sampler import Sampler
from bench.model.parity import disagreement
from bench.render.format import shown
from workloads.common import CommonOptions

GATHER_LENGTHS = (1, 2, 3, 5, 7, 9, 63, 64, 2**20)  # odd, even and 1 MiB: HCCL re-expresses byte buffers


def build(device: str, name: str, preset: str, precision: str, cpu_backend=None):
    spec = devices.spec(device)
    own = spec.options.build({}) if spec.options else None
    backend = cpu_backend or devices.make_backend(device, DeviceOptions(device=device), own)
    cls = catalog.load(name)
    common = CommonOptions.build({"precision": precision}, preset)
    wl = cls(common, cls.Options.build({}, preset), backend)
    return wl, backend


def pin_card(spec) -> str | None:
    """The card a one-process `bench run` would use (Gaudi: HLS_MODULE_ID, before the bridge loads)."""
    if spec.worker_env is None:
        return None
    env, why = spec.worker_env(1, spec.options.build({}) if spec.options else None)
    os.environ.update(env)
    return why


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


def measured(wl, backend, sampler, args, t0) -> dict:
    """The measured part of a row: sampler cost, bench's rate, energy and compiles over the steps."""
    records = []
    log = CompileLog(backend, records)
    meter = backend.energy_meter()
    backend.synchronize()
    e0, a = (meter() if meter else None), (time.monotonic_ns() - t0) / 1e9
    row = {"sampler": sampler_pairs(wl, backend, sampler, args.pairs) - 1}
    tokens = wl.main_metric == "tokens_per_s"
    with log.phase("measure"):
        row["rate"] = bench_rate(wl, backend, args.steps, tokens)
    backend.synchronize()
    e1, b = (meter() if meter else None), (time.monotonic_ns() - t0) / 1e9
    row["energy_j"] = (e1 - e0) if e0 is not None and e1 is not None else None
    row["unit"], row["window"] = "tokens/s" if tokens else "samples/s", (a, b)
    row["compiles"] = records[0].graphs if records else None
    return row


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
    row.update(measured(wl, backend, sampler, args, t0))
    status, samples, _ = sampler.stop()
    prefixes = sorted({k.split(".")[0] for s in samples for k in s if k.endswith(".util_percent")})
    row.update(telemetry(samples, *row.pop("window"), prefixes))
    fingerprint, figures = wl.verify()
    row["sync"] = figures.get("token_sync.overhead_share")
    wl.teardown()
    ref, _ = reference(name, precision, args, cpu)
    row["parity"] = "n/a" if fingerprint is None else (disagreement(ref, fingerprint) or "same")
    row["collectors"] = ", ".join(f"{k}: {v.get('source') or v.get('reason')}" for k, v in status.items())
    row["seconds"] = time.monotonic() - t_start
    return row


def serve_check(device, precision, args) -> dict:
    """blender-serve: the engine's tokens per second, closed-loop full batches with a device sync and
    a clock read after every step and one event per token, over the executor stepped in a plain loop
    (the same steps, timed as a whole; interleaved rounds, median ratio): near 1.00 means stamping
    each token costs nothing worth mentioning."""
    t_start = time.monotonic()
    wl, backend = build(device, "blender-serve", args.preset, precision)
    wl.setup()
    ex = wl.served.executor(max_rows=len(wl.warm_prompts), max_source=wl.common.context_len,
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
            "idle_power": None, "energy_j": None, "compiles": None, "sync": None, "parity": "n/a",
            "collectors": "—", "watched": False, "seconds": time.monotonic() - t_start}


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


def reference(name, precision, args, cpu):
    """The fingerprint computed on the CPU, fp32 where the CPU would take too long in bf16."""
    wl, _ = build("cpu", name, args.preset, precision, cpu_backend=cpu)
    wl.setup()
    try:
        return wl.verify()
    finally:
        wl.teardown()


# ---- what only the hardware settles -----------------------------------------------------------------

def fact(check: str, result: str, ok: bool | None) -> dict:
    """ok None: nothing to judge here (n/a, or for a person to look at)."""
    return {"check": check, "result": result, "ok": ok}


def check_processes(backend) -> dict:
    """NVML's processes on our GPU against our PID, and what bench makes of them."""
    if backend.name != "cuda":
        return fact("processes", "n/a (NVML only: HLML lists no processes)", None)
    from bench.devices.cuda.collectors import with_nvml
    from bench.devices.owned import OwnProcesses

    uuid = backend.uuid()

    def listed(lib):
        h = lib.nvmlDeviceGetHandleByUUID(uuid)
        return {p.pid for p in lib.nvmlDeviceGetComputeRunningProcesses(h)}

    pids = with_nvml(listed)
    if pids is None:
        return fact("processes", "NVML could not list the processes", None)
    others = OwnProcesses(os.getpid()).others(pids)
    where = "our PID among them" if os.getpid() in pids else "our PID not among them (another PID namespace)"
    said = "unknown" if others is None else f"{others} other(s)"
    return fact("processes", f"{len(pids)} listed, {where}; bench: {said}", others in (0, None))


def check_uuid(backend) -> dict:
    """cuda: the UUID bench watches against `nvidia-smi -L`; hpu: the card acquired against the pin."""
    if backend.name == "hpu":
        d = backend.describe()
        text = f"card {d.get('card_index')} (module {d.get('module_id')}; asked for {d.get('module_requested')})"
        return fact("card", text + (f": {d['module_fallback']}" if d.get("module_fallback") else ""),
                    d.get("card_index") is not None)
    if backend.name != "cuda":
        return fact("uuid", "n/a", None)
    from bench.devices.tools import ToolError, find_tool, run_tool

    uuid = backend.uuid()
    try:
        listing = run_tool([find_tool("nvidia-smi"), "-L"])
    except ToolError as exc:
        return fact("uuid", f"{uuid}; nvidia-smi -L: {exc}", None)
    return fact("uuid", f"{uuid} {'is' if uuid and uuid in listing else 'is NOT'} in nvidia-smi -L",
                bool(uuid) and uuid in listing)


def check_hlml_minor(backend) -> dict:
    """Gaudi: the card the bridge acquired, by its device node, against the HLML minor number of the card bench
    watches (habana-pyhlml hlmlDeviceGetMinorNumber: the node's number; the HLML index is another number)."""
    if backend.name != "hpu":
        return fact("hlml_minor", "n/a (Gaudi only)", None)
    node, index = backend.card.get("node"), backend.card.get("index")
    if node is None or index is None:
        return fact("hlml_minor", f"node {node}, HLML index {index}: not linked (no HLML or no device file)", None)
    import pyhlml

    pyhlml.hlmlInit()
    try:
        minor = pyhlml.hlmlDeviceGetMinorNumber(pyhlml.hlmlDeviceGetHandleByIndex(index))
    finally:
        pyhlml.hlmlShutdown()
    minor = int(getattr(minor, "value", minor))  # an early wheel returned the ctypes.c_uint itself
    return fact("hlml_minor", f"node {node}; HLML index {index} has minor number {minor}", minor == node)


SERVER = '''
import time, torch
x = torch.ones(1 << 20, device="cuda")
torch.cuda.synchronize()
print("ready", flush=True)
time.sleep(600)  # until the check stops it (SIGTERM), at most 10 minutes
'''
DETACH = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdin=subprocess.PIPE, "
          "stdout=subprocess.PIPE, start_new_session=True); print(p.pid, p.stdout.readline().decode().strip(), "
          "flush=True)")


def check_own_server(backend, timeout_s: float = 90.0) -> dict:
    """cuda: a process on our GPU started apart from the run (its parent exits, as a server started elsewhere is
    not in the run's tree): another job until claimed, then the run's own (bench/devices/owned.py)."""
    if backend.name != "cuda":
        return fact("own_server", "n/a (NVML only: HLML lists no processes)", None)
    from bench.devices.cuda.collectors import with_nvml
    from bench.devices.owned import OwnProcesses

    backend.synchronize()  # this process holds the GPU too, as a worker does
    done = subprocess.run([sys.executable, "-c", DETACH, SERVER], capture_output=True, text=True, timeout=timeout_s,
                          env=child_env())
    pid, said = (done.stdout.split() + ["", ""])[:2]
    if not pid.isdigit() or said != "ready":
        return fact("own_server", f"the server did not start: {' '.join(done.stderr.split())[-120:]}", False)
    try:
        pids = with_nvml(lambda lib: {p.pid for p in lib.nvmlDeviceGetComputeRunningProcesses(
            lib.nvmlDeviceGetHandleByUUID(backend.uuid()))})
        own = OwnProcesses(os.getpid())
        before = own.others(pids or set())
        own.claim([int(pid)], on_device=1)
        after = own.others(pids or set())
    finally:
        os.kill(int(pid), signal.SIGTERM)
    text = f"{len(pids or ())} listed; unclaimed: {before} other(s); claimed: {after if after is not None else 'unknown'}"
    return fact("own_server", text, pids is not None and bool(before) and after in (0, None))


AUTOCAST_OPS = ("softmax", "log_softmax", "layer_norm", "linear")


def autocast_dtypes(backend) -> dict:
    """The dtype each op returns under bf16 autocast on the device, for fp32 inputs."""
    import torch
    import torch.nn.functional as F

    x, w = torch.randn(4, 16, device=backend.device), torch.randn(8, 16, device=backend.device)
    with backend.autocast("bf16"):
        out = {"softmax": F.softmax(x, -1), "log_softmax": F.log_softmax(x, -1), "layer_norm": F.layer_norm(x, (16,)),
               "linear": F.linear(x, w)}
    backend.synchronize()
    return {op: str(t.dtype).removeprefix("torch.") for op, t in out.items()}


def judge_autocast(dtypes: dict, arithmetic: dict | None) -> dict:
    """The dtypes against the lists bench records: an op on the lower list gives bfloat16, on the fp32 list float32."""
    shown_dtypes = ", ".join(f"{op} {d}" for op, d in dtypes.items())
    if not arithmetic or arithmetic.get("autocast_lower_ops") is None:
        return fact("autocast", f"{shown_dtypes}; no lists recorded for this device", None)
    lower, fp32 = set(arithmetic["autocast_lower_ops"]), set(arithmetic.get("autocast_fp32_ops") or ())
    expected = {op: "bfloat16" if op in lower else "float32" if op in fp32 else None for op in dtypes}
    wrong = [op for op, d in dtypes.items() if expected[op] not in (None, d)]
    return fact("autocast", shown_dtypes + (f"; the recorded lists say otherwise for {', '.join(wrong)}" if wrong
                                            else ": as the recorded lists say"), not wrong)


def check_autocast(backend) -> dict:
    if "bf16" not in devices.spec(backend.name).precisions:
        return fact("autocast", "n/a (no bf16 on this device)", None)
    return judge_autocast(autocast_dtypes(backend), backend.arithmetic())


def check_warmup(device: str, spec) -> dict:
    """A tiny fine-tune warmed up until steady (AdamW's second step is a new graph in lazy mode): where the device
    counts its compiles (Gaudi's lazy or compile mode) nothing may compile while measuring. On cuda it would need
    torch.compile's build, past this check's budget: n/a there."""
    from bench.measure.options import MeasureOptions

    if device != "hpu":
        return fact("warmup", "n/a (Gaudi only: nothing counts compiles without torch.compile)", None)
    own = spec.options.build({}) if spec.options else None
    backend = devices.make_backend(device, DeviceOptions(device=device), own)
    wl = catalog.load("blender-finetune")(CommonOptions.build({"precision": "fp32"}, "tiny"),
                                            catalog.load("blender-finetune").Options.build({}, "tiny"), backend)
    out = Measurement(wl, backend, MeasureOptions.build({"steps": 5}, "tiny")).run().result
    rep = out.timing.repeats[0] if out.timing.repeats else None
    if out.status != "ok" or rep is None:
        return fact("warmup", f"{out.status}: {out.error}", False)
    graphs = {c.phase: c.graphs for c in rep.compiles}
    if graphs.get("measure") is None:
        return fact("warmup", "n/a (nothing counts compiles here)", None)
    return fact("warmup", f"first step {rep.first_step_s:.1f} s, {rep.warmup_steps} steps (steady: {rep.warmup_steady}); "
                          f"graphs: warm-up {graphs.get('warmup')}, measured {graphs['measure']}", graphs["measure"] == 0)


# ---- serving on the device: rows that run before this process takes it (a Gaudi card is one process's) -------

SERVE_RUN = ("--preset", "tiny", "--workload", "blender-serve", "--max-batch", "2", "--context-len", "32",
             "--new-tokens", "8", "--qps", "20", "--requests", "40", "--repeats", "1", "--warmup", "1",
             "--sample-hz", "10", "--quiet")


def bench_run(device: str, flags, timeout_s: float):
    """`bench run` in a process of its own: (its report, or None, and what it said where it failed)."""
    from bench.core.proc import python_argv
    from bench.model.io import load_report

    with tempfile.TemporaryDirectory(prefix="device-check-") as out:
        try:
            done = subprocess.run(python_argv("-m", "bench", "run", "--device", device, *SERVE_RUN, *flags,
                                              "--out", out), capture_output=True, text=True, timeout=timeout_s,
                                  env=child_env())
        except subprocess.TimeoutExpired:
            return None, f"no answer within {timeout_s:.0f} s"
        found = sorted(os.listdir(out))
        said = " ".join((done.stderr or done.stdout).split())[-200:]
        return (load_report(os.path.join(out, found[0])) if found else None), said


def judge_served(report) -> dict:
    """--engine http: the run held no device, watched the card bench serve said it used, sampled its utilization,
    and measured its energy per request (the session's; the busy spans' where the readings resolve it)."""
    r = report.results[0] if report.results else None
    if r is None or r.status != "ok" or r.served_by is None:
        return fact("served_card", f"{r.status}: {r.error}" if r else "no result", False)
    cards = {p: src for p, src in report.telemetry.sources.items() if src.role == "accelerator"}
    util, e = r.busy.util_percent if r.busy else None, r.energy
    text = (f"{r.served_by.device}; watched {', '.join(sorted(cards)) or 'nothing'}; busy "
            f"{_pct(r.busy.share if r.busy else None)} of the window, utilization over it {_pct(util, 1)}; J/request "
            f"session {_num(e.session_per_request_j)}, busy {_num(e.busy_per_request_j)}"
            + (f" ({e.per_request_reason})" if e.per_request_reason else ""))
    held = report.environment.device.get("device_held")
    ok = held is False and bool(cards) and "said by bench serve" in (r.served_by.device or "") and util is not None \
        and e.session_per_request_j is not None
    return fact("served_card", text, ok)


def _pct(v, scale=100) -> str:
    return "—" if v is None else f"{v * scale:.0f} %"


def _num(v) -> str:
    return "—" if v is None else f"{v:.3g}"


def check_served_card(device: str, spec, timeout_s: float = 150.0) -> dict:
    """`bench run --engine http` on the device: the server holds the card, the run watches it (utilization and
    energy of the card the server used)."""
    if not spec.accelerator:
        return fact("served_card", "n/a (no accelerator)", None)
    report, said = bench_run(device, ["--engine", "http"], timeout_s)
    if report is None:
        return fact("served_card", f"no report: {said}", None if "serve extra" in said else False)
    return judge_served(report)


HPU_GRAPHS = '''
import sys, time
from bench.devices import registry
from bench.devices.hpu.spec import HpuOptions
from bench.devices.options import DeviceOptions
from bench.serve.engine import Engine
from bench.serve.protocol import GenRequest, Sampling
from workloads.blender_executor import BlenderExecutor
from workloads.models import build_blender

device = sys.argv[1]
backend = registry.make_backend(device, DeviceOptions(device=device), HpuOptions.build({"hpu_mode": "lazy",
                                                                                       "hpu_graphs": True}))
model = build_blender("tiny").eval().to(backend.device)
limits = {"max_rows": 2, "max_source": 32, "max_tokens": 8}

greedy = {f"r{i}" for i in range(6) if i % 3 != 2}  # the others sampled, at the API's default temperature

def serve(ex):
    engine = Engine(ex, time.monotonic, max_batch=2, sync=backend.synchronize)
    tokens = {}
    for i in range(6):
        how = Sampling() if f"r{i}" in greedy else Sampling(temperature=1.0, seed=i)
        engine.submit(GenRequest(f"r{i}", tuple(range(5 + i, 12 + 3 * i)), 8, 8, sampling=how))
    while engine.running or engine.waiting:
        record = engine.step()
        for e in record.events if record else ():
            if e.kind == "token" and e.request in greedy:
                tokens.setdefault(e.request, []).append(e.token)
    return tokens

backend.graphs = False
plain = BlenderExecutor(model, backend, **limits)
plain.warmup()
expected = serve(plain)
backend.graphs = True
ex = BlenderExecutor(model, backend, **limits)
ex.warmup()
graphs0, runs, calls = backend.compile_stats()["graphs"], ex.decoder_module.runs, ex.decode_calls
got = serve(ex)
print(ex.graphs, ex.decode_calls - calls, ex.decoder_module.runs - runs, backend.compile_stats()["graphs"] - graphs0,
      got == expected, flush=True)
'''


def check_hpu_graphs(device: str, spec, timeout_s: float = 150.0) -> dict:
    """Gaudi, --hpu-graphs: the serving executor's decode buckets captured in the warm-up and replayed while
    serving (the Python forward not run again), nothing compiled, greedy tokens as without graphs."""
    if not spec.static_shapes:
        return fact("hpu_graphs", "n/a (Gaudi only)", None)
    from bench.core.proc import python_argv

    try:
        done = subprocess.run(python_argv("-c", HPU_GRAPHS, device), capture_output=True, text=True,
                              timeout=timeout_s, env=child_env())
    except subprocess.TimeoutExpired:
        return fact("hpu_graphs", f"no answer within {timeout_s:.0f} s", False)
    return judge_hpu_graphs(done.stdout.split(), " ".join(done.stderr.split())[-160:])


def judge_hpu_graphs(words: list[str], stderr: str = "") -> dict:
    if len(words) != 5:
        return fact("hpu_graphs", f"the check did not finish: {stderr or 'no output'}", False)
    graphs, steps, runs, compiled, same = words
    text = (f"{steps} decode steps while serving: {int(steps) - int(runs)} HPU-graph replays, the Python forward run "
            f"{runs} times, {compiled} graph(s) compiled; greedy tokens {'as' if same == 'True' else 'NOT as'} "
            "without graphs")
    return fact("hpu_graphs", text, graphs == "True" and runs == "0" and compiled == "0" and same == "True")


def serving_checks(device: str, spec) -> list[dict]:
    """Before this process takes the device: a server started by a run on it, and HPU graphs while serving."""
    return [_safely("served_card", lambda: check_served_card(device, spec)),
            _safely("hpu_graphs", lambda: check_hpu_graphs(device, spec))]


GATHER = '''
import os, sys
import torch.distributed as dist
from bench.devices import registry
from bench.devices.options import DeviceOptions
from bench.launch.collective import gather_json

def value(length, rank):  # a JSON value whose text is length + rank bytes
    return 7 if length + rank == 1 else "x" * (length + rank - 2)

rank, device = int(os.environ["LOCAL_RANK"]), sys.argv[1]
spec = registry.spec(device)
own = spec.options.build({}) if spec.options else None
backend = registry.make_backend(device, DeviceOptions(device=device), own, rank, 2)
backend.init_distributed()
dist.init_process_group(spec.dist_backend)
for n in map(int, sys.argv[2].split(",")):
    assert gather_json(value(n, rank), backend.device) == [value(n, r) for r in range(2)], n
dist.destroy_process_group()
sys.stdout.write(f"gathered {rank}\\n")  # one write: the ranks share stdout
'''


def check_gather(device: str, spec, timeout_s: float = 240.0) -> dict:
    """Payloads of odd and even lengths gathered on 2 ranks over the device's own process group."""
    count = spec.count()
    if count is not None and count < 2:
        return fact("gather", f"skipped: {count} device(s), the check needs 2", None)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
            fh.write(GATHER)
    except OSError as exc:  # no temporary directory takes the ranks' script: the check fails, said
        return fact("gather", f"cannot write its script: {exc.strerror or exc}", False)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", fh.name, device,
           ",".join(map(str, GATHER_LENGTHS))]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=child_env())
    except subprocess.TimeoutExpired:
        return fact("gather", f"{spec.dist_backend}: no answer within {timeout_s:.0f} s", False)
    finally:
        os.unlink(fh.name)
    ok = done.returncode == 0 and "gathered 0" in done.stdout and "gathered 1" in done.stdout
    tail = "" if ok else ": " + " ".join(done.stderr.split())[-160:]
    return fact("gather", f"{spec.dist_backend}, 2 ranks, lengths {GATHER_LENGTHS[0]}..1 MiB{tail}", ok)


def check_oom(backend) -> dict:
    """An allocation far past the device's memory: bench must call what it raises out-of-memory."""
    import torch

    total = (backend.memory_stats() or {}).get("device_total_bytes") or 2**44
    try:
        x = torch.empty(int(total) * 4, dtype=torch.uint8, device=backend.device)
        backend.synchronize()  # an asynchronous device may fail only here
        del x
    except Exception as exc:  # noqa: BLE001 - whatever the stack raises is what is being checked
        text = " ".join(str(exc).split())[:90]
        return fact("oom", f"{type(exc).__name__}: {text}", bool(backend.is_oom(exc) or isinstance(exc, MemoryError)))
    return fact("oom", f"an allocation of {int(total) * 4} bytes succeeded", None)


def check_peak(backend, precision: str) -> dict:
    name = backend.describe().get("device_name")
    peak, source = backend.peak_flops(precision)
    text = f"{name}: {peak / 1e12:g} TFLOP/s {precision} ({source})" if peak else f"{name}: {source}"
    return fact("peak", text, True if peak else None)


def hardware_checks(device: str, spec, precision: str) -> list[dict]:
    backend = devices.make_backend(device, DeviceOptions(device=device),
                                   spec.options.build({}) if spec.options else None)
    out = []
    for fn in (check_processes, check_uuid, check_hlml_minor, check_own_server, check_autocast, check_oom,
               lambda b: check_peak(b, precision)):
        try:
            out.append(fn(backend))
        except Exception as exc:  # noqa: BLE001 - one failing check does not hide the others
            out.append(fact(getattr(fn, "__name__", "check").removeprefix("check_"),
                            f"{type(exc).__name__}: {exc}", False))
    out.append(_safely("warmup", lambda: check_warmup(device, spec)))
    return out + [check_gather(device, spec)]


def _safely(name: str, fn) -> dict:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failing check does not hide the others
        return fact(name, f"{type(exc).__name__}: {exc}", False)


def problems(rows: list[dict], facts: list[dict], accelerator: bool) -> list[str]:
    """Why the check fails: parity, a failed check, an accelerator row without a utilization sample."""
    out = [f"{r['workload']} {r['precision']}: parity {r['parity']}" for r in rows if r["parity"] not in ("same", "n/a")]
    out += [f"{f['check']}: {f['result']}" for f in facts if f["ok"] is False]
    if accelerator:
        out += [f"{r['workload']} {r['precision']}: no utilization sample: telemetry did not watch the card"
                for r in rows if r["util"] is None and r.get("watched", True)]
    return out if rows else ["no check ran"] + out


def print_table(rows, facts) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench device check ({len(rows)} checks)", title_justify="left")
    for col in ("workload", "prec", "throughput", "bench/plain", "sampler", "util %", "power W (idle)",
                "energy J", "compiles", "sync", "parity", "s"):
        table.add_column(col)

    def fmt(v, spec):
        return "—" if v is None else format(v, spec)

    for r in rows:
        table.add_row(shown(r["workload"]), r["precision"], f"{r['rate']:,.1f} {r['unit']}", fmt(r["bench/plain"], ".3f"),
                      fmt(r["sampler"], "+.1%"), fmt(r["util"], ".0f"),
                      f"{fmt(r['power'], '.0f')} ({fmt(r['idle_power'], '.0f')})", fmt(r["energy_j"], ".1f"),
                      fmt(r["compiles"], "d"), fmt(r["sync"], "+.1%"),
                      shown(r["parity"] if len(r["parity"]) < 40 else r["parity"][:37] + "..."), f"{r['seconds']:.0f}")
    console = Console(width=160)
    console.print(table)
    once = Table(title="what only the hardware settles", title_justify="left")
    for col in ("check", "result", "ok"):
        once.add_column(col)
    for f in facts:
        once.add_row(f["check"], shown(f["result"]), {True: "yes", False: "NO", None: "—"}[f["ok"]])
    console.print(once)
    console.print("telemetry:", shown(rows[0]["collectors"]) if rows else "—")


def run_rows(device, spec, args, cpu) -> list[dict]:
    rows, start = [], time.monotonic()
    for precision in [p for p in ("fp32", "bf16") if p in spec.precisions]:
        for name in catalog.available():
            if time.monotonic() - start > args.budget:
                print(f"skipped {name} {precision}: past the {args.budget:.0f} s budget")
                continue
            try:
                serves = catalog.scenario(name).name == "serving"
                rows.append(serve_check(device, precision, args) if serves else check(device, name, precision, args, cpu))
            except Exception as exc:  # noqa: BLE001 - one failing check does not hide the others
                print(terminal_safe(f"{name} {precision}: {type(exc).__name__}: {exc}"))
    return rows


@dataclass(frozen=True)
class CheckOptions(Options):
    """Declared and checked as bench's own (benchmarks/_scriptkit.py): `--budget nan` is refused."""

    title = "device check"

    device: str = opt("auto", "cpu, cuda, hpu or a plug-in device; auto picks hpu, then cuda, then cpu (checked as "
                              "`bench run --device` checks it: a named device that is missing is an error)",
                      metavar="DEVICE")
    quick: bool = opt(False, "the tiny preset and few steps (a smoke test)")
    budget: float = opt(270.0, "seconds for the workload rows (checks past it are skipped, said so); the one-time "
                               "checks after them take up to ~90 s more", exclusive_minimum=0, maximum=86_400)


def main(argv=None) -> int:
    return run(lambda: check_device(parse(CheckOptions, argv, __doc__)))


def check_device(o: CheckOptions) -> int:
    steps, rounds, pairs, warmup = (4, 3, 6, 2) if o.quick else (6, 3, 10, 3)
    args = SimpleNamespace(device=o.device, budget=o.budget, preset="tiny" if o.quick else "seed", steps=steps,
                           rounds=rounds, pairs=pairs, warmup=warmup)
    device = devices.detect() if args.device == "auto" else args.device
    spec = devices.require(device)
    pinned = pin_card(spec)
    start = time.monotonic()
    served = serving_checks(device, spec)  # first: this process takes the device after them
    args.budget = max(0.0, args.budget - (time.monotonic() - start))  # the serving rows' time is the rows'
    rows = run_rows(device, spec, args, devices.make_backend("cpu", DeviceOptions(device="cpu")))
    facts = served + hardware_checks(device, spec, "bf16" if "bf16" in spec.precisions else spec.precisions[0])
    print_table(rows, facts)
    print(f"device: {device}; preset {args.preset}; {time.monotonic() - start:.0f} s in all"
          + (f"; card: {pinned}" if pinned else ""))
    failed = problems(rows, facts, spec.accelerator)
    for line in failed:
        print(terminal_safe(f"FAILED {line}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
