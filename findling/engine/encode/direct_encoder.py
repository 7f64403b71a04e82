"""A faster runtime for PyLate models behind the ``Encoder`` seam, measured against ``PyLateEncoder`` (fp32).

``DirectEncoder`` loads the same folder the same way as ``PyLateEncoder`` (and so keeps its tokeniser, prefixes,
truncation, skiplist and row order: ``document_spans`` and ``query_labels`` still line up row by row), then:

* runs the backbone module and the projection head itself instead of ``ColBERT.encode``: one masked gather and
  one batched L2 normalisation per batch, the head applied to kept rows only, no per-row Python work in torch;
* folds the projection head into one matrix and bias when every layer of it is linear (PyLate ``Dense`` with an
  identity activation, with or without its residual path): ``y = x @ W.T + b``; a non-linear head (the bundled
  model's) keeps its layers, with their float32 weights packed for oneDNN (``findling.engine.encode.fused_blocks.pack_linear_layers``);
* computes the backbone in the precision ``precision`` names: ``"fp32"`` as stored (PyLate's output within
  float rounding; a BERT-family backbone's products run on weights packed once for oneDNN, with GELU and the
  residual adds done by the products: ``findling.engine.encode.fused_blocks``), ``"bf16"`` with the backbone's weights converted to bfloat16 once (``to_bf16``; a
  BERT-family backbone then encodes documents on their real tokens only, ``findling.engine.encode.fused_blocks.unpadded_rows``), ``"int8"``
  with the backbone's ``Linear`` layers quantised dynamically (weights int8, activations scaled per batch: a
  text's vectors then depend slightly on its batch), and ``"auto"`` (the default): bf16 where the CPU has it
  natively and the model keeps a per-token cosine of ``MIN_COSINE`` on ``PROBE``, else fp32
  (``choose_precision``).

Fidelity of the lossy precisions against the fp32 reference is pinned by ``tests/engine/test_fast_encoder.py``
on the test models and measured on the bundled model by ``bench/indexing.py``.
"""
from __future__ import annotations

import enum
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from findling.engine.encode.encoder import ModelInfo, TokenVectors
from findling.engine.errors import ModelError
from findling.engine.encode.pylate_encoder import PyLateEncoder

logger = logging.getLogger(__name__)

class Precision(enum.StrEnum):
    """The arithmetic of the encoder's backbone (``Config.encoder_precision``, ``FINDLING_PRECISION``)."""

    AUTO = "auto"  # bf16 where the CPU computes it natively and the model keeps MIN_COSINE on PROBE, else fp32
    FP32 = "fp32"  # as stored: PyLate's own output, the reference
    BF16 = "bf16"
    INT8 = "int8"  # dynamic quantisation of the backbone's Linear layers; never chosen by AUTO


PRECISIONS: tuple[str, ...] = tuple(p.value for p in Precision)
MIN_COSINE = 0.99  # per-token cosine against fp32 that a lossy precision must keep
PROBE = (  # encoded at load in fp32 and in the precision "auto" picked, to check that precision on this model
    "Findling reads the files in your folders, cuts their text into chunks and encodes every chunk on your "
    "computer. The csv module implements classes to read and write tabular data in CSV format; R-data.pdf "
    "describes importing and exporting data in R (spreadsheets, databases, binary files, 2023-01-31, 42 %)."
)


def choose_precision() -> Precision:
    """The precision ``"auto"`` starts from on this machine: bf16 where the CPU computes it natively (oneDNN
    reports bf16 support: AVX512-BF16 or AMX), else fp32. ``DirectEncoder`` then checks bf16 on the loaded model
    (``PROBE``) and keeps fp32 when the per-token cosine falls under ``MIN_COSINE``.

    int8 is never chosen on its own: dynamic quantisation scales activations per tensor, so BERT-family
    backbones, whose outlier channels dominate those scales, lose far more than ``MIN_COSINE`` allows
    (``bench/indexing.py`` reports its fidelity).
    """
    import torch

    try:
        native_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native_bf16 = False
    return Precision.BF16 if native_bf16 else Precision.FP32


