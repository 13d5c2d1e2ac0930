"""Dense peak FLOP/s by device and precision, for MFU. Device metadata, never inside a workload.

Figures are vendors' datasheet dense (no sparsity) numbers; `--peak-tflops` overrides them.
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

# Gaudi: Intel's published dense matrix-engine figures. First-generation Gaudi (HL-205) has none
# published that we can cite, so it stays unknown rather than guessed.
HPU_PEAKS: dict[str, dict[str, float]] = {
    "GAUDI2": {"bf16": 432.0},
    "GAUDI3": {"bf16": 1835.0},
}


def cuda_peak(device_name: str, precision: str, tf32: bool = False):
    key = "tf32" if precision == "fp32" and tf32 else precision
    for pattern, table in CUDA_PEAKS:
        if re.search(pattern, device_name, re.IGNORECASE):
            if key in table:
                return table[key] * TERA, f"{CUDA_SOURCE} ({pattern.replace(chr(92) + 'b', '')}, {key})"
            return None, f"no {key} peak listed for {device_name}"
    return None, f"{device_name!r} is not in the peak table; pass --peak-tflops"


def hpu_peak(device_name: str, precision: str):
    name = (device_name or "").upper()
    table = HPU_PEAKS.get(name)
    if table is None:
        return None, f"no published dense peak for {device_name!r}; pass --peak-tflops"
    if precision not in table:
        return None, f"no published {precision} peak for {device_name}"
    return table[precision] * TERA, f"Intel published dense peak ({name}, {precision})"


def cpu_flags_and_vendor(cpuinfo: str) -> tuple[set[str], str, float | None]:
    """Parse /proc/cpuinfo text: (flags, vendor_id, MHz of the first core)."""
    flags: set[str] = set()
    vendor, mhz = "", None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "vendor_id" and not vendor:
            vendor = value.strip()
        elif key == "cpu MHz" and mhz is None:
            mhz = float(value)
    return flags, vendor, mhz


def cpu_flops_per_cycle(flags: set[str], vendor: str, precision: str) -> tuple[int | None, str]:
    """Per-core FLOP/cycle of the widest matrix path torch can use for this precision."""
    if precision == "bf16" and "amx_bf16" in flags:
        return 2048, "AMX bf16"
    if "avx512f" in flags:
        fp32 = 64 if vendor == "GenuineIntel" else 32  # 2 x 512-bit FMA units vs Zen 4's 2 x 256-bit
        isa = "AVX-512"
    elif "avx2" in flags and "fma" in flags:
        fp32, isa = 32, "AVX2 FMA"
    else:
        return None, "no FMA vector unit recognised"
    if precision == "fp32":
        return fp32, isa
    if precision == "bf16" and "avx512_bf16" in flags:
        return 2 * fp32, "AVX-512 BF16"
    return None, f"no {precision} matrix instructions recognised"


def cpu_peak(threads: int, precision: str, cpuinfo: str | None = None):
    """Estimate: threads x clock x FLOP/cycle. Labelled as an estimate; --peak-tflops overrides."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as fh:
                cpuinfo = fh.read()
        except OSError:
            return None, "/proc/cpuinfo not readable"
    flags, vendor, mhz = cpu_flags_and_vendor(cpuinfo)
    per_cycle, isa = cpu_flops_per_cycle(flags, vendor, precision)
    if per_cycle is None or not mhz:
        return None, f"no {precision} peak: {isa if per_cycle is None else 'clock unknown'}"
    peak = threads * mhz * 1e6 * per_cycle
    return peak, (f"estimate: {threads} threads x {mhz / 1000:.2f} GHz x {per_cycle} FLOP/cycle ({isa}); "
                  "turbo clocks can exceed it")
