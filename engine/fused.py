"""oneDNN's fused kernels (bf16 or float32) for the blocks of BERT-family encoders (the bundled MiniLM, BERT,
RoBERTa, XLM-R).

In bf16 on a CPU a BERT layer spends a tenth of its time outside the matrix products on work the products could
do on their way out: the exact GELU after the intermediate ``Linear`` (as slow as the product itself in bf16,
measured on an AVX512-BF16 EPYC) and the residual add before each ``LayerNorm``. oneDNN does both as post-ops of
the product (``torch.ops.mkldnn._linear_pointwise``, the kernel PyTorch's own compiler uses when it freezes a
model), with the weight packed once into oneDNN's blocked layout.

``fuse_bert_blocks`` swaps those blocks in place in a bf16 backbone. Only the block classes listed below are
touched, whose ``forward`` is known to be ``act(dense(x))`` or ``LayerNorm(dense(x) + residual)``; anything
else (ModernBERT's gated MLP, say) is left as it is. Inference only: the packed weights are plain attributes,
not parameters, and dropout (a no-op in ``eval``) is dropped.
"""
from __future__ import annotations

import functools
import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)

INTERMEDIATE_BLOCKS = frozenset({"BertIntermediate", "RobertaIntermediate", "XLMRobertaIntermediate"})
ATTENTION_BLOCKS = frozenset({"BertSelfAttention", "RobertaSelfAttention", "XLMRobertaSelfAttention"})
OUTPUT_BLOCKS = frozenset({"BertSelfOutput", "BertOutput", "RobertaSelfOutput", "RobertaOutput",
                           "XLMRobertaSelfOutput", "XLMRobertaOutput"})


@functools.cache
def available(dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether this torch has oneDNN's fused linear kernels working in ``dtype`` here (checked once per dtype,
    on a tiny product)."""
    try:
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2, dtype=dtype), None)
        x = torch.ones(1, 2, dtype=dtype)
        y = torch.ops.mkldnn._linear_pointwise(x, w, None, "gelu", [], "none")
        z = torch.ops.mkldnn._linear_pointwise.binary(x, x, w, None, "add")
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return y.shape == (1, 2) and bool(torch.allclose(z.float(), torch.full((1, 2), 3.0)))


class _Packed(nn.Module):
    """A ``Linear``'s weight packed once into oneDNN's blocked layout (in the weight's own dtype), and its bias."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        with torch.no_grad():
            self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
            self.bias = None if linear.bias is None else linear.bias.detach()


class LinearPacked(_Packed):
    """``x @ W.T + b`` with the packed weight (attention's query, key and value projections, fp32 only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


class LinearGelu(_Packed):
    """``gelu(x @ W.T + b)``, exact (erf) GELU, in one kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "gelu", [], "none")


class LinearAddNorm(_Packed):
    """``LayerNorm(x @ W.T + b + residual)``: a BERT ``*Output`` block with the add done by the product."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__(block.dense)
        self.LayerNorm = block.LayerNorm

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        summed = torch.ops.mkldnn._linear_pointwise.binary(hidden_states, input_tensor.contiguous(), self.packed,
                                                           self.bias, "add")
        return self.LayerNorm(summed)


def _exact_gelu(fn) -> bool:
    if isinstance(fn, nn.GELU):
        return fn.approximate == "none"
    return type(fn).__name__ == "GELUActivation" and getattr(fn, "act", None) is nn.functional.gelu


def fuse_bert_blocks(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Swap the known BERT-family blocks of a ``model`` whose weights are in ``dtype`` (bf16 or float32) for
    fused ones, in place; how many were swapped. In float32 attention's query, key and value projections get
    packed weights too (measured on an AVX2 CPU, fp32: 1.08-1.25x the encoder's speed, outputs equal to 1e-6;
    the bf16 path keeps the set it was measured with)."""
    if not available(dtype):
        return 0
    swaps: list[tuple[nn.Module, str, nn.Module]] = []  # (owner, attribute, new module), applied after the walk
    for parent in model.modules():
        for name, child in parent.named_children():
            kind, dense = type(child).__name__, getattr(child, "dense", None)
            if dtype == torch.float32 and kind in ATTENTION_BLOCKS:
                swaps += [(child, n, LinearPacked(getattr(child, n))) for n in ("query", "key", "value")
                          if isinstance(getattr(child, n, None), nn.Linear) and getattr(child, n).weight.dtype == dtype]
                continue
            if not isinstance(dense, nn.Linear) or dense.weight.dtype != dtype:
                continue
            if kind in INTERMEDIATE_BLOCKS and _exact_gelu(child.intermediate_act_fn):
                swaps += [(child, "dense", LinearGelu(dense)), (child, "intermediate_act_fn", nn.Identity())]
            elif kind in OUTPUT_BLOCKS and isinstance(getattr(child, "LayerNorm", None), nn.LayerNorm):
                swaps.append((parent, name, LinearAddNorm(child)))
    for owner, name, module in swaps:
        setattr(owner, name, module)
    fused = sum(isinstance(module, _Packed) for _owner, _name, module in swaps)
    logger.debug("fused %d BERT blocks for %s", fused, dtype)
    return fused
