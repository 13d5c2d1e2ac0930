"""is_lazy(): bridge v1.19.0 utils/internal.py reads os.getenv("PT_HPU_LAZY_MODE", "1") != "0"; later
bridges (and docs.habana.ai "Runtime Environment Variables": default 0, lazy "a legacy fallback")
read the default "0"."""

import os

RELEASE = os.environ.get("FAKE_BRIDGE_RELEASE", "1.23.0")
DEFAULT_LAZY = "1" if tuple(int(x) for x in RELEASE.split(".")[:2]) <= (1, 19) else "0"


def is_lazy() -> bool:
    return os.getenv("PT_HPU_LAZY_MODE", DEFAULT_LAZY) != "0"
