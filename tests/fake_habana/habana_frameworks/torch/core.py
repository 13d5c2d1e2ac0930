"""bridge v1.19.0 core/step_closure.py: mark_step is @lazy_only, a no-op outside lazy mode;
`mark_step(sync=True)` is not a device sync (that is torch.hpu.synchronize)."""

import os

from habana_frameworks import EVENTS
from habana_frameworks.torch.utils.internal import is_lazy

LAZY_MODE_AT_IMPORT = os.environ.get("PT_HPU_LAZY_MODE")


def mark_step(device_str="", sync=False):
    if is_lazy():
        EVENTS.append("mark_step")
