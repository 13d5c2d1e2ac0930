"""Same precision name, not the same arithmetic: the one place that says which compared runs compute
differently although their identity matches.

Two classes of difference are known (the runs' Environment.arithmetic records both):
  autocast  bf16/fp16 on both sides, and ops one side's autocast lowers that the other keeps in fp32. Gaudi's
            bridge lowers softmax, log_softmax and layer_norm (1.19 hpu_ops/autocast_helpers.h); CUDA keeps
            them in fp32 (PyTorch's Autocast Op Reference). Where a report holds no lists (older reports), an
            hpu-vs-cuda pair is flagged on the stacks' defaults alone.
  matmul    fp32 on both sides, and one side's fp32 matmuls ran as TF32, the other's as IEEE fp32
            (NVIDIA_TF32_OVERRIDE=0 forces IEEE whatever torch asks).
Each is a noted difference (note code `arithmetic`), not an identity mismatch: the verdict stands, said to
compare different arithmetic. The choice between identity and noted difference is made here and nowhere else.
"""

from __future__ import annotations

from bench.analysis.comparison import Note

LOWERED = ("bf16", "fp16")  # precisions run through autocast
DIFFERENT_DEFAULTS = {"cuda", "hpu"}  # device kinds whose stacks' default autocast lists differ


def arithmetic_notes(run, base) -> list[Note]:
    """A note for a row whose arithmetic differs from its baseline's (none for the baseline itself)."""
    if run is base:
        return []
    found = autocast_difference(run, base) + matmul_difference(run, base)
    return [Note(code="arithmetic", run=run.name, values={"baseline": base.name, "differences": found})] \
        if found else []


def _arith(run):
    return run.report.environment.arithmetic


def _precision(run) -> str | None:
    return run.result.params.get("precision")


def _backend(run) -> str | None:
    return run.report.environment.device.get("backend")


def autocast_difference(run, base) -> list[dict]:
    """[{"kind": "autocast", ...}] where both run autocast and their lists put ops on opposite sides."""
    if _precision(run) not in LOWERED or _precision(base) not in LOWERED:
        return []
    a, b = _arith(run), _arith(base)
    if a is None or b is None or a.autocast_lower_ops is None or b.autocast_lower_ops is None:
        kinds = {_backend(run), _backend(base)}
        return [{"kind": "autocast", "devices": sorted(kinds), "recorded": False}] if kinds == DIFFERENT_DEFAULTS else []
    lower_here = sorted(set(a.autocast_lower_ops) & set(b.autocast_fp32_ops or ()))
    lower_there = sorted(set(b.autocast_lower_ops) & set(a.autocast_fp32_ops or ()))
    if not lower_here and not lower_there:
        return []
    return [{"kind": "autocast", "lower_here": lower_here, "lower_there": lower_there, "recorded": True}]


def matmul_difference(run, base) -> list[dict]:
    """[{"kind": "matmul", ...}] where both run fp32 and their fp32 matmuls ran differently."""
    a, b = _arith(run), _arith(base)
    if _precision(run) != "fp32" or _precision(base) != "fp32" or a is None or b is None:
        return []
    if a.matmul_fp32 is None or b.matmul_fp32 is None or a.matmul_fp32 == b.matmul_fp32:
        return []
    return [{"kind": "matmul", "here": a.matmul_fp32, "there": b.matmul_fp32}]
