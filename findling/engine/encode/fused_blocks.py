"""oneDNN's fused kernels (bf16 or float32) for the blocks of BERT-family encoders (the bundled MiniLM, BERT,
RoBERTa, XLM-R).

On a CPU a BERT layer spends time outside the matrix products on work the products can do on their way out:
the exact GELU after the intermediate ``Linear`` and the residual add before each ``LayerNorm``. oneDNN does both as post-ops of
the product (``torch.ops.mkldnn._linear_pointwise``, the kernel PyTorch's own compiler uses when it freezes a
model), with the weight packed once into oneDNN's blocked layout.

The self-attention's query, key and value projections run as one product with the three weights packed side by
side (``SelfAttentionQKV``), and in bf16 attention itself runs a few heads at a time (``blocked_attention``) on
oneDNN's batched products instead of PyTorch's CPU flash-attention kernel, which is slow at BERT's head size.

In bf16, once every block of a BERT-family model is swapped, ``unpadded_rows`` runs its layers on the real
tokens of a batch alone, packed back to back, attention text by text over each text's own length: no padded
row is computed and no mask is added (how the encoder runs documents).

``fuse_bert_blocks`` swaps those blocks in place in a bf16 (or float32) backbone. Only the block classes listed
below are touched, whose ``forward`` is known to be ``act(dense(x))``, ``LayerNorm(dense(x) + residual)`` or
attention over ``query(x)``, ``key(x)``, ``value(x)``; anything else (ModernBERT's gated MLP, say) is left as
it is. Inference only: the packed weights are plain attributes, not parameters, and dropout (a no-op in
``eval``) is dropped.
"""
from __future__ import annotations

import functools
import logging
import sys
import threading
import weakref

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


