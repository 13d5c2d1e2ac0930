"""Gaudi dense peak FLOP/s, for MFU. `--peak-tflops` overrides them."""

from __future__ import annotations

TERA = 1e12

# By hthpu.get_device_name() ("GAUDI", "GAUDI2", "GAUDI3"): Intel's published dense matrix-engine (MME)
# figures, each with its document. First-generation Gaudi: a 60 TFLOP/s bf16 figure is attributed to an
# Intel talk at Hot Chips 2024, but no document bench could cite gives it, so it stays unknown.
HPU_PEAKS: dict[str, tuple[dict[str, float] | None, str]] = {
    "GAUDI": (None, "no Intel document bench can cite gives first-generation Gaudi's peak"),
    "GAUDI2": ({"bf16": 432.0}, "Intel Gaudi 2 AI accelerator white paper (2022): 432 TFLOPS bf16 MME"),
    "GAUDI3": ({"bf16": 1835.0}, "Intel Gaudi 3 AI accelerator white paper (April 2024): 1835 TFLOPS bf16 MME"),
}


def hpu_peak(device_name: str, precision: str):
    name = (device_name or "").upper()
    table, source = HPU_PEAKS.get(name, (None, None))
    if table is None:
        why = f": {source}" if source else ""
        return None, f"no published dense peak for {device_name!r}{why}; pass --peak-tflops"
    if precision not in table:
        return None, f"no published {precision} peak for {device_name}"
    return table[precision] * TERA, f"{source} ({name}, {precision})"
