"""NVIDIA dense peak FLOP/s by device and precision, for MFU (core does the arithmetic).

Each entry is the vendor's dense (no sparsity) figure and names the document it comes from; a datasheet
that lists tensor figures "with sparsity" only is halved. `--peak-tflops` overrides them. A part whose
figure no document here gives has no entry's peaks: its MFU is null with the reason.
"""

from __future__ import annotations

import re

TERA = 1e12

# (name pattern, short name, {precision: TFLOP/s} or None, source document or why there is no figure).
# First match wins: specific patterns come first, and \b keeps "A100" from matching "RTX A1000", "H200"
# from matching "GH200", "L40" from "L40S". "fp32" is plain FP32 on CUDA cores; "tf32" applies when torch
# allows TF32 matmuls. Names as torch.cuda.get_device_name() prints them ("Tesla V100S-PCIE-32GB",
# "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA GH200 480GB").
V100_SHEET = "NVIDIA V100 Tensor Core GPU datasheet (January 2020)"
H100_SHEET = "NVIDIA H100 Tensor Core GPU datasheet (2023; tensor figures listed with sparsity, halved)"
H200_SHEET = "NVIDIA H200 Tensor Core GPU datasheet (November 2024; tensor figures listed with sparsity, halved)"
CUDA_PEAKS: list[tuple[str, str, dict[str, float] | None, str]] = [
    (r"\bP100\b.*PCIE", "P100 PCIe", {"fp32": 9.3, "fp16": 18.7}, "NVIDIA Tesla P100 datasheet (2016)"),
    (r"\bP100\b", "P100 SXM2", {"fp32": 10.6, "fp16": 21.2}, "NVIDIA Tesla P100 datasheet (2016)"),
    (r"\bV100S\b", "V100S PCIe", {"fp32": 16.4, "fp16": 130.0}, V100_SHEET),
    (r"\bV100\b.*PCIE", "V100 PCIe", {"fp32": 14.0, "fp16": 112.0}, V100_SHEET),
    (r"\bV100\b", "V100 SXM2", {"fp32": 15.7, "fp16": 125.0}, V100_SHEET),
    (r"\bT4\b", "T4", {"fp32": 8.1, "fp16": 65.0}, "NVIDIA T4 Tensor Core GPU datasheet (2019)"),
    (r"\bA10G\b", "A10G", None, "NVIDIA publishes no datasheet for the A10G (an AWS part)"),
    (r"\bA10\b", "A10", {"fp32": 31.2, "tf32": 62.5, "fp16": 125.0, "bf16": 125.0},
     "NVIDIA A10 Tensor Core GPU datasheet (2021)"),
    (r"\bL4\b", "L4", {"fp32": 30.3, "tf32": 60.0, "fp16": 121.0, "bf16": 121.0},
     "NVIDIA L4 Tensor Core GPU datasheet (2023; tensor figures listed with sparsity, halved)"),
    (r"\bL40S\b", "L40S", {"fp32": 91.6, "tf32": 183.0, "fp16": 362.05, "bf16": 362.05},
     "NVIDIA L40S datasheet (2023)"),
    (r"\bL40\b", "L40", {"fp32": 90.5, "tf32": 90.5, "fp16": 181.05, "bf16": 181.05}, "NVIDIA L40 datasheet (2022)"),
    (r"\bA100\b", "A100", {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0},
     "NVIDIA A100 Tensor Core GPU datasheet (2021)"),
    (r"\bGH200\b", "GH200", None, "a GH200 Grace Hopper Superchip is not an H200, and no datasheet here gives its "
                                  "peak"),
    (r"\bH100\b.*PCIE", "H100 PCIe", {"fp32": 51.0, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0}, H100_SHEET),
    (r"\bH100\b.*NVL", "H100 NVL", {"fp32": 60.0, "tf32": 417.0, "fp16": 835.0, "bf16": 835.0}, H100_SHEET),
    (r"\bH100\b", "H100 SXM", {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}, H100_SHEET),
    (r"\bH200\b.*NVL", "H200 NVL", {"fp32": 60.0, "tf32": 417.0, "fp16": 835.0, "bf16": 835.0}, H200_SHEET),
    (r"\bH200\b", "H200 SXM", {"fp32": 67.0, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4}, H200_SHEET),
    (r"\bB200\b", "B200 (HGX)", {"fp32": 75.0, "tf32": 1100.0, "fp16": 2250.0, "bf16": 2250.0},
     "NVIDIA HGX B200 specifications, per GPU (2024; tensor figures listed with sparsity, halved)"),
]


def peak_entry(device_name: str):
    """The table's entry for a device name, or None."""
    return next((e for e in CUDA_PEAKS if re.search(e[0], device_name or "", re.IGNORECASE)), None)


def cuda_peak(device_name: str, precision: str, tf32: bool = False):
    key = "tf32" if precision == "fp32" and tf32 else precision
    entry = peak_entry(device_name)
    if entry is None:
        return None, f"{device_name!r} is not in the peak table; pass --peak-tflops"
    _, label, table, source = entry
    if table is None:
        return None, f"no peak for {device_name}: {source}; pass --peak-tflops"
    if key not in table:
        return None, f"no {key} peak listed for {device_name}"
    return table[key] * TERA, f"{source}, dense ({label}, {key})"
