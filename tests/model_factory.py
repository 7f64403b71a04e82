"""Build small, randomly initialised PyLate models locally, for tests (no network, no downloaded weights).

Two layouts:

* ``build_edge_model(folder)``: the layout of mixedbread-ai/mxbai-edge-colbert-v0-17m at toy scale. A ModernBERT
  backbone (7 layers, hidden 256, 4 heads, 128-token local attention with a global layer every third layer,
  rotary positions, ``max_position_embeddings`` 7999 as in the published config), a two-layer projection head
  with a residual path (256 -> 512 -> 48, each PyLate ``Dense`` with ``use_residual``), prefixes "[Q] " / "[D] ",
  query length 48 without query expansion, document length 512, lower-casing on. The prefixes, lengths and
  expansion setting follow the published settings of the edge models; the exact head widths (512 in the middle)
  are an assumption: PyLate's edge-model heads are two residual ``Dense`` layers, their inner width is not
  documented offline.
* ``build_tiny_bert_model(folder)``: a 2-layer, hidden-32 BERT (MiniLM-like WordPiece tokenizer) with one
  32 -> 48 ``Dense`` head and PyLate's defaults (query expansion to 32 tokens): fast pipeline tests.

Both train a small tokenizer with the ``tokenizers`` library on generated text and save everything with
safetensors in PyLate's folder format. Each builds in a few seconds.
"""
from __future__ import annotations

import random
from pathlib import Path

_WORD_TEXT = (
    "the a of and to in is was for on with as by at from that this it be are or an not which have has "
    "model search file index token vector query document chunk score page folder text report invoice tax "
    "meeting notes budget project python manual install error table figure result method data value "
    "green blue yellow sun sky grass pass key remember name number letter river mountain city music "
    "protein cell gene study patient trial effect cancer risk blood brain energy water light heat time "
    "engine wing flow pressure boundary layer shock wave speed lift drag surface heat transfer"
)
WORDS = _WORD_TEXT.split()
PUNCTUATION = (".", ",", ";", ":", "?", "!", "(", ")", "-", "'")


def generated_text(*, paragraphs: int = 40, seed: int = 0) -> list[str]:
    """Deterministic pseudo-English paragraphs with punctuation and digits, for training tokenizers."""
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        words = []
        for _ in range(rng.randint(40, 120)):
            word = rng.choice(WORDS)
            if rng.random() < 0.1:
                word = word.capitalize()
            if rng.random() < 0.05:
                word = str(rng.randint(0, 99999))
            words.append(word)
            if rng.random() < 0.12:
                words.append(rng.choice(PUNCTUATION))
        out.append(" ".join(words) + ".")
    return out


def _save_fast_tokenizer(tokenizer, folder: Path, *, model_max_length: int) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
    fast.save_pretrained(str(folder))


def build_bpe_tokenizer(folder: Path, *, vocab_size: int = 600) -> None:
    """A byte-level BPE tokenizer with ModernBERT's special tokens and [CLS] x [SEP] template."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(generated_text(seed=1), trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    _save_fast_tokenizer(tok, folder, model_max_length=8192)


def build_wordpiece_tokenizer(folder: Path, *, vocab_size: int = 400) -> None:
    """A lower-casing WordPiece tokenizer laid out like BERT's (with [unused0] and [unused1])."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    specials = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(generated_text(seed=2), trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    _save_fast_tokenizer(tok, folder, model_max_length=512)


def _backbone_folder(folder: Path) -> Path:
    backbone = folder.parent / f".{folder.name}-backbone"
    backbone.mkdir(parents=True, exist_ok=True)
    return backbone


def _save_colbert(backbone: Path, folder: Path, heads: list, *, do_lower_case: bool, **settings) -> Path:
    """Wrap a saved HF backbone and projection heads into a PyLate ColBERT saved at ``folder``."""
    import shutil

    from pylate import models as pylate_models
    from sentence_transformers.models import Transformer

    transformer = Transformer(str(backbone), do_lower_case=do_lower_case)
    model = pylate_models.ColBERT(modules=[transformer, *heads], device="cpu", **settings)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder), create_model_card=False)
    shutil.rmtree(backbone)
    return folder


def edge_backbone_config(*, vocab_size: int, pad_token_id: int, cls_token_id: int, sep_token_id: int):
    """A ``ModernBertConfig`` of the Ettin-17m shape behind mxbai-edge-colbert-v0-17m: 7 layers, hidden 256
    (MLP 384), 4 heads, a 128-token local window with a global layer every third layer, rotary positions."""
    from transformers import ModernBertConfig

    return ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=384,
        num_hidden_layers=7,
        num_attention_heads=4,
        local_attention=128,
        global_attn_every_n_layers=3,
        max_position_embeddings=7999,
        pad_token_id=pad_token_id,
        cls_token_id=cls_token_id,
        sep_token_id=sep_token_id,
        bos_token_id=cls_token_id,
        eos_token_id=sep_token_id,
    )


def build_edge_model(folder: Path | str, *, seed: int = 0) -> Path:
    """A random model with the layout of mxbai-edge-colbert-v0-17m, saved in PyLate's format at ``folder``."""
    import torch
    from pylate.models import Dense
    from transformers import AutoTokenizer, ModernBertModel

    folder = Path(folder)
    backbone = _backbone_folder(folder)
    build_bpe_tokenizer(backbone)
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    torch.manual_seed(seed)
    config = edge_backbone_config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
    )
    ModernBertModel(config).save_pretrained(str(backbone), safe_serialization=True)
    heads = [
        Dense(in_features=256, out_features=512, bias=True, use_residual=True),
        Dense(in_features=512, out_features=48, bias=True, use_residual=True),
    ]
    return _save_colbert(
        backbone,
        folder,
        heads,
        do_lower_case=True,
        query_prefix="[Q] ",
        document_prefix="[D] ",
        query_length=48,
        document_length=512,
        do_query_expansion=False,
        attend_to_expansion_tokens=False,
    )


def build_tiny_bert_model(folder: Path | str, *, seed: int = 0) -> Path:
    """A random 2-layer, hidden-32 BERT ColBERT (48-dim head, PyLate defaults), saved at ``folder``."""
    import torch
    from pylate.models import Dense
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = Path(folder)
    backbone = _backbone_folder(folder)
    build_wordpiece_tokenizer(backbone)
    tokenizer = AutoTokenizer.from_pretrained(str(backbone))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(str(backbone), safe_serialization=True)
    heads = [Dense(in_features=32, out_features=48, bias=False)]
    return _save_colbert(
        backbone,
        folder,
        heads,
        do_lower_case=False,
        query_prefix="[unused0]",
        document_prefix="[unused1]",
        query_length=32,
        document_length=180,
    )


def build_fake_hf_cache(cache_dir: Path | str, repo_id: str, build, *, revision: str = "0" * 40) -> Path:
    """Lay out ``build(snapshot)`` as the Hugging Face cache would hold ``repo_id`` at ``revision``.

    ``cache_dir`` plays the role of ``HF_HUB_CACHE``; returns the snapshot folder.
    """
    repo_folder = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_folder / "snapshots" / revision
    build(snapshot)
    (repo_folder / "refs").mkdir(parents=True, exist_ok=True)
    (repo_folder / "refs" / "main").write_text(revision)
    return snapshot
