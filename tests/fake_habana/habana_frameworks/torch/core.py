"""Fake habana_frameworks.torch.core: mark_step is logged; the lazy-mode variable is read at import,
as the real stack does."""

import os

from habana_frameworks import EVENTS

LAZY_MODE_AT_IMPORT = os.environ.get("PT_HPU_LAZY_MODE")


def mark_step(sync=False):
    EVENTS.append("mark_step")
