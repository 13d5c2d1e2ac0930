"""Fake habana_frameworks.torch.hpu: device queries, HPU graphs, and the torch.hpu namespace."""

import types

import torch

from habana_frameworks import EVENTS

DEVICE_COUNT = 1
DEVICE_NAME = "GAUDI2"


def device_count():
    return DEVICE_COUNT


def get_device_name():
    return DEVICE_NAME


def wrap_in_hpu_graph(model):
    EVENTS.append("wrap_in_hpu_graph")
    model._wrapped_in_hpu_graph = True
    return model


def _synchronize():
    EVENTS.append("hpu.synchronize")


torch.hpu = types.SimpleNamespace(
    synchronize=_synchronize,
    max_memory_allocated=lambda: 123 * 2**20,
    reset_peak_memory_stats=lambda: EVENTS.append("reset_peak"),
    memory_stats=lambda: {"Limit": 96 * 2**30, "InUse": 100 * 2**20, "MaxInUse": 123 * 2**20},
)
