"""Moving results between ranks without pickles."""

from __future__ import annotations

import json

from bench.core.errors import BenchError

MAX_PAYLOAD = 2**31 - 1  # the length travels as one int32


def gather_json(payload, device) -> list:
    """Every rank's payload (any JSON value), on every rank.

    Only int32 tensors travel, lengths and data alike: gloo and nccl carry them, and HCCL carries fp32,
    bf16, fp16, int32 and uint32 only. The Gaudi bridge re-expresses other buffers (1.19,
    backend/helpers/collective_utils.cpp getCountDatatype): int64 without PT_ENABLE_INT64_SUPPORT goes as
    fp32 of the same count, half its bytes, so the gathered values are garbage; with lazy collectives a
    uint8 buffer goes as numel / 2 bf16 values, dropping an odd last byte. So the JSON bytes are padded
    to whole 4-byte words, and each rank's true length is sent alongside."""
    import torch
    import torch.distributed as dist

    data = json.dumps(payload).encode()
    if len(data) > MAX_PAYLOAD:
        raise BenchError(f"a rank's result is {len(data)} bytes of JSON, more than the {MAX_PAYLOAD} a gather "
                         "carries; run fewer steps per repeat")
    size = torch.tensor([len(data)], dtype=torch.int32, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    words = torch.zeros(-(-max(lengths) // 4), dtype=torch.int32)
    words.view(torch.uint8)[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    padded = words.to(device)
    buffers = [torch.zeros_like(padded) for _ in lengths]
    dist.all_gather(buffers, padded)
    return [json.loads(b.cpu().view(torch.uint8).numpy().tobytes()[:n]) for b, n in zip(buffers, lengths, strict=True)]
