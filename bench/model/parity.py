"""Do two runs compute the same thing? Their output fingerprints compared within a tolerance that
depends on the precision: a device that is fast because it computes something else is caught.

Continuous outputs (losses, top scores) agree within a relative tolerance. Discrete outputs (greedy
tokens, top-k candidate ids) must agree wherever the decision was clear in both runs: at a position
whose margin (top-1 minus top-2 score) is within rounding, two correct devices may pick differently,
and everything after a greedy token differs with it, so tokens are compared up to the first unclear
position. Tolerances: fp32 allows for TF32 matmuls on NVIDIA and Gaudi's fp32 paths; bf16 and fp16
for their 8- and 11-bit mantissas.
"""

from __future__ import annotations

from bench.model.report import Fingerprint

RELATIVE = {"fp32": 5e-3, "fp16": 2e-2, "bf16": 5e-2}


def tolerance(*precisions: str) -> float:
    return max(RELATIVE.get(p, max(RELATIVE.values())) for p in precisions)


def disagreement(a: Fingerprint | None, b: Fingerprint | None) -> str | None:
    """Why a and b disagree beyond their tolerance, or None (also when one has no fingerprint or they
    fingerprint different things)."""
    if a is None or b is None or a.kind != b.kind:
        return None
    tol = tolerance(a.precision, b.precision)
    if len(a.values) != len(b.values) or len(a.tokens) != len(b.tokens):
        return f"{a.kind}: {len(a.values)} vs {len(b.values)} values"
    for i, (x, y) in enumerate(zip(a.values, b.values, strict=True)):
        scale = max(abs(x), abs(y), 1e-6)
        if abs(x - y) > tol * scale:
            return (f"{a.kind}: value {i} is {x:.6g} vs {y:.6g} ({abs(x - y) / scale:.2%} apart; tolerance "
                    f"{tol:.1%} at {a.precision}/{b.precision})")
    margins_a = a.margins or [float("inf")] * len(a.tokens)
    margins_b = b.margins or [float("inf")] * len(b.tokens)
    for i, (ta, tb) in enumerate(zip(a.tokens, b.tokens, strict=True)):
        scale = max(abs(a.values[i]) if i < len(a.values) else 1.0, 1.0)
        if min(margins_a[i], margins_b[i]) <= tol * scale:
            break  # an unclear decision: from here on both outputs are right
        if ta != tb:
            return f"{a.kind}: output {i} is {ta} vs {tb} where both runs decided clearly"
    return None
