"""bridge v1.19.0 hpu/__init__.py and hpu/graphs.py: device queries, torch.hpu.synchronize, and
wrap_in_hpu_graph — exported in lazy mode only — with the bridge's caching rule: the key hashes the
call's arguments (a tensor by its shape; anything else by hash(obj)); a miss runs the Python forward
once to capture the graph; a hit copies the new inputs into the captured ones and replays without
running the Python forward, returning the same output objects. (A CPU fake cannot replay ops: it
returns the captured outputs as they are.)"""

import os
import types

import torch

from habana_frameworks import EVENTS
from habana_frameworks.torch.utils.internal import is_lazy


def device_count():
    return int(os.environ.get("FAKE_HPU_COUNT", "1"))


def get_device_name():
    return os.environ.get("FAKE_HPU_NAME", "GAUDI2")


def input_hash(obj):
    if isinstance(obj, dict):
        return input_hash(tuple(obj.items()))
    if isinstance(obj, list | tuple) and not isinstance(obj, torch.Size):
        return hash(tuple(input_hash(el) for el in obj))
    if torch.is_tensor(obj):
        return hash(tuple(obj.shape))
    return hash(obj)


def _tensors(obj):
    if torch.is_tensor(obj):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list | tuple):
        return [t for el in obj for t in _tensors(el)]
    return []


def _wrap_in_hpu_graph(module, asynchronous=False, disable_tensor_cache=False, dry_run=False, max_graphs=None):
    EVENTS.append("wrap_in_hpu_graph")
    cache, orig = {}, module.forward

    def forward(*args, **kwargs):
        key = input_hash((args, kwargs))
        if key not in cache:
            EVENTS.append("hpu_graph.capture")
            outputs = orig(*args, **kwargs)
            cache[key] = ([t.clone() for t in _tensors((args, kwargs))], outputs)
            return outputs
        EVENTS.append("hpu_graph.replay")
        captured, outputs = cache[key]
        for dst, src in zip(captured, _tensors((args, kwargs))):
            dst.copy_(src)
        return outputs

    module.forward = forward
    module._wrapped_in_hpu_graph = True
    return module


if is_lazy():
    wrap_in_hpu_graph = _wrap_in_hpu_graph


def _synchronize():
    EVENTS.append("hpu.synchronize")


torch.hpu = types.SimpleNamespace(
    synchronize=_synchronize,
    max_memory_allocated=lambda: 123 * 2**20,
    reset_peak_memory_stats=lambda: EVENTS.append("reset_peak"),
    memory_stats=lambda: {"Limit": 96 * 2**30, "InUse": 100 * 2**20, "MaxInUse": 123 * 2**20},
)
