"""engine.fused: oneDNN's fused blocks give what the unfused model gives (bf16 and fp32), and touch nothing else."""
import pytest
import torch

from engine.fused import LinearAddNorm, LinearGelu, available, fuse_bert_blocks
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
        assert fuse_bert_blocks(model) == 3 * 3  # per layer: the intermediate block and both output blocks
        fused = model(input_ids=ids, attention_mask=mask).last_hidden_state
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(LinearGelu) == 3 and kinds.count(LinearAddNorm) == 6
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

    from engine.fused import LinearPacked

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                 intermediate_size=256)).eval()
    ids, mask = tokens(300)
    with torch.inference_mode():
        plain = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert fuse_bert_blocks(model, torch.float32) == 3 * 6  # + query, key and value per layer
        fused = model(input_ids=ids, attention_mask=mask).last_hidden_state
    kinds = [type(m) for m in model.modules()]
    assert kinds.count(LinearPacked) == 9 and kinds.count(LinearGelu) == 3 and kinds.count(LinearAddNorm) == 6
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused[mask.bool()], plain[mask.bool()], atol=1e-5, rtol=1e-5)


@needs_fp32
def test_the_fp32_encoder_runs_the_fused_blocks_and_matches_pylate(tiny_model_dir):
    import numpy as np
    from pylate import models

    from engine.encoder import ModelInfo
    from engine.fast_encoder import DirectEncoder

    info = ModelInfo(name="t", source="t", path=str(tiny_model_dir), fingerprint="x", dim=48, max_tokens=512)
    encoder = DirectEncoder(tiny_model_dir, info, precision="fp32")
    texts = ["Hello, World! A short text.", "tax report " * 40]
    ours = encoder.encode_documents(texts)
    assert any(isinstance(m, LinearGelu) for m in encoder._loaded()[0].auto_model.modules())
    reference = models.ColBERT(str(tiny_model_dir), device="cpu", local_files_only=True, document_length=512)
    theirs = reference.encode(texts, is_query=False, convert_to_numpy=True, normalize_embeddings=True)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-5)
