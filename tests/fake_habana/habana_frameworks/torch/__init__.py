"""bridge v1.19.0 torch/__init__.py: a bridge built for stock PyTorch asserts at import in lazy mode
("Stock PyTorch version X is not supported in Lazy mode."); the mode is fixed when its library loads."""

import os

import torch

from habana_frameworks.torch.utils.internal import is_lazy

STOCK_TORCH = os.environ.get("FAKE_BRIDGE_STOCK_TORCH") == "1"
if is_lazy():
    assert not STOCK_TORCH, f"Stock PyTorch version {torch.__version__} is not supported in Lazy mode."
LAZY_AT_IMPORT = is_lazy()
