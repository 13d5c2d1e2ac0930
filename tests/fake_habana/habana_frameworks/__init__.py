"""A fake of Intel Gaudi's PyTorch bridge (habana_frameworks) for bench's tests, following the bridge's
published source, HabanaAI/gaudi-pytorch-bridge tag v1.19.0 (python_packages/habana_frameworks/...),
and docs.habana.ai for what changed after it. Each module names the file it follows.

Set before import: FAKE_BRIDGE_RELEASE (default 1.23.0; up to 1.19 the lazy mode is the default),
FAKE_BRIDGE_STOCK_TORCH=1 (a bridge built for stock PyTorch), FAKE_HPU_COUNT, FAKE_HPU_NAME, FAKE_HPU_CARDS
and FAKE_HPU_DRAM (torch/hpu/__init__.py), FAKE_HPU_COMPILE_US (torch/hpu/metrics.py). Its dist-info
(habana_torch_plugin-1.23.0.dist-info) gives the release to importlib.metadata and registers the
"torch.backends" autoload entry point (autoload/__init__.py).
Every call the tests look for is appended to EVENTS."""

EVENTS = []
