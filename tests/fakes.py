"""Fakes shared by the tests: a backend that logs syncs, a workload that counts, a clock that logs reads."""

from __future__ import annotations

import time
import types

from workloads.base import NoOptions, StepResult, Workload


class LoggingBackend:
    """Backend stand-in: records synchronize/mark_step order into a shared event log."""

    name = "cpu"
    torch_device_type = "cpu"
    static_shapes = False

    def __init__(self, log: list | None = None):
        self.log = log if log is not None else []
        self.torch = types.SimpleNamespace(get_num_threads=lambda: 1)

    def synchronize(self):
        self.log.append("sync")

    def after_backward(self):
        self.log.append("after_backward")

    def after_optimizer_step(self):
        self.log.append("after_optimizer_step")

    def reset_peak_memory(self):
        pass

    def memory_stats(self):
        return {"device_peak_bytes": None}

    def peak_flops(self, precision):
        return None, "fake"

    def is_oom(self, exc):
        return "out of memory" in str(exc)

    def threads(self):
        return None

    def energy_meter(self):
        return None

    def collector_specs(self):
        return []

    def describe(self):
        return {"backend": "cpu", "device": "cpu"}


class CountingWorkload(Workload):
    name = "counting"
    description = "does nothing, counts"

    def __init__(self, common=None, options=None, backend=None, fail_at=None, interrupt_at=None, log=None):
        super().__init__(common, options or NoOptions(), backend)
        self.fail_at, self.interrupt_at = fail_at, interrupt_at
        self.calls = 0
        self.log = log if log is not None else []

    def params(self):
        return {"model": "none", "batch_size": 2, "precision": "fp32"}

    def step(self):
        self.calls += 1
        self.log.append("step")
        if self.calls == self.fail_at:
            raise RuntimeError("boom at step %d" % self.calls)
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return StepResult(samples=2, tokens=10)


def logging_clock(monkeypatch, log: list, step_ns: int = 1_000_000):
    """Replace time.perf_counter_ns with a fake that logs each read and advances step_ns."""
    state = {"now": 0}

    def fake():
        log.append("clock")
        state["now"] += step_ns
        return state["now"]

    monkeypatch.setattr(time, "perf_counter_ns", fake)
    return state


class VirtualClock:
    """Time that moves only when someone sleeps or a fake device works."""

    def __init__(self, start=100.0):
        self.t = start

    def __call__(self):
        return self.t

    def sleep(self, seconds):
        assert seconds >= 0
        self.t += seconds


class FakeExecutor:
    """The engine's executor on a virtual clock: a step costs per_step_s + per_row_s per row (+ join_s
    per joiner); every token is 5, except that a request whose prompt starts with 2 ends (EOS, id 2)
    at its prompt[1]-th token. It records every step's rows and joiners."""

    max_source, max_tokens, vocab_size, eos = 512, 512, 100, 2

    def __init__(self, clock, per_step_s=0.01, per_row_s=0.002, join_s=0.0):
        self.clock, self.per_step_s, self.per_row_s, self.join_s = clock, per_step_s, per_row_s, join_s
        self.rows: dict[str, list] = {}
        self.log: list[tuple[list[str], list[str]]] = []  # (rows, joined) per step
        self.dropped: list[str] = []

    def step(self, joining):
        for r in joining:
            self.rows[r.id] = [r, 0]
        self.clock.t += self.per_step_s + self.per_row_s * len(self.rows) + self.join_s * len(joining)
        self.log.append((list(self.rows), [r.id for r in joining]))
        out = {}
        for rid, row in self.rows.items():
            row[1] += 1
            r = row[0]
            ends = r.prompt[0] == self.eos and row[1] >= r.prompt[1] and row[1] > r.min_tokens  # as min_tokens says
            out[rid] = self.eos if ends else 5
        return out

    def drop(self, ids):
        for rid in ids:
            del self.rows[rid]
            self.dropped.append(rid)

    def reset(self):
        """Every row freed (the engine's recovery after a step that raised), as BlenderExecutor.reset."""
        self.dropped += list(self.rows)
        self.rows.clear()
        self.resets = getattr(self, "resets", 0) + 1


def _signature(value):
    """What a graph compiler keys on: tensor shapes and dtypes, list lengths, constants; not data."""
    import torch

    if isinstance(value, torch.Tensor):
        return ("T", tuple(value.shape), str(value.dtype))
    if isinstance(value, tuple):  # arguments, dimensions, indices
        return tuple(_signature(v) for v in value)
    if isinstance(value, list):  # data (torch.tensor of a list): its length is the shape, its items are not
        if value and isinstance(value[0], torch.Tensor):
            return tuple(_signature(v) for v in value)
        return ("L", len(value), _signature(value[0]) if value and isinstance(value[0], list) else None)
    if isinstance(value, slice):
        return ("S", value.start, value.stop, value.step)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return type(value).__name__


