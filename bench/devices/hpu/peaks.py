"""Gaudi dense peak FLOP/s, for MFU. `--peak-tflops` overrides them."""

from __future__ import annotations

TERA = 1e12

# Gaudi: Intel's published dense matrix-engine figures. First-generation Gaudi (HL-205) has none
# published that we can cite, so it stays unknown rather than guessed.
HPU_PEAKS: dict[str, dict[str, float]] = {
    "GAUDI2": {"bf16": 432.0},
    "GAUDI3": {"bf16": 1835.0},
}


def hpu_peak(device_name: str, precision: str):
    name = (device_name or "").upper()
    table = HPU_PEAKS.get(name)
    if table is None:
        return None, f"no published dense peak for {device_name!r}; pass --peak-tflops"
    if precision not in table:
        return None, f"no published {precision} peak for {device_name}"
    return table[precision] * TERA, f"Intel published dense peak ({name}, {precision})"
