"""Windowed local attention: the same outputs as transformers' masked full attention, on a random model of the
Ettin-17m shape, with padding in the batch, and through the real encoder."""
from __future__ import annotations

import copy
import doctest

import numpy as np
import pytest
import torch

import findling.engine.encode.windowed_attention
from findling.engine.encode.windowed_attention import IMPLEMENTATION, use_windowed_attention, windowed_attention
from tests.model_factory import edge_backbone_config, generated_text

TOLERANCE = 1e-4


def band_attention(query, key, value, key_padding, *, half_window):
    """The reference: full attention under the explicit mask ``|i - j| <= half_window`` and the key padding."""
    n = query.shape[2]
    positions = torch.arange(n)
    mask = (positions[:, None] - positions[None, :]).abs() <= half_window
    mask = mask[None, None] & key_padding[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)
    return out.transpose(1, 2)


@pytest.fixture(scope="module")
def backbones():
    """(library, windowed): two copies of one random ModernBERT of the Ettin-17m shape."""
    from transformers import ModernBertModel

    torch.manual_seed(0)
    library = ModernBertModel(edge_backbone_config(vocab_size=600, pad_token_id=3, cls_token_id=1, sep_token_id=2))
    library.eval()
    windowed = copy.deepcopy(library)
    assert use_windowed_attention(windowed) == 1
    return library, windowed


def padded_batch(lengths, *, seed=0):
    """Random token ids ``[B, max(lengths)]`` and the matching 0/1 attention mask (padding on the right)."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 600, (len(lengths), max(lengths)), generator=generator)
    mask = (torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, 3), mask


def test_doctests():
    assert doctest.testmod(findling.engine.encode.windowed_attention).failed == 0


@pytest.mark.parametrize("n", [1, 5, 63, 64, 65, 128, 300, 1000])
@pytest.mark.parametrize("half_window", [64, 7])
def test_windowed_attention_equals_the_band_mask(n, half_window):
    torch.manual_seed(n)
    query, key, value = (torch.randn(2, 4, n, 16) for _ in range(3))
    key_padding = torch.ones(2, n, dtype=torch.bool)
    key_padding[1, max(1, n // 3):] = False
    ours = windowed_attention(query, key, value, key_padding, half_window=half_window, scaling=16 ** -0.5)
    theirs = band_attention(query, key, value, key_padding, half_window=half_window)
    assert ours.shape == (2, n, 4, 16)
    torch.testing.assert_close(ours, theirs, atol=TOLERANCE, rtol=0)


def test_one_long_sequence_equals_the_library(backbones):
    library, windowed = backbones
    ids, _ = padded_batch([1500])  # nearly 12 windows of 128
    with torch.inference_mode():
        theirs = library(input_ids=ids).last_hidden_state
        ours = windowed(input_ids=ids).last_hidden_state
    assert (ours - theirs).abs().max().item() <= TOLERANCE


def test_padded_batch_equals_the_library(backbones):
    library, windowed = backbones
    ids, mask = padded_batch([1000, 517, 130, 64], seed=1)
    with torch.inference_mode():
        theirs = library(input_ids=ids, attention_mask=mask).last_hidden_state
        ours = windowed(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert (ours[real] - theirs[real]).abs().max().item() <= TOLERANCE
    assert (ours - theirs).abs().max().item() <= TOLERANCE  # padding rows too: nothing downstream sees NaN


def test_a_prepared_4d_mask_is_applied_as_it_is(backbones):
    library, windowed = backbones
    ids, _ = padded_batch([400], seed=2)
    mask = torch.rand(1, 1, 400, 400, generator=torch.Generator().manual_seed(2)) < 0.5
    mask |= torch.eye(400, dtype=torch.bool)
    with torch.inference_mode():
        theirs = library(input_ids=ids, attention_mask=mask).last_hidden_state
        ours = windowed(input_ids=ids, attention_mask=mask).last_hidden_state
    assert (ours - theirs).abs().max().item() <= TOLERANCE


def test_switching_again_changes_nothing(backbones):
    _, windowed = backbones
    assert use_windowed_attention(windowed) == 0
    assert windowed.config._attn_implementation == IMPLEMENTATION


def test_other_models_are_left_alone():
    from transformers import BertConfig, BertModel, ModernBertConfig, ModernBertModel

    bert = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=64))
    config = ModernBertConfig(vocab_size=100, pad_token_id=3, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=2, global_attn_every_n_layers=1)
    all_global = ModernBertModel(config)
    before = (bert.config._attn_implementation, all_global.config._attn_implementation)
    assert use_windowed_attention(bert) == 0
    assert use_windowed_attention(all_global) == 0
    assert (bert.config._attn_implementation, all_global.config._attn_implementation) == before


def test_encoder_gives_the_vectors_of_plain_pylate(edge_model_dir):
    from pylate import models

    from findling.engine.encode.encoder import ModelInfo
    from findling.engine.encode.pylate_encoder import PyLateEncoder

    docs = [" ".join(generated_text(paragraphs=14, seed=11)), " ".join(generated_text(paragraphs=4, seed=12)), "x"]
    info = ModelInfo(name="test", source="test", path=str(edge_model_dir), fingerprint="x", dim=48, max_tokens=32768)
    encoder = PyLateEncoder(edge_model_dir, info, threads=1)
    assert max(encoder.tokenizer.count_document_tokens(docs)) > 6 * 128  # several windows, padded in one batch
    ours = encoder.encode_documents(docs)
    assert encoder._loaded()[0].auto_model.config._attn_implementation == IMPLEMENTATION
    plain = models.ColBERT(str(edge_model_dir), device="cpu", local_files_only=True, document_length=32768)
    assert plain[0].auto_model.config._attn_implementation == "sdpa"
    theirs = plain.encode(docs, is_query=False, batch_size=len(docs), show_progress_bar=False)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=TOLERANCE, rtol=0)
