"""bridge v1.19.0 distributed/hccl/__init__.py: importing it runs _setup_module_id, which pins rank r to
module ID r, or to entry r of HABANA_VISIBLE_MODULES, unless HLS_MODULE_ID is set or there is one rank;
and it registers the "hccl" process group, which carries buffers as the bridge's C++ does:

- Data types (backend/helpers/collective_utils.cpp, hcclDataType / getHCCLDataType): uint8, int8, bool,
  fp64, fp32, fp16, bf16, int32, int64; any other dtype raises "Input tensor data type is not supported
  for HCCL process group". HCCL itself carries fp32, bf16, fp16, int32, uint32 only, so getCountDatatype
  re-expresses buffers as fp32 or bf16 counts.
- Which process group: eager mode loads _hccl_eager_C (ProcessGroupEagerHCCL,
  always_support_int64_ = true; an odd-length byte buffer is padded by one byte, resizeOddTensor);
  lazy mode loads _hccl_C (ProcessGroupHCCL); lazy mode with PT_HPU_ENABLE_LAZY_COLLECTIVES=true loads
  _hccl_lazy_C (habana_kernels/hccl_kernels.cpp). The mode is the bridge's own (utils/internal.py
  is_lazy: PT_HPU_LAZY_MODE, else the release's default), so PT_HPU_LAZY_MODE unset means eager on a
  release whose default is eager.
- int64 without int64 support (the lazy library reads PT_ENABLE_INT64_SUPPORT, unset by default;
  common/lazy/utils.cpp IsInt64Supported): element size taken as 4, sent as `numel` fp32 values, i.e.
  the first half of the buffer's bytes, packed one rank after the other into a gather buffer made by
  newLikeFlat (uninitialised memory: here 0xFF bytes); each output then reads 8-byte elements of it.
- Lazy collectives, uint8/int8 (hccl_kernels.cpp getCountDatatype): numel / 2 bf16 values; an odd
  last byte is not sent and that byte of each output keeps what it held.

A CPU fake: the group is gloo underneath and is registered for cpu tensors (the real one for hpu
tensors only); all_gather, all_reduce and broadcast called through torch.distributed are checked and
carried as above."""
import os

import torch
import torch.distributed as dist

from habana_frameworks import EVENTS
from habana_frameworks.torch.utils.internal import is_lazy

_SUPPORTED = {torch.uint8, torch.int8, torch.bool, torch.float64, torch.float32, torch.float16, torch.bfloat16,
              torch.int32, torch.int64}
_BYTES = {torch.uint8, torch.int8, torch.bool}


def _setup_module_id(local_rank=-1, world_size=1):
    if "HLS_MODULE_ID" in os.environ:
        return
    if local_rank == -1 or world_size == 1:
        return
    if "HABANA_VISIBLE_MODULES" in os.environ:
        visible = os.environ["HABANA_VISIBLE_MODULES"].split(",")
        assert local_rank < len(visible), "There is not enough devices available for training."
        os.environ["HLS_MODULE_ID"] = visible[local_rank]
        return
    os.environ["HLS_MODULE_ID"] = str(local_rank)


def _flag(name):
    return os.environ.get(name, "false").lower() in ("true", "1")


def _library():
    if not is_lazy():
        return "eager"
    return "lazy_collectives" if _flag("PT_HPU_ENABLE_LAZY_COLLECTIVES") else "lazy"


def _check(tensor):
    if tensor.dtype not in _SUPPORTED:
        raise RuntimeError(f"Input tensor data type is not supported for HCCL process group: {tensor.dtype}")


def _sent_bytes(tensor) -> int:
    """How many bytes of this rank's buffer HCCL carries (getCountDatatype)."""
    n = tensor.numel() * tensor.element_size()
    if _library() == "eager":
        return n
    if tensor.dtype == torch.int64 and not _flag("PT_ENABLE_INT64_SUPPORT"):
        return n // 2
    if tensor.dtype in (torch.uint8, torch.int8) and _library() == "lazy_collectives":
        return n // 2 * 2
    return n


def _hccl(group) -> bool:
    return dist.get_backend(group) == "hccl"


_real_all_gather, _real_all_reduce, _real_broadcast = dist.all_gather, dist.all_reduce, dist.broadcast


def all_gather(tensor_list, tensor, group=None, async_op=False):
    if not _hccl(group):
        return _real_all_gather(tensor_list, tensor, group, async_op)
    _check(tensor)
    k = _sent_bytes(tensor)
    mine = tensor.contiguous().view(-1).view(torch.uint8)[:k].clone()
    parts = [torch.empty_like(mine) for _ in tensor_list]
    _real_all_gather(parts, mine, group)
    full = tensor.numel() * tensor.element_size()
    if k < full and tensor.dtype == torch.int64:  # packed one after the other into uninitialised memory
        flat = torch.full((full * len(parts),), 0xFF, dtype=torch.uint8)
        flat[: k * len(parts)] = torch.cat(parts)
        for r, out in enumerate(tensor_list):
            out.view(-1).view(torch.uint8).copy_(flat[r * full:(r + 1) * full])
        return None
    for out, part in zip(tensor_list, parts):
        out.view(-1).view(torch.uint8)[:k].copy_(part)  # bytes past k keep what they held
    return None


def all_reduce(tensor, op=dist.ReduceOp.SUM, group=None, async_op=False):
    if _hccl(group):
        _check(tensor)
    return _real_all_reduce(tensor, op, group, async_op)


def broadcast(tensor, src, group=None, async_op=False):
    if _hccl(group):
        _check(tensor)
    return _real_broadcast(tensor, src, group, async_op)


def _create_process_group_hccl(store, rank, size, timeout):
    return dist.ProcessGroupGloo(store, rank, size, timeout)


if "hccl" not in dist.Backend.backend_list:
    dist.Backend.register_backend("hccl", _create_process_group_hccl, devices=["cpu"])
    dist.all_gather, dist.all_reduce, dist.broadcast = all_gather, all_reduce, broadcast

EVENTS.append("hccl.import")
_setup_module_id(int(os.environ.get("LOCAL_RANK", -1)), int(os.environ.get("WORLD_SIZE", 1)))
