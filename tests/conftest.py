import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def cpu_cfg(tmp_path):
    from bench.config import RunConfig

    return RunConfig(device="cpu", preset="tiny", out_dir=str(tmp_path), steps=4, warmup=1,
                     sample_hz=0).resolved()


@pytest.fixture
def no_accelerators(monkeypatch):
    """This machine as one without a GPU or Gaudi, whatever it really has: torch sees no CUDA device,
    habana_frameworks, pynvml and pyhlml are not importable, nvidia-smi and hl-smi are not on PATH.
    Tests that assert how bench behaves without an accelerator use it, so they pass on an
    accelerator box too."""
    import importlib.util
    import shutil

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    real_find_spec, real_which = importlib.util.find_spec, shutil.which
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] == "habana_frameworks"
                        else real_find_spec(name, *a, **k))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in ("nvidia-smi", "hl-smi")
                        else real_which(name, *a, **k))
    for name in ("pynvml", "pyhlml"):
        monkeypatch.setitem(sys.modules, name, None)  # `import pynvml` raises ImportError
