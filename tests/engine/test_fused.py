"""findling.engine.encode.fused_blocks: oneDNN's fused blocks give what the unfused model gives (bf16 and fp32), and touch nothing else."""
import pytest
import torch

from findling.engine.encode.fused_blocks import LinearAddNorm, LinearGelu, SelfAttentionQKV, available, fuse_bert_blocks
from tests.model_factory import edge_backbone_config

needs_bf16 = pytest.mark.skipif(not available(), reason="this torch has no oneDNN fused bf16 linear kernels here")
needs_fp32 = pytest.mark.skipif(not available(torch.float32), reason="no oneDNN fused fp32 linear kernels here")


def tokens(vocab: int, *, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (3, 90), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 60:] = 0  # one padded text: the fused blocks must leave masking to attention as before
    return ids, mask


def cosine_min(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)[mask.bool()].min().item()


@needs_bf16
def test_bert_blocks_fused_give_the_unfused_bf16_output():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=256)
    model = BertModel(config).eval()
    ids, mask = tokens(300)
    with torch.inference_mode():
        exact = model(input_ids=ids, attention_mask=mask).last_hidden_state
        model = model.to(torch.bfloat16)
        plain = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert fuse_bert_blocks(model) == 3 * 4  # per layer: attention, the intermediate block, both output blocks
        fused = model(input_ids=ids, attention_mask=mask).last_hidden_state
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(LinearGelu) == 3 and kinds.count(LinearAddNorm) == 6 and kinds.count(SelfAttentionQKV) == 3
    assert fused.dtype == torch.bfloat16
    assert cosine_min(fused, plain, mask) >= 0.999
    assert cosine_min(fused, exact, mask) >= 0.99
    assert not torch.equal(fused, plain)  # the fused kernels did run (they round differently)


@needs_bf16
def test_other_models_and_fp32_weights_are_left_alone():
    from transformers import BertConfig, BertModel, ModernBertModel

    torch.manual_seed(0)
    fp32 = BertModel(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                intermediate_size=128)).eval()
    assert fuse_bert_blocks(fp32) == 0  # only bf16 weights are packed when bf16 is asked for
    edge = ModernBertModel(edge_backbone_config(vocab_size=300, pad_token_id=0, cls_token_id=1,
                                                sep_token_id=2)).eval().to(torch.bfloat16)
    ids, mask = tokens(300)
    with torch.inference_mode():
        before = edge(input_ids=ids, attention_mask=mask).last_hidden_state
        assert fuse_bert_blocks(edge) == 0  # a gated MLP is not a BERT block
        after = edge(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(before, after)


@needs_fp32
def test_fp32_bert_blocks_fused_give_the_unfused_output():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                 intermediate_size=256)).eval()
    ids, mask = tokens(300)
    with torch.inference_mode():
        plain = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert fuse_bert_blocks(model, torch.float32) == 3 * 4
        fused = model(input_ids=ids, attention_mask=mask).last_hidden_state
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(SelfAttentionQKV) == 3 and kinds.count(LinearGelu) == 3 and kinds.count(LinearAddNorm) == 6
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused[mask.bool()], plain[mask.bool()], atol=1e-5, rtol=1e-5)


@needs_fp32
def test_the_fp32_encoder_runs_the_fused_blocks_and_matches_pylate(tiny_model_dir):
    import numpy as np
    from pylate import models

    from findling.engine.encode.encoder import ModelInfo
    from findling.engine.encode.direct_encoder import DirectEncoder

    info = ModelInfo(name="t", source="t", path=str(tiny_model_dir), fingerprint="x", dim=48, max_tokens=512)
    encoder = DirectEncoder(tiny_model_dir, info, precision="fp32")
    texts = ["Hello, World! A short text.", "tax report " * 40]
    ours = encoder.encode_documents(texts)
    assert any(isinstance(m, LinearGelu) for m in encoder._loaded()[0].auto_model.modules())
    reference = models.ColBERT(str(tiny_model_dir), device="cpu", local_files_only=True, document_length=512)
    theirs = reference.encode(texts, is_query=False, convert_to_numpy=True, normalize_embeddings=True)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-5)