class SelfAttentionQKV(nn.Module):
    """A BERT-family self-attention block whose query, key and value projections run as one product with one
    packed ``[3 * hidden, hidden]`` weight; the heads are views of its output. With ``blocked`` (the bf16 path)
    attention runs in ``blocked_attention``, else in the attention function the model is configured with (SDPA
    by default), as the block itself does, so the fp32 path stays equal to the library's output. With a key/value cache (a decoder use, never an encoder's) the
    original block runs instead."""

    def __init__(self, block: nn.Module, *, blocked: bool = True) -> None:
        super().__init__()
        self.block = block
        with torch.no_grad():
            weight = torch.cat([getattr(block, n).weight.detach() for n in ("query", "key", "value")])
            biases = [getattr(block, n).bias for n in ("query", "key", "value")]
            bias = None if any(b is None for b in biases) else torch.cat([b.detach() for b in biases])
            # blocked: attention's scale goes into the query rows of the product, saving a pass over the queries
            self.scaling = 1.0 if blocked else block.scaling
            if blocked:
                rows = weight.shape[0] // 3
                weight[:rows] = (weight[:rows].float() * block.scaling).to(weight.dtype)
                if bias is not None:
                    bias[:rows] = (bias[:rows].float() * block.scaling).to(bias.dtype)
            self.bias = bias
            self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, None)
        self.head_size = block.attention_head_size
        self.train(block.training)  # a new module starts in training mode, which would turn attention dropout on
        self.blocked = blocked
        self.eager = getattr(sys.modules[type(block).__module__], "eager_attention_forward", None)

    def project(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``[..., 3 * hidden]``: query, key and value side by side (heads within each) in one packed product."""
        return torch.ops.mkldnn._linear_pointwise(hidden_states, self.packed, self.bias, "none", [], "")

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                past_key_values=None, cache_position=None, **kwargs):
        if past_key_values is not None or self.eager is None:
            return self.block(hidden_states, attention_mask, past_key_values, cache_position, **kwargs)
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

        *lead, _ = hidden_states.shape
        qkv = self.project(hidden_states)
        # [..., 3 * hidden] -> three [batch, heads, seq, head_size] views, as the block's own transposes give
        query, key, value = qkv.view(*lead, 3, -1, self.head_size).movedim(-3, 0).transpose(-2, -3).unbind(0)
        if self.blocked and not self.training and not kwargs.get("output_attentions"):
            mask = attention_mask
            if mask is None or (mask.dim() == 4 and mask.shape[1] == 1):
                return blocked_attention(query, key, value, mask, self.scaling).view(*lead, -1), None
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.block.config._attn_implementation, self.eager)
        out, weights = attention(self.block, query, key, value, attention_mask,
                                 dropout=0.0 if not self.training else self.block.dropout.p,
                                 scaling=self.scaling, **kwargs)
        return out.reshape(*lead, -1).contiguous(), weights


class LinearPacked(_Packed):
    """``x @ W.T + b`` with the packed weight: an ``nn.Linear`` for inference."""

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


BLOCK_BYTES = 12 << 20  # attention scores per block of ``blocked_attention``: all heads of two texts of 480 tokens
_scratch = threading.local()  # per thread: the score buffer, kept (fresh memory costs page faults); the last mask bias


def blocked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                      scale: float) -> torch.Tensor:
    """``softmax(query key^T * scale + mask) value`` over ``[batch, heads, seq, head_size]`` tensors, a block of
    texts at a time (or a group of heads of one text, for long texts), so that each block's scores stay in the
    cache. Returns ``[batch, seq, heads, head_size]``, contiguous.

    ``mask`` is what transformers hands SDPA: ``None``, a boolean mask (True: attend) or an additive float mask,
    broadcastable to ``[batch, 1, seq, seq]``.

    Why: PyTorch's CPU flash-attention kernel is slow at BERT's head size of 32, far below oneDNN's batched
    products (``bench/floor.py`` times both). Per block: one batched product into a score
    buffer the thread keeps, the mask added in place, softmax in place, one batched product into the output:
    four parallel regions a block, few and large, since every region costs a wake-up of torch's worker threads
    (and more once two threads have run torch: the OpenMP runtime then stops spinning between regions).
    Scores are rounded to the inputs'
    dtype (bf16) before the softmax, as oneDNN's products give them; the per-token cosine of the encoder's output
    against fp32 is checked by ``tests/engine/test_fused.py`` and ``bench/indexing.py``.
    """
    batch, heads, length, _ = query.shape
    keys = key.shape[-2]
    per_head = length * keys * query.element_size()
    group = _heads_per_block(heads, per_head)
    seqs = 1 if group < heads else max(1, min(batch, BLOCK_BYTES // (per_head * heads)))
    bias = None if mask is None else _additive_bias(mask, query.dtype)
    if bias is not None and bias.shape[0] == 1:
        bias = bias.expand(batch, *bias.shape[1:])
    buffer = _score_buffer(seqs * group * length * keys, query.dtype).view(seqs, group, length, keys)
    out = torch.empty(batch, heads, length, value.shape[-1], dtype=value.dtype)
    scaled = query * scale if scale != 1.0 else query
    keys_t = key.transpose(-1, -2)
    for b0 in range(0, batch, seqs):
        b1 = min(batch, b0 + seqs)
        for h0 in range(0, heads, group):
            h1 = h0 + group
            _attend(scaled[b0:b1, h0:h1], keys_t[b0:b1, h0:h1], value[b0:b1, h0:h1], buffer[:b1 - b0],
                    out[b0:b1, h0:h1], None if bias is None else bias[b0:b1])
    return out.transpose(1, 2).contiguous()


def _heads_per_block(heads: int, per_head_bytes: int) -> int:
    """How many heads' scores (``per_head_bytes`` each) one block holds within ``BLOCK_BYTES``: a divisor of
    ``heads``, at least 1."""
    group = max(1, min(heads, BLOCK_BYTES // per_head_bytes))
    while heads % group:
        group -= 1
    return group


def _attend(query: torch.Tensor, keys_t: torch.Tensor, value: torch.Tensor, scores: torch.Tensor,
            out: torch.Tensor, bias: torch.Tensor | None = None) -> None:
    """``out = softmax(query keys_t + bias) value`` for one block: the scores go into ``scores`` (a view of the
    thread's buffer, ``[..., queries, keys]``), the mask is added and the softmax taken there in place."""
    torch.matmul(query, keys_t, out=scores)
    if bias is not None:
        scores += bias
    torch.ops.aten._softmax.out(scores, -1, False, out=scores)
    torch.matmul(scores, value, out=out)


def _score_buffer(elements: int, dtype: torch.dtype) -> torch.Tensor:
    """This thread's flat score buffer of at least ``elements`` in ``dtype`` (kept between calls)."""
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.dtype != dtype or buffer.numel() < elements:
        buffer = _scratch.buffer = torch.empty(elements, dtype=dtype)
    return buffer[:elements]


def _additive_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``mask`` as an additive bias in ``dtype`` (-inf where a boolean mask is False), one row per text when
    every query row of it is the same (padding only, what transformers gives an encoder). The last one made on
    this thread is kept for the next layer, which is handed the same mask tensor (each of an encoder's compute
    threads runs batches of its own)."""
    last = getattr(_scratch, "bias", None)
    version = -1 if mask.is_inference() else mask._version  # inference tensors keep no version counter
    if last is not None and last[0]() is mask and last[1] == version and last[2] == dtype:
        return last[3]
    reduced = mask
    if mask.shape[-2] > 1 and torch.equal(mask, mask[..., :1, :].expand_as(mask)):
        reduced = mask[..., :1, :]
    bias = (torch.zeros(reduced.shape, dtype=dtype).masked_fill_(~reduced, float("-inf"))
            if reduced.dtype == torch.bool else reduced.to(dtype))
    _scratch.bias = (weakref.ref(mask), version, dtype, bias)
    return bias


def _plain_qkv(block: nn.Module, dtype: torch.dtype) -> bool:
    """Whether an attention block has the three ``Linear`` projections in ``dtype`` that ``SelfAttentionQKV``
    packs, and the attributes its forward reads."""
    layers = [getattr(block, n, None) for n in ("query", "key", "value")]
    return (all(isinstance(x, nn.Linear) and x.weight.dtype == dtype for x in layers)
            and all(hasattr(block, a) for a in ("attention_head_size", "scaling", "config", "dropout")))


def _exact_gelu(fn) -> bool:
    if isinstance(fn, nn.GELU):
        return fn.approximate == "none"
    return type(fn).__name__ == "GELUActivation" and getattr(fn, "act", None) is nn.functional.gelu


def fuse_bert_blocks(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Swap the known BERT-family blocks of a ``model`` whose weights are in ``dtype`` (bf16 or float32) for
    fused ones, in place; how many were swapped: per layer the self-attention (query, key and value in one
    product), the intermediate block and both output blocks."""
    if not available(dtype):
        return 0
    swaps: list[tuple[nn.Module, str, nn.Module]] = []  # (owner, attribute, new module), applied after the walk
    for parent in model.modules():
        for name, child in parent.named_children():
            kind, dense = type(child).__name__, getattr(child, "dense", None)
            if kind in ATTENTION_BLOCKS:
                if _plain_qkv(child, dtype):
                    swaps.append((parent, name, SelfAttentionQKV(child, blocked=dtype == torch.bfloat16)))
                continue
            if not isinstance(dense, nn.Linear) or dense.weight.dtype != dtype:
                continue
            if kind in INTERMEDIATE_BLOCKS and _exact_gelu(child.intermediate_act_fn):
                swaps += [(child, "dense", LinearGelu(dense)), (child, "intermediate_act_fn", nn.Identity())]
            elif kind in OUTPUT_BLOCKS and isinstance(getattr(child, "LayerNorm", None), nn.LayerNorm):
                swaps.append((parent, name, LinearAddNorm(child)))
    for owner, name, module in swaps:
        setattr(owner, name, module)
    fused = sum(isinstance(module, (_Packed, SelfAttentionQKV)) for _owner, _name, module in swaps)
    logger.debug("fused %d BERT blocks for %s", fused, dtype)
    return fused


def pack_linear_layers(module: nn.Module, dtype: torch.dtype = torch.float32) -> int:
    """Swap every ``nn.Linear`` in ``module`` whose weight is in ``dtype`` for ``LinearPacked``, in place; how many.
    For a projection head run in float32 (PyLate ``Dense`` layers call their ``linear`` and ``residual`` as
    plain modules), which a packed product runs faster than ``torch.nn.functional.linear``."""
    if not available(dtype):
        return 0
    swaps = [(parent, name, LinearPacked(child)) for parent in module.modules()
             for name, child in parent.named_children()
             if type(child) is nn.Linear and child.weight.dtype == dtype]
    for owner, name, packed in swaps:
        setattr(owner, name, packed)
    return len(swaps)


def packed_encoder_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers of a BERT-family ``model`` whose every block ``fuse_bert_blocks`` swapped for the bf16 path
    (packed query/key/value with blocked attention, GELU and add-and-norm products), which ``unpadded_rows`` can
    run on the texts' own tokens only; None for any other model."""
    encoder, embeddings = getattr(model, "encoder", None), getattr(model, "embeddings", None)
    layers = list(getattr(encoder, "layer", None) or [])
    config = getattr(model, "config", None)
    if not layers or embeddings is None or config is None or getattr(config, "is_decoder", False):
        return None
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    for layer in layers:
        attention, intermediate = getattr(layer, "attention", None), getattr(layer, "intermediate", None)
        if getattr(layer, "crossattention", None) is not None or attention is None or intermediate is None:
            return None
        qkv = getattr(attention, "self", None)
        if not (isinstance(qkv, SelfAttentionQKV) and qkv.blocked and not qkv.training):
            return None
        if not (isinstance(getattr(attention, "output", None), LinearAddNorm)
                and isinstance(getattr(intermediate, "dense", None), LinearGelu)
                and isinstance(getattr(intermediate, "intermediate_act_fn", None), nn.Identity)
                and isinstance(getattr(layer, "output", None), LinearAddNorm)):
            return None
    return layers


def unpadded_rows(model: nn.Module, layers: list[nn.Module], input_ids: torch.Tensor,
                  attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor | None:
    """The last hidden states of the real tokens of a right-padded batch, ``[real tokens, hidden]`` in row order
    (``last_hidden_state[attention_mask.bool()]``), computed without the padding: after the embeddings every
    product runs on the real tokens alone, packed back to back, and attention runs text by text over each text's
    own length, so no mask is added and no padded row is computed.
    None when the padding is not all on the right (the caller then runs the model as it is).

    ``layers``: ``packed_encoder_layers(model)``. Same arithmetic as the bf16 path through the blocks (the rows
    agree with it to bf16 rounding; ``tests/engine/test_fused.py``)."""
    valid = attention_mask.bool()
    lengths = valid.sum(dim=1)
    if not torch.equal(valid, torch.arange(valid.shape[1])[None, :] < lengths[:, None]):
        return None
    embedded = model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    rows = embedded[valid]  # [tokens, hidden]
    bounds = [0, *torch.cumsum(lengths, 0).tolist()]
    for layer in layers:
        attention = layer.attention
        qkv = attention.self
        context = _attention_by_text(qkv.project(rows), bounds, qkv.head_size, qkv.scaling)
        rows = attention.output(context, rows)
        rows = layer.output(layer.intermediate(rows), rows)
    return rows


def _attention_by_text(mixed: torch.Tensor, bounds: list[int], head_size: int, scale: float) -> torch.Tensor:
    """Self-attention of each text over its own rows: ``mixed`` is ``[tokens, 3 * hidden]`` (query, key and value
    side by side, heads within each), texts at ``bounds``; returns ``[tokens, hidden]``. All heads of a text form
    one block of scores (a group of heads for a text too long for ``BLOCK_BYTES``)."""
    tokens = mixed.shape[0]
    heads = mixed.shape[1] // (3 * head_size)
    parts = mixed.view(tokens, 3, heads, head_size)
    out = torch.empty(tokens, heads * head_size, dtype=mixed.dtype)
    by_head = out.view(tokens, heads, head_size)
    for start, end in zip(bounds[:-1], bounds[1:]):
        length = end - start
        if length == 0:
            continue
        group = _heads_per_block(heads, length * length * mixed.element_size())
        query, key, value = (parts[start:end, i].transpose(0, 1) for i in range(3))  # [heads, length, size]
        if scale != 1.0:
            query = query * scale
        scores = _score_buffer(group * length * length, mixed.dtype).view(group, length, length)
        for h0 in range(0, heads, group):
            h1 = h0 + group
            _attend(query[h0:h1], key[h0:h1].transpose(-1, -2), value[h0:h1], scores,
                    by_head[start:end, h0:h1].transpose(0, 1))
    return out