# What reads a lazy tensor's value on the host: the graph queued so far runs first. The bridge's
# _local_scalar_dense_hpu_lazy (bridge 1.19 habana_kernels/lazy_kernels.cpp: "Trigger point execution")
# behind .item(), and the copy to the host behind .cpu(), .to("cpu") and .tolist(), execute the pending graph.
# A tensor copied to the host is the CPU's: ops on host tensors alone run there and are no device graph.
HOST_READS = ("item", "tolist", "cpu")


def _to_host(name, args, kwargs) -> bool:
    import torch

    if name != "to":
        return False
    wanted = [*args[1:], kwargs.get("device")]
    return any(a == "cpu" or (isinstance(a, torch.device) and a.type == "cpu") for a in wanted)


def _tensors(value) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _on_host(args, kwargs) -> bool:
    found = _tensors((args, kwargs))
    return bool(found) and all(getattr(t, "_on_host", False) for t in found)


def _mark_host(value, copied=()):
    """Outputs of host ops, or of a copy to the host (`copied`: its arguments; a copy is a new tensor, never the
    device's own, which torch's .to("cpu") of a CPU tensor would return): the host's."""
    import torch

    if isinstance(value, torch.Tensor):
        if any(value is a for a in _tensors(copied)):
            value = value.clone()
        value._on_host = True
    elif isinstance(value, (list, tuple)):
        for v in value:
            _mark_host(v)
    return value


def shape_counting_backend(static_shapes=True):
    """A static-shape device on the CPU, after Gaudi's lazy mode as Habana documents it: the ops queued
    between two synchronizations (mark_step), or up to a host read of a value (HOST_READS), form one graph;
    the bridge compiles a graph the first time it sees it and replays the cached recipe whenever the same
    ops run on the same shapes again, and a new input shape is a recompilation (docs.habana.ai "Handling
    Dynamic Shapes"; developer.habana.ai "Detecting frequent graph re-compilations"). It counts the graphs
    it compiled the way the bridge's metric_global("graph_compilation") does (compile_stats) and keeps each
    graph's ops and shapes."""
    from torch.overrides import TorchFunctionMode

    from bench.devices.cpu.backend import CpuBackend
    from bench.devices.options import DeviceOptions

    class Queue(TorchFunctionMode):
        def __init__(self, flush):
            super().__init__()
            self.ops, self.flush = [], flush

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if _on_host(args, kwargs):  # the CPU's own work: no device graph
                return _mark_host(func(*args, **kwargs))
            if name in HOST_READS or _to_host(name, args, kwargs):
                self.flush()  # the graph up to here runs before the value reaches the host
                return _mark_host(func(*args, **kwargs), args)
            if name != "__get__":  # reading .shape or .dtype queues no op
                self.ops.append((name, _signature(args), _signature(tuple(kwargs.items()))))
            return func(*args, **kwargs)

    class ShapeCountingBackend(CpuBackend):
        def __init__(self):
            super().__init__(DeviceOptions(device="cpu", threads=1))
            self.static_shapes = static_shapes
            self.graphs: list[tuple] = []
            self.queue = Queue(self._run_queued)

        def _run_queued(self):
            graph, self.queue.ops = tuple(self.queue.ops), []
            if graph and graph not in self.graphs:
                self.graphs.append(graph)

        def synchronize(self):
            self._run_queued()

        def autocast(self, precision):
            """The device's ops are seen whichever thread runs them (the bridge counts compiles per process,
            and the serving engine steps on a thread of its own): a thread without the queue's mode enters it
            for the executor's compute (which opens every step with autocast)."""
            import contextlib

            from torch.overrides import _get_current_function_mode_stack

            inner = super().autocast(precision)
            if self.queue in _get_current_function_mode_stack():
                return inner
            stack = contextlib.ExitStack()
            stack.enter_context(self.queue)
            stack.enter_context(inner)
            return stack

        def compile_stats(self):
            return {"graphs": len(self.graphs), "seconds": None, "source": "fake: distinct graphs between syncs"}

    backend = ShapeCountingBackend()
    backend.prepare()
    return backend


def lively_tiny():
    """The tiny BlenderBot with a head of its own, weights at std 0.05 and decoder position embeddings
    10x larger: its greedy tokens depend on the prompt and the position. The tiny preset's random init
    (embeddings tied to the head, std 0.02) repeats its start token whatever it is given, and any
    engine, right or wrong, would reproduce that; with weak positions a wrong one would still pass."""
    import torch
    from transformers import BlenderbotSmallConfig, BlenderbotSmallForConditionalGeneration

    from workloads.models import TINY

    torch.manual_seed(0)
    config = BlenderbotSmallConfig(**dict(TINY, tie_word_embeddings=False, init_std=0.05))
    model = BlenderbotSmallForConditionalGeneration._from_config(config).eval()
    with torch.no_grad():
        model.get_decoder().embed_positions.weight.mul_(10.0)
    return model


def codec_of(model: str, vocab_size: int | None = None):
    """The API's text codec of --model (a preset's name or a checkpoint directory), as bench serve builds
    it, over `vocab_size` ids where given (a fake executor's)."""
    from bench.serve.text import load_codec
    from workloads.blender_servable import BlenderServable
    from workloads.common import CommonOptions

    return load_codec(BlenderServable(CommonOptions.build({"model": model}, "tiny")), vocab_size)
