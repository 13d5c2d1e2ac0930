"""What Gaudi's bf16 autocast lowers and what it keeps in fp32: the bridge's lists, or the files that
replace them.

The bridge (1.19 hpu_ops/autocast_helpers.h, load_list in autocast_helpers.cpp) registers its autocast
kernels from two lists: `default_lower_ops` (run in bf16) and `default_fp32_ops` (run in fp32). Either is
replaced by a file named in PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST or PT_HPU_AUTOCAST_FP32_OPS_LIST
(in 1.19 also the deprecated LOWER_LIST and FP32_LIST), one op name a line, each line taken as it is; a
file that cannot be opened leaves the default with a warning. The lists are read once, when the bridge
loads. Unlike CUDA's autocast (bench/devices/cuda/autocast.py), these lower softmax, log_softmax and
layer_norm to bf16: the same precision name, other arithmetic.
"""

from __future__ import annotations

import os

SOURCE = "Gaudi bridge 1.19 hpu_ops/autocast_helpers.h default lists"

LOWER = ("addmm", "addbmm", "batch_norm", "baddbmm", "bmm", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
         "conv_transpose2d", "conv_transpose3d", "dot", "dropout", "feature_dropout", "group_norm", "instance_norm",
         "layer_norm", "leaky_relu", "linear", "matmul", "mean", "mm", "mul", "mv", "softmax", "log_softmax",
         "scaled_dot_product_attention")
FP32 = ("acos", "addcdiv", "asin", "atan2", "bilinear", "binary_cross_entropy", "binary_cross_entropy_with_logits",
        "cdist", "cosh", "cosine_embedding_loss", "cosine_similarity", "cross_entropy_loss", "dist", "div", "divide",
        "embedding", "embedding_bag", "erfinv", "exp", "expm1", "hinge_embedding_loss", "huber_loss", "kl_div",
        "l1_loss", "log", "log10", "log1p", "log2", "logsumexp", "margin_ranking_loss", "mse_loss", "multi_margin_loss",
        "multilabel_margin_loss", "nll_loss", "pdist", "poisson_nll_loss", "pow", "reciprocal", "renorm", "rsqrt",
        "sinh", "smooth_l1_loss", "soft_margin_loss", "softplus", "tan", "topk", "triplet_margin_loss", "truediv",
        "true_divide")
# (variable, its deprecated name in 1.19, the default list)
LISTS = (("PT_HPU_AUTOCAST_LOWER_PRECISION_OPS_LIST", "LOWER_LIST", LOWER),
         ("PT_HPU_AUTOCAST_FP32_OPS_LIST", "FP32_LIST", FP32))


def _load(variable: str, deprecated: str, default: tuple, env) -> tuple[list[str], str]:
    """One list as load_list reads it: the file the variable (else its deprecated name) names, every line as
    it is; the default where neither is set or the file cannot be read."""
    name = variable if env.get(variable) is not None else deprecated
    path = env.get(name)
    if path is None:
        return sorted(default), "default"
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            return sorted({line.rstrip("\n") for line in fh}), f"{name}={path}"
    except OSError:
        return sorted(default), f"default ({name}={path} could not be read)"


def autocast_lists(env=None) -> dict:
    """The effective lists, and where each came from (Arithmetic fields)."""
    env = os.environ if env is None else env
    (lower, lower_from), (fp32, fp32_from) = (_load(v, d, default, env) for v, d, default in LISTS)
    return {"autocast_lower_ops": lower, "autocast_fp32_ops": fp32,
            "autocast_source": f"{SOURCE}; lower: {lower_from}; fp32: {fp32_from}"}