@needs_fp32
def test_packed_attention_follows_train_and_eval_and_leaves_a_cache_to_the_block():
    """The packed query/key/value block must not turn dropout on (a new module starts in training mode), and
    with a key/value cache it hands over to the block it replaced."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                 intermediate_size=128, attention_probs_dropout_prob=0.5)).eval()
    block = model.encoder.layer[0].attention.self
    packed = SelfAttentionQKV(block)
    assert not packed.training
    hidden = torch.randn(2, 20, 64)
    with torch.inference_mode():
        torch.testing.assert_close(packed(hidden)[0], block(hidden)[0], atol=1e-5, rtol=1e-5)
    cache = object()
    block.forward = lambda *args, **kwargs: ("the block's", args[2])
    with torch.inference_mode():
        assert packed(hidden)[0].shape == (2, 20, 64)  # the packed product ran, not the block
        assert packed(hidden, None, cache) == ("the block's", cache)  # only the block knows a cache


@pytest.mark.parametrize("batch, heads, length, block_bytes", [
    (3, 4, 90, 1 << 21),     # short texts: several whole texts a block
    (5, 6, 200, 200 * 200 * 2 * 4),  # four heads would fit, six do not divide by four: blocks of three heads
    (2, 5, 64, 64 * 64 * 2),  # one head a block
    (7, 4, 33, 33 * 33 * 2 * 4 * 3),  # three texts a block, the last block holds one
])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_blocked_attention_equals_attention(monkeypatch, batch, heads, length, block_bytes, mask_kind):
    from findling.engine.encode import fused_blocks as fused

    monkeypatch.setattr(fused, "BLOCK_BYTES", block_bytes)
    g = torch.Generator().manual_seed(batch * 100 + length)
    q, k, v = (torch.randn(batch, heads, length, 16, generator=g) for _ in range(3))
    keep = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    keep[0, ..., length // 3:] = False  # a padded text
    mask = {"none": None, "bool": keep,
            "float": torch.zeros(keep.shape).masked_fill_(~keep, torch.finfo(torch.float32).min)}[mask_kind]
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    out = fused.blocked_attention(q, k, v, mask, 0.3)  # [batch, length, heads, head_size]
    torch.testing.assert_close(out.transpose(1, 2), reference, atol=1e-5, rtol=1e-5)
    low = fused.blocked_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, 0.3).transpose(1, 2)
    assert low.dtype == torch.bfloat16
    assert torch.nn.functional.cosine_similarity(low.float(), reference, dim=-1).min() > 0.999


def test_blocked_attention_keeps_a_mask_that_differs_by_query():
    from findling.engine.encode.fused_blocks import blocked_attention

    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 10, 8, generator=g) for _ in range(3))
    causal = torch.ones(10, 10, dtype=torch.bool).tril().expand(2, 1, 10, 10)
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=causal, scale=0.5)
    torch.testing.assert_close(blocked_attention(q, k, v, causal, 0.5).transpose(1, 2), reference,
                               atol=1e-5, rtol=1e-5)


@needs_fp32
def test_packed_head_layers_give_the_same_vectors():
    from pylate.models import Dense

    from findling.engine.encode.fused_blocks import LinearPacked, pack_linear_layers

    torch.manual_seed(0)
    head = torch.nn.Sequential(Dense(32, 64, activation_function=torch.nn.GELU(), use_residual=True),
                               Dense(64, 8, use_residual=True)).eval()
    x = torch.randn(50, 32)
    with torch.inference_mode():
        plain = head({"token_embeddings": x})["token_embeddings"]
        assert pack_linear_layers(head) == 4  # each Dense: its linear and its residual projection
        packed = head({"token_embeddings": x})["token_embeddings"]
    assert sum(isinstance(m, LinearPacked) for m in head.modules()) == 4
    torch.testing.assert_close(packed, plain, atol=1e-5, rtol=1e-5)


def test_the_mask_bias_is_made_once_per_mask_and_follows_changes():
    from findling.engine.encode import fused_blocks as fused

    keep = torch.ones(2, 1, 6, 6, dtype=torch.bool)
    keep[1, ..., 4:] = False
    first = fused._additive_bias(keep, torch.float32)
    assert first.shape == (2, 1, 1, 6)  # padding only: one row per text
    assert fused._additive_bias(keep, torch.float32) is first  # the next layer, the same mask
    keep[0, ..., 5] = False  # changed in place: made again
    again = fused._additive_bias(keep, torch.float32)
    assert again is not first and torch.isinf(again[0, 0, 0, 5])
    assert fused._additive_bias(keep.clone(), torch.float32) is not again


@needs_bf16
def test_unpadded_rows_are_the_padded_models_real_rows():
    """The bf16 layers run on the real tokens alone give the rows the model gives them with padding; other
    models, and padding that is not all on the right, are left to the model."""
    from transformers import BertConfig, BertModel

    from findling.engine.encode.fused_blocks import packed_encoder_layers, unpadded_rows

    torch.manual_seed(0)
    config = BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=256, type_vocab_size=2)
    model = BertModel(config).eval()
    g = torch.Generator().manual_seed(5)
    ids = torch.randint(5, 300, (4, 70), generator=g)
    lengths = torch.tensor([70, 64, 9, 1])
    mask = (torch.arange(70)[None, :] < lengths[:, None]).long()
    types = (torch.arange(70)[None, :] >= 30).long().expand(4, 70)  # a second segment: its embedding counts
    with torch.inference_mode():
        exact = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        assert packed_encoder_layers(model) is None  # nothing fused yet
        model = model.to(torch.bfloat16)
        fuse_bert_blocks(model)
        padded = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        layers = packed_encoder_layers(model)
        assert layers is not None and len(layers) == 3
        rows = unpadded_rows(model, layers, ids, mask, types)
        assert rows.shape == (int(lengths.sum()), 64) and rows.dtype == torch.bfloat16
        real = mask.bool()
        cosine = torch.nn.functional.cosine_similarity
        assert cosine(rows.float(), padded[real].float(), dim=-1).min() >= 0.999
        assert cosine(rows.float(), exact[real], dim=-1).min() >= 0.99
        without_types = unpadded_rows(model, layers, ids, mask)
        assert cosine(without_types.float(), rows.float(), dim=-1)[30:].min() < 0.999  # the types were used
        left = mask.flip(1)  # padding on the left
        assert unpadded_rows(model, layers, ids, left) is None
        model.encoder.layer[1].output = torch.nn.Identity()  # a block of another kind: not this path
        assert packed_encoder_layers(model) is None
