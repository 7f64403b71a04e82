"""Exact windowed attention for ModernBERT's local layers, so long chunks encode in time linear in their length.

ModernBERT (the backbone of mxbai-edge-colbert-v0-17m) alternates global layers with local ones in which a token
sees only the tokens within ``config.sliding_window`` positions of it (64 on each side for a 128-token window).
transformers computes a local layer as full ``N x N`` attention under a banded mask, so a 32k-token chunk pays for
32k x 32k scores in every layer and builds a 32k x 32k mask besides. Here a local layer cuts the sequence into
blocks of ``w = sliding_window`` tokens; each block's queries attend to the keys of that block and of its two
neighbours (``3w`` keys) under the exact band ``|i - j| <= w`` and the padding mask, which covers every key the
library's mask admits and no other. Global layers run transformers' own SDPA attention unchanged.

It plugs into transformers' attention interface under the name ``IMPLEMENTATION``: one attention function and
one mask function (which hands the layers the ``[B, 1, 1, N]`` key padding instead of an ``N x N`` mask).
``use_windowed_attention(model)`` switches every ModernBERT backbone inside ``model`` to it; other models are
left as they are, and ``backbone.config._attn_implementation = "sdpa"`` switches one back.

>>> import torch
>>> q = k = v = torch.randn(1, 2, 300, 8)
>>> out = windowed_attention(q, k, v, None, half_window=64, scaling=8 ** -0.5)
>>> tuple(out.shape)
(1, 300, 2, 8)
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

IMPLEMENTATION = "findling_windowed"
"""The name under which the attention and mask functions are registered with transformers."""

_SWITCHABLE = ("sdpa", "eager", IMPLEMENTATION)  # flash and flex kernels already skip the masked blocks


def use_windowed_attention(model: torch.nn.Module) -> int:
    """Make every ModernBERT backbone in ``model`` (a PyLate ColBERT, a ``ModernBertModel``, ...) compute its local
    layers over windows. Returns how many backbones were switched (0 for other architectures)."""
    from transformers import PreTrainedModel

    _register()
    switched = 0
    for module in model.modules():
        if not isinstance(module, PreTrainedModel) or getattr(module.config, "model_type", None) != "modernbert":
            continue
        if "sliding_attention" not in (getattr(module.config, "layer_types", None) or ()):
            continue
        current = module.config._attn_implementation
        if current not in _SWITCHABLE:
            logger.info("ModernBERT backbone uses %s attention: left as it is", current)
            continue
        if current != IMPLEMENTATION:
            # ModernBERT looks its attention function up by this name at every forward; its file fails
            # transformers' check for ``set_attn_implementation``, so the config is set directly.
            module.config._attn_implementation = IMPLEMENTATION
            switched += 1
    if switched:
        logger.info("windowed local attention on %d ModernBERT backbone(s)", switched)
    return switched


def _register() -> None:
    """Register the attention and mask functions with transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(IMPLEMENTATION, windowed_attention_forward)
    AttentionMaskInterface.register(IMPLEMENTATION, key_padding_mask)


def key_padding_mask(
    batch_size: int,
    cache_position: torch.Tensor,
    kv_length: int,
    kv_offset: int = 0,
    attention_mask: torch.Tensor | None = None,
    use_vmap: bool = False,
    **kwargs,
) -> torch.Tensor | None:
    """The mask function for ``IMPLEMENTATION``: bool ``[B, 1, 1, kv_length]`` (True = attend), or None when no key
    is padding. The band of the local layers is left to ``windowed_attention``.

    A custom mask pattern (``use_vmap``, set by transformers when a caller adds mask functions) gets the library's
    full ``[B, 1, N, kv_length]`` mask instead, which the attention function then applies as it is.
    """
    from transformers.masking_utils import prepare_padding_mask, sdpa_mask

    if use_vmap:
        return sdpa_mask(batch_size=batch_size, cache_position=cache_position, kv_length=kv_length,
                         kv_offset=kv_offset, attention_mask=attention_mask, use_vmap=use_vmap, **kwargs)
    padding = prepare_padding_mask(attention_mask, kv_length, kv_offset)
    if padding is None or bool(padding.all()):
        return None
    return padding[:, None, None, :].to(dtype=torch.bool)


def windowed_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: ``query``/``key``/``value`` ``[B, H, N, D]``, returns
    ``([B, N, H, D], None)``. Local layers (``module.sliding_window`` set) go through ``windowed_attention``;
    global layers, and any mask that is not a plain key padding, through transformers' SDPA attention."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    key_only = attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[-2] == 1)
    if getattr(module, "sliding_window", None) is None or not key_only:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    padding = None if attention_mask is None else attention_mask[:, 0, 0, :]
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    out = windowed_attention(query, key, value, padding, half_window=module.config.sliding_window,
                             scaling=scale, dropout=dropout)
    return out, None


def windowed_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    key_padding: torch.Tensor | None,
    *,
    half_window: int,
    scaling: float,
    dropout: float = 0.0,
) -> torch.Tensor:
    """Attention where query ``i`` sees key ``j`` iff ``|i - j| <= half_window`` and ``key_padding[b, j]``.

    ``query``/``key``/``value``: ``[B, H, N, D]``; ``key_padding``: bool ``[B, N]`` (True = a real token) or None.
    Returns ``[B, N, H, D]`` (the layout transformers' attention functions return). Work and memory are
    ``O(N * 3 * half_window)`` instead of ``O(N^2)``.
    """
    batch, heads, n, dim = query.shape
    w = half_window
    blocks = -(-n // w)
    q = F.pad(query, (0, 0, 0, blocks * w - n)).view(batch, heads, blocks, w, dim)
    k = _neighbour_blocks(key, w, blocks)  # [B, H, blocks, 3w, D]
    v = _neighbour_blocks(value, w, blocks)
    valid = torch.ones(batch, n, dtype=torch.bool, device=query.device) if key_padding is None else key_padding
    valid = _neighbour_blocks(valid[:, None, :, None], w, blocks)[:, 0, :, :, 0]  # [B, blocks, 3w]
    offsets = torch.arange(3 * w, device=query.device)[None, :] - w - torch.arange(w, device=query.device)[:, None]
    mask = (offsets.abs() <= w)[None, None] & valid[:, :, None, :]  # [B, blocks, w, 3w]
    out = F.scaled_dot_product_attention(
        _fold(q), _fold(k), _fold(v), attn_mask=mask.reshape(batch * blocks, 1, w, 3 * w),
        dropout_p=dropout, scale=scaling,
    )  # [B * blocks, H, w, D]
    out = out.view(batch, blocks, heads, w, dim).permute(0, 1, 3, 2, 4).reshape(batch, blocks * w, heads, dim)
    return out[:, :n]


def _neighbour_blocks(x: torch.Tensor, w: int, blocks: int) -> torch.Tensor:
    """``[B, H, N, D]`` -> ``[B, H, blocks, 3w, D]``: block ``i`` holds rows ``(i - 1) * w`` to ``(i + 2) * w``,
    zero (or False) where those fall outside ``0 .. N - 1``."""
    batch, heads, n, dim = x.shape
    padded = F.pad(x, (0, 0, w, (blocks + 1) * w - n)).view(batch, heads, blocks + 2, w, dim)
    return torch.cat([padded[:, :, :-2], padded[:, :, 1:-1], padded[:, :, 2:]], dim=3)


def _fold(x: torch.Tensor) -> torch.Tensor:
    """``[B, H, blocks, L, D]`` -> ``[B * blocks, H, L, D]``: each block becomes one attention problem."""
    batch, heads, blocks, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch * blocks, heads, length, dim)
