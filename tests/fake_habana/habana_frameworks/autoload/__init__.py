"""bridge v1.19.0 autoload/__init__.py: the "torch.backends" entry point (python_packages/setup.py:
device_backend = habana_frameworks.autoload:__autoload) that torch >= 2.5 calls at `import torch`
(torch._import_device_backends, which wraps any error in RuntimeError "Failed to load the backend
extension: device_backend. You can disable extension auto-loading with TORCH_DEVICE_BACKEND_AUTOLOAD=0.").
PT_HPU_AUTOLOAD=1 turns it on, 0 off; unset, it is off in lazy mode (PT_HPU_LAZY_MODE unset counts as 1)."""
import os

is_loaded = False


def is_autoload_enabled():
    autoload_env = os.getenv("PT_HPU_AUTOLOAD", "-1")
    if autoload_env == "1":
        return True
    if autoload_env == "0":
        return False
    if os.getenv("PT_HPU_LAZY_MODE", "1") == "1":
        return False
    return True


def __autoload():
    global is_loaded
    if is_loaded or not is_autoload_enabled():
        return
    import habana_frameworks.torch  # noqa: F401
