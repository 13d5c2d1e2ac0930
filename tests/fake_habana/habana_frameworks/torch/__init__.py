"""bridge v1.19.0 torch/__init__.py: marks the autoload as done, then a bridge built for stock PyTorch
asserts in lazy mode ("Stock PyTorch version X is not supported in Lazy mode."); the mode is fixed when
its library loads."""

import os

import habana_frameworks.autoload

habana_frameworks.autoload.is_loaded = True

import torch  # noqa: E402

from habana_frameworks.torch.utils.internal import is_lazy  # noqa: E402

STOCK_TORCH = os.environ.get("FAKE_BRIDGE_STOCK_TORCH") == "1"
if is_lazy():
    assert not STOCK_TORCH, f"Stock PyTorch version {torch.__version__} is not supported in Lazy mode."
LAZY_AT_IMPORT = is_lazy()
