"""NVIDIA dense peak FLOP/s by device and precision, for MFU (core does the arithmetic).

Figures are NVIDIA's datasheet dense (no sparsity) numbers; `--peak-tflops` overrides them.
"""

from __future__ import annotations

import re

TERA = 1e12
CUDA_SOURCE = "NVIDIA datasheet, dense"

# (name pattern, {precision: TFLOP/s}); first match wins, so specific patterns come first.
# "fp32" is plain FP32 on CUDA cores; "tf32" applies when torch allows TF32 matmuls.
CUDA_PEAKS: list[tuple[str, dict[str, float]]] = [
    (r"P100.*PCIE", {"fp32": 9.3, "fp16": 18.7}),
    (r"P100", {"fp32": 10.6, "fp16": 21.2}),
    (r"V100.*PCIE", {"fp32": 14.0, "fp16": 112.0}),
    (r"V100", {"fp32": 15.7, "fp16": 125.0}),
    (r"T4\b", {"fp32": 8.1, "fp16": 65.0}),
    (r"A10G", {"fp32": 31.2, "tf32": 35.0, "fp16": 70.0, "bf16": 70.0}),
    (r"A10\b", {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0}),
    (r"L4\b", {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0}),
    (r"A100", {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0}),
    (r"H100.*PCIE", {"fp32": 51.0, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0}),
    (r"H100.*NVL", {"fp32": 60.0, "tf32": 417.0, "fp16": 835.0, "bf16": 835.0}),
    (r"H100", {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}),
    (r"H200.*NVL", {"fp32": 60.0, "tf32": 417.0, "fp16": 835.0, "bf16": 835.0}),
    (r"H200", {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}),
]

def cuda_peak(device_name: str, precision: str, tf32: bool = False):
    key = "tf32" if precision == "fp32" and tf32 else precision
    for pattern, table in CUDA_PEAKS:
        if re.search(pattern, device_name, re.IGNORECASE):
            if key in table:
                return table[key] * TERA, f"{CUDA_SOURCE} ({pattern.replace(chr(92) + 'b', '')}, {key})"
            return None, f"no {key} peak listed for {device_name}"
    return None, f"{device_name!r} is not in the peak table; pass --peak-tflops"
