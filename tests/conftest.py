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
