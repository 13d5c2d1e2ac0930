"""A CPU's peak FLOP/s, estimated from its clock and vector/matrix units (labelled an estimate)."""

from __future__ import annotations


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
