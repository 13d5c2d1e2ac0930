"""bridge v1.19.0 hpu/__init__.py, hpu/graphs.py and the device acquisition of
backend/synapse_helpers/device.cpp:

- Device queries and torch.hpu.synchronize. get_device_properties() prints synDeviceInfo (device.cpp
  get_device_properties): "(sramBaseAddress=..., dramBaseAddress=..., sramSize=..., dramSize=...,
  tpcEnabledMask=..., dramEnabled=..., fd=..., device_id=..., device_type=...)"; dramSize is the card's
  memory, fd this process's open device file (/dev/accel/accel<N>, N the node's minor number, which HLML
  gives as hlmlDeviceGetMinorNumber; here a file named accel<N>).
  memory_stats()'s Limit is the allocator's pool, less than the card's memory.
- One process per card, acquired at first use: HLS_MODULE_ID set -> synDeviceAcquireByModuleId; when
  that fails and HABANA_VISIBLE_MODULES is unset (and the cards are at least WORLD_SIZE) the bridge warns
  "Device acquire failed for hls_mod_id ... Proceeding without moduleid" and acquires by type (the first
  free card), so HLS_MODULE_ID no longer names the card; with HABANA_VISIBLE_MODULES set it raises
  "Device acquire failed.". Without HLS_MODULE_ID: by type.
- wrap_in_hpu_graph, exported in lazy mode only, with the bridge's caching rule (graphs.py input_hash): a
  tensor hashes by (shape, its view hash, whether hpu autocast is on), a list or tuple by its elements'
  hashes and the autocast state, anything else by (hash(obj), autocast state); a miss runs the Python
  forward once to capture (and compile) the graph; a hit copies the new inputs into the captured ones and
  replays without running the Python forward, returning the same output objects. (A CPU fake cannot
  replay ops: it returns the captured outputs as they are.)
- An allocation past the card's memory raises RuntimeError "... Allocation failed for size ...".

Cards: FAKE_HPU_CARDS, JSON [{"index", "module_id", "minor", "held"}] (held: opened by another process;
minor: its device node's number, default its index), default one free card, index 0, module 0; FAKE_HPU_COUNT overrides the count; FAKE_HPU_DRAM the card's bytes.
FAKE_HPU_DEV: the box's device directory, where a card's node is DEV/accel/accel<minor>; the processes that share
it share the cards, each held by one process at a time (a lock on its node, as the bridge's exclusive open of
/dev/accel/accel<N>), so a second process is refused a card a first holds, until it exits."""

import atexit
import fcntl
import json
import os
import shutil
import tempfile
import types

import torch

from habana_frameworks import EVENTS
from habana_frameworks.torch.utils.internal import is_lazy

CARDS = json.loads(os.environ.get("FAKE_HPU_CARDS", '[{"index": 0, "module_id": 0}]'))
DRAM = int(os.environ.get("FAKE_HPU_DRAM", str(96 * 2**30)))
POOL = DRAM - 2 * 2**30
_acquired = {}
_OWN_DEV = None


def device_count():
    return int(os.environ.get("FAKE_HPU_COUNT", str(len(CARDS))))


def get_device_name():
    return os.environ.get("FAKE_HPU_NAME", "GAUDI2")


def _dev():
    """The box's device directory: FAKE_HPU_DEV, shared by every process that sets it, else one of this process's own
    (as if each process had a box to itself)."""
    global _OWN_DEV
    if os.environ.get("FAKE_HPU_DEV"):
        return os.environ["FAKE_HPU_DEV"]
    if _OWN_DEV is None:
        _OWN_DEV = tempfile.mkdtemp(prefix="fake-dev-")
        atexit.register(shutil.rmtree, _OWN_DEV, ignore_errors=True)  # no directory left behind per process
    return _OWN_DEV


def _open(card):
    """device.cpp's acquisition: the card's node opened exclusively (here a POSIX lock on DEV/accel/accel<minor>,
    which the kernel holds for this process until it exits, whichever of its threads or imports asks again;
    another process is refused while it lives). The fd, or None where another process holds the card."""
    if card.get("held"):
        return None
    path = os.path.join(_dev(), "accel", f"accel{card.get('minor', card['index'])}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _pick():
    """(card, fd): by module ID where HLS_MODULE_ID names one, else (or on the warned fall-back) by type."""
    wanted = os.environ.get("HLS_MODULE_ID")
    if wanted is not None:
        card = next((c for c in CARDS if str(c["module_id"]) == wanted.strip()), None)
        fd = _open(card) if card is not None else None
        if fd is not None:
            return card, fd
        if "HABANA_VISIBLE_MODULES" in os.environ or len(CARDS) < int(os.environ.get("WORLD_SIZE", "1")):
            raise RuntimeError("synStatus=26 [Device already acquired] Device acquire failed.")
        print(f"Device acquire failed for hls_mod_id: {wanted}. Proceeding without moduleid.")
    for card in CARDS:
        fd = _open(card)
        if fd is not None:
            return card, fd
    raise RuntimeError("synStatus=26 [Device already acquired] Device acquire failed.")


def _acquire():
    if not _acquired:
        card, fd = _pick()
        _acquired.update(card=card, fd=fd)
        EVENTS.append(f"acquired:{card['module_id']}")
    return _acquired


def get_device_properties(device=None):
    a = _acquire()
    return (f"(sramBaseAddress=1153202979583557632, dramBaseAddress=1153203082662772736, sramSize=50331648, "
            f"dramSize={DRAM}, tpcEnabledMask=16777215, dramEnabled=1, fd={a['fd']}, device_id=0, device_type=4)")


def is_autocast_hpu_enabled():
    return torch.is_autocast_enabled("hpu")


def _view_hash(t):
    """hpu/csrc/bindings.cpp get_view_hash: 0 for a tensor that is not a view, else a hash of its strides."""
    return 0 if t._base is None else hash((t.stride(), t.storage_offset()))


def input_hash(obj):
    if isinstance(obj, dict):
        return input_hash(tuple(obj.items()))
    if isinstance(obj, list | tuple) and not isinstance(obj, torch.Size):
        return hash((tuple(input_hash(el) for el in obj), is_autocast_hpu_enabled()))
    if torch.is_tensor(obj):
        return hash((tuple(obj.shape), _view_hash(obj), is_autocast_hpu_enabled()))
    return hash((obj, is_autocast_hpu_enabled()))


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
            from habana_frameworks.torch.hpu.metrics import graph_compiled

            graph_compiled(f"hpu_graph_{len(cache)}")  # capturing compiles the graph
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
    _acquire()
    EVENTS.append("hpu.synchronize")


def allocate(nbytes: int):
    """What a tensor allocation past the pool raises (the bridge's allocator message)."""
    if nbytes > POOL:
        raise RuntimeError(f"[Rank:0] FATAL ERROR :: MODULE:PT_DEVMEM Allocation failed for size::{nbytes} "
                           f"({nbytes / 2**20:.1f})MB")


torch.hpu = types.SimpleNamespace(
    synchronize=_synchronize,
    max_memory_allocated=lambda: 123 * 2**20,
    reset_peak_memory_stats=lambda: EVENTS.append("reset_peak"),
    memory_stats=lambda: {"Limit": POOL, "InUse": 100 * 2**20, "MaxInUse": 123 * 2**20},
    get_device_properties=get_device_properties,
    is_autocast_hpu_enabled=is_autocast_hpu_enabled,
)
