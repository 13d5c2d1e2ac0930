"""What CUDA autocast lowers and what it keeps in fp32, and how fp32 matmuls run.

The lists are PyTorch's "Autocast Op Reference" (torch.amp docs, "CUDA Ops that can autocast to float16"
and "... to float32"; the lower list applies to bfloat16 as to float16). softmax, log_softmax, layer_norm
and group_norm stay in fp32 here, where Gaudi's bridge lowers them (bench/devices/hpu/autocast.py).

fp32 matmuls: torch asks for TF32 through torch.backends.cuda.matmul (fp32_precision from torch 2.9,
allow_tf32 before), and TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 starts torch with TF32 matmuls on (pytorch#77114;
ATen Context.h). NVIDIA_TF32_OVERRIDE=0 makes cuBLAS run IEEE fp32 whatever torch asks (NVIDIA's
TF32 override; any other value changes nothing): the effective mode decides the MFU's peak.
"""

from __future__ import annotations

import os

SOURCE = "PyTorch Autocast Op Reference, CUDA ops (torch.amp docs)"

LOWER = ("__matmul__", "addbmm", "addmm", "addmv", "addr", "baddbmm", "bmm", "chain_matmul", "multi_dot", "conv1d",
         "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "GRUCell", "linear",
         "LSTMCell", "matmul", "mm", "mv", "prelu", "RNNCell")
FP32 = ("__pow__", "__rdiv__", "__rpow__", "__rtruediv__", "acos", "asin", "binary_cross_entropy_with_logits", "cosh",
        "cosine_embedding_loss", "cdist", "cosine_similarity", "cross_entropy", "cumprod", "cumsum", "dist", "erfinv",
        "exp", "expm1", "group_norm", "hinge_embedding_loss", "kl_div", "l1_loss", "layer_norm", "log", "log_softmax",
        "log10", "log1p", "log2", "margin_ranking_loss", "mse_loss", "multilabel_margin_loss", "multi_margin_loss",
        "nll_loss", "norm", "normalize", "pdist", "poisson_nll_loss", "pow", "prod", "reciprocal", "rsqrt", "sinh",
        "smooth_l1_loss", "soft_margin_loss", "softmax", "softmin", "softplus", "sum", "renorm", "tan",
        "triplet_margin_loss")


def autocast_lists() -> dict:
    return {"autocast_lower_ops": sorted(LOWER), "autocast_fp32_ops": sorted(FP32), "autocast_source": SOURCE}


def matmul_fp32(torch_tf32: bool, env=None) -> tuple[str, str]:
    """("ieee" | "tf32", why) for fp32 matmuls, from what torch asks and the two variables."""
    env = os.environ if env is None else env
    if env.get("NVIDIA_TF32_OVERRIDE") == "0":
        return "ieee", "NVIDIA_TF32_OVERRIDE=0: cuBLAS runs IEEE fp32 whatever torch asks"
    if env.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == "1":
        return "tf32", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 turns torch's TF32 matmuls on"
    if torch_tf32:
        return "tf32", "torch allows TF32 matmuls (torch.backends.cuda.matmul)"
    return "ieee", "torch keeps fp32 matmuls IEEE (torch.backends.cuda.matmul)"