def fold_linear_head(modules: Sequence) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One ``(W, b)`` with ``head(x) == x @ W.T + b`` for a chain of linear PyLate ``Dense`` layers, else ``None``.

    A ``Dense`` computes ``act(L x) + R x`` (``R`` the residual projection, the identity when the sizes match, or
    nothing without a residual); with ``act`` the identity that is ``(L.W + R) x + L.b``. Composing two layers
    ``(W2, b2) o (W1, b1)`` gives ``(W2 W1, W2 b1 + b2)``.
    """
    import torch

    weight, bias = None, None
    for module in modules:
        layer = _linear_of(module)
        if layer is None:
            return None
        w, b = layer
        weight = w if weight is None else w @ weight
        if bias is not None:
            bias = w @ bias
        if b is not None:
            bias = b if bias is None else bias + b
    if weight is None:
        return None
    with torch.no_grad():
        return weight.double().numpy(), None if bias is None else bias.double().numpy()


def _linear_of(module):
    """``(W, b)`` of one PyLate ``Dense`` as float64 tensors when it is linear, else ``None``."""
    import torch

    from pylate.models import Dense

    if not isinstance(module, Dense) or not isinstance(module.activation_function, torch.nn.Identity):
        return None
    with torch.no_grad():
        w = module.linear.weight.detach().double().clone()
        b = None if module.linear.bias is None else module.linear.bias.detach().double().clone()
        if getattr(module, "use_residual", False):
            residual = getattr(module, "residual", None)
            w = w + (residual.weight.detach().double() if residual is not None else torch.eye(w.shape[0], dtype=w.dtype))
    return w, b


def to_bf16(module):
    """``module`` with its weights in bfloat16, converted once: every product then runs in oneDNN's native bf16
    kernels with no per-call weight casts (indexing end to end 2.86x PyLate's encode against 2.67x under
    ``torch.autocast`` on an AVX512-BF16 CPU, per-token cosine 0.9996 against fp32 on the bundled MiniLM;
    ``bench/indexing.py``). Layer norms and softmax run in bf16 too,
    accumulating in fp32 inside the kernels; the projection head stays in fp32. BERT-family blocks then get
    oneDNN's fused kernels (``findling.engine.encode.fused_blocks``: GELU and the residual adds done by the products)."""
    import torch

    from findling.engine.encode.fused_blocks import fuse_bert_blocks

    module = module.to(torch.bfloat16)
    fuse_bert_blocks(module)
    return module


def quantise_linear_layers(module):
    """``module`` with every ``torch.nn.Linear`` replaced by a dynamically quantised int8 one (weights int8 per
    tensor, activations quantised on the fly). torch 2.10+ marks this eager API as deprecated in favour of
    torchao, which is not a dependency; the warning is silenced here, the API still works."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


class DirectEncoder(PyLateEncoder):
    """``PyLateEncoder``'s model, run directly, with a folded head and a chosen precision (implements ``Encoder``).

    Where the model declares dense pooling (``ModelInfo.dense_dim``), every text's vectors come back as
    ``TokenVectors`` with ``pooled`` set: the backbone's states mean-pooled over the text's attended tokens
    and L2-normalised, from the same forward pass (``findling.engine.encode.encoder``)."""

    POOLS = True

    def __init__(self, folder: Path | str, info: ModelInfo, *, threads: int = 1, batch_tokens: int = 8192,
                 precision: Precision | str = Precision.AUTO, workers: int = 1) -> None:
        try:
            precision = Precision(precision)
        except ValueError:
            raise ModelError(f"unknown encoder precision {precision!r}: use one of {', '.join(PRECISIONS)} "
                             "(FINDLING_PRECISION or Config.encoder_precision)") from None
        super().__init__(folder, info, threads=threads, batch_tokens=batch_tokens, workers=workers)
        self.requested = precision
        self.precision = choose_precision() if precision is Precision.AUTO else precision
        self._head = None  # (weight, bias) torch tensors when folded, else the head modules
        self._layers = None  # a bf16 BERT-family backbone's fused layers: documents then skip their padding

    def _load(self):
        """Load through ``PyLateEncoder._load``, fold the head, then set up the precision."""
        import torch

        model = super()._load()
        modules = list(model)
        folded = fold_linear_head(modules[1:])
        if folded is not None:
            weight, bias = folded
            self._head = (torch.from_numpy(weight).float(), None if bias is None else torch.from_numpy(bias).float())
        else:
            from findling.engine.encode.fused_blocks import pack_linear_layers

            self._head = torch.nn.Sequential(*modules[1:])
            pack_linear_layers(self._head)  # the head runs in float32 whatever the backbone's precision
        if self.requested is Precision.AUTO and self.precision is not Precision.FP32:
            self._check_auto_precision(model)
        elif self.precision is Precision.BF16:
            modules[0].auto_model = to_bf16(modules[0].auto_model)
        if self.precision is Precision.INT8:
            logger.warning("%s: int8 was asked for; it misses the per-token cosine of %.2f against fp32 that the "
                           "other precisions keep, so search quality drops", self.info.name, MIN_COSINE)
            modules[0].auto_model = quantise_linear_layers(modules[0].auto_model)
        if self.precision is Precision.FP32:  # last: the bf16 check above copies the plain fp32 model
            from findling.engine.encode.fused_blocks import fuse_bert_blocks

            fuse_bert_blocks(modules[0].auto_model, torch.float32)
        if self.precision is Precision.BF16:
            from findling.engine.encode.fused_blocks import packed_encoder_layers

            self._layers = packed_encoder_layers(modules[0].auto_model)
        logger.info("%s runs in %s, head %s", self.info.name, self.precision,
                    "folded into one matrix" if folded is not None else "as PyLate modules")
        return model

    def _check_auto_precision(self, model) -> None:
        """Keep the precision "auto" chose only if it holds ``MIN_COSINE`` on ``PROBE`` against fp32.

        The lossy backbone is made from a copy, so the fp32 weights stay exact when the check fails."""
        import copy

        import torch

        chosen, backbone = self.precision, model[0]
        with torch.inference_mode():
            self.precision = Precision.FP32
            reference = self._encode_batch(model, [PROBE], queries=False)[0]
            fp32_model = backbone.auto_model
            backbone.auto_model = to_bf16(copy.deepcopy(fp32_model))
            self.precision = chosen
            probe = self._encode_batch(model, [PROBE], queries=False)[0]
        low = float((reference * probe).sum(axis=1).min())
        if low < MIN_COSINE:
            logger.info("%s keeps fp32: %s reaches a per-token cosine of only %.3f", self.info.name, chosen, low)
            backbone.auto_model = fp32_model
            self.precision = Precision.FP32

    def _project(self, hidden):
        """The projection head on ``[rows, hidden]`` (or ``[batch, seq, hidden]``) token states."""
        import torch

        if isinstance(self._head, tuple):
            weight, bias = self._head
            return torch.nn.functional.linear(hidden.float(), weight, bias)
        return self._head({"token_embeddings": hidden.float()})["token_embeddings"]

    def _encode(self, texts: list[str], *, queries: bool, batch_size: int) -> list[np.ndarray]:
        """Encode in slices of ``batch_size`` texts: tokenise as PyLate does, run, mask, project, normalise. Several
        threads may run this at once (the compute threads, a query): only the tokenisation is one at a time."""
        import torch

        model = self._loaded()
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for lo in range(0, len(texts), batch_size):
                out.extend(self._encode_batch(model, texts[lo:lo + batch_size], queries=queries))
        return out

    def _encode_batch(self, model, texts: list[str], *, queries: bool) -> list[np.ndarray]:
        import torch

        with self._encode_lock:  # PyLate's tokenize sets its truncation per call (queries or documents)
            features = model.tokenize(texts, is_query=queries)
        mask = self._row_mask(model, features, queries=queries)
        attention = features["attention_mask"].bool()
        real = self._unpadded(model, features) if not queries and self._layers is not None else None
        if real is None:
            hidden = model[0](dict(features))["token_embeddings"]  # bf16 out of a bf16 backbone; the head is fp32
            kept = hidden[mask]
            real = hidden[attention] if self._pools_in_pass(model, queries) else None
        else:
            kept = real[mask[attention]]
        rows = self._project(kept)  # only the kept rows go through the head
        rows = torch.nn.functional.normalize(rows, p=2, dim=1).numpy()
        counts = mask.sum(dim=1).tolist()
        bounds = np.cumsum([0, *counts])
        pooled: list[np.ndarray | None] = [None] * len(texts)
        if self.info.dense_dim:
            pooled = (self._segment_means(real, attention) if self._pools_in_pass(model, queries)
                      else self._raw_query_pooled(model, texts))
        return [TokenVectors(rows[a:b], p) for a, b, p in zip(bounds[:-1], bounds[1:], pooled)]

    def _pools_in_pass(self, model, queries: bool) -> bool:
        """Whether this pass's attended tokens are what the dense vector pools: always for documents, and for
        queries only when the model frames them as raw text (no query prefix, no expansion tokens)."""
        if not self.info.dense_dim:
            return False
        return not queries or (model.query_prefix_id is None and not model.do_query_expansion)

    @staticmethod
    def _segment_means(real, attention) -> list[np.ndarray]:
        """The dense vector of each text: the L2-normalised mean of its attended rows (``real``: every text's
        attended rows back to back, in float32)."""
        import torch

        counts = attention.sum(dim=1)
        ids = torch.repeat_interleave(torch.arange(len(counts)), counts)
        sums = torch.zeros(len(counts), real.shape[1], dtype=torch.float32).index_add_(0, ids, real.float())
        means = sums / counts.clamp(min=1).unsqueeze(1).float()
        return list(torch.nn.functional.normalize(means, p=2, dim=1).numpy())

    def _raw_query_pooled(self, model, texts: list[str]) -> list[np.ndarray]:
        """Dense query vectors from a pass of the backbone over the raw query texts (the backbone's own
        framing, truncated at the query length), for models whose query framing adds prefix or expansion
        tokens that the backbone's sentence embedding never saw."""
        backbone = model._first_module()
        with self._encode_lock:
            saved = backbone.max_seq_length
            backbone.max_seq_length = model.query_length
            try:
                features = backbone.tokenize(texts)
            finally:
                backbone.max_seq_length = saved
        attention = features["attention_mask"].bool()
        hidden = model[0](dict(features))["token_embeddings"]
        return self._segment_means(hidden[attention], attention)

    def _unpadded(self, model, features):
        """The backbone's rows of every attended token, computed on the real tokens only
        (``findling.engine.encode.fused_blocks.unpadded_rows``), back to back; None where that does not apply
        (padding not all on the right)."""
        from findling.engine.encode.fused_blocks import unpadded_rows

        attention = features["attention_mask"]
        return unpadded_rows(model[0].auto_model, self._layers, features["input_ids"], attention,
                             features.get("token_type_ids"))

    @staticmethod
    def _row_mask(model, features, *, queries: bool):
        """Which rows ``ColBERT.encode`` keeps: documents drop padding and skiplist tokens; queries keep every
        row with query expansion, else the attended ones."""
        import torch

        attention = features["attention_mask"].bool()
        if queries:
            return torch.ones_like(attention) if model.do_query_expansion else attention
        skip = torch.tensor(sorted(set(model.skiplist)), dtype=features["input_ids"].dtype)
        return attention & ~torch.isin(features["input_ids"], skip)
