"""The floor: how close the document encoder comes to this CPU's attainable matrix-product throughput, and where
its time goes.

    python bench/run.py --only floor [--quick]
    python bench/floor.py [--quick] [--json] [--model DIR] [--files N] [--rounds R]

Texts: the chunks of the indexing benchmark's sample (``bench.indexing``: python-docs files, cut by the engine's
extractor and chunker with the model's tokenizer; ``--quick``: 3 files, or generated text where the shared data
is absent). Tokens are the rows the backbone computes (``tokenizer.count_document_tokens``: markers included).

1. FLOPs per token. From the backbone's config: every linear product of a layer (BERT family: query, key and
   value ``H -> 3H``, attention output ``H -> H``, intermediate ``H -> I``, output ``I -> H``; ModernBERT: the
   gated intermediate ``H -> 2I``), times the layers, 2 FLOPs a multiply-add; attention's two products (scores
   and weighted values, ``4 n H`` FLOPs a token for a text of ``n`` tokens, a layer) at the texts' own lengths
   (each text alone: the encoder does not compute padding); the projection head's ``Linear`` layers (in
   float32, as the encoder runs them). Embeddings, normalisation, activations and softmax count nothing: the
   floor is the products alone.
2. Attainable throughput. Each of those shapes timed alone on ``ROWS`` rows with random data: the faster of
   ``torch.nn.functional.linear`` and oneDNN's packed linear kernel (the one the encoder calls), in bf16 where
   the CPU computes it natively (oneDNN reports bf16 support), else float32; attention's products as batched
   ``[heads, n, d] x [heads, d, n]`` and ``[heads, n, n] x [heads, n, d]`` products at the texts' mean length.
   On one torch thread, and on all of them (the floor per CPU second then also pays the threads' spinning).
   The floor in tokens per CPU second: one token's FLOPs at each shape's measured FLOPs per CPU second, summed.
3. Ours: the encoder ``load_encoder`` gives the indexer (``DirectEncoder``, precision "auto", the configured
   threads and workers), ``encode_documents`` over the texts; tokens per CPU second of this process, against
   each floor. The floor and ours take turns ``--rounds`` times (2; ``--quick``: 1); each keeps its best.
4. Breakdown. One worker's worth of the same encoder (one compute thread, ``threads // workers`` torch
   threads) under ``torch.profiler`` over the texts: self CPU time of the operators by kind (products,
   attention, normalisation, activation, other operators), tokenisation timed apart (``model.tokenize`` over
   the same batches), the rest (Python, the encoder's own bookkeeping) as "outside operators". On stderr as a
   table, and as rows (share of the profiled time).

The target on AMX machines is at least a third of the floor; elsewhere the fraction is reported.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Result, bench_config, bench_parser, ratio, run_bench  # noqa: E402

ROWS = 2048  # rows of each timed product: one worker's share of a token-budget batch
ROUNDS = 2
TIMING = {"min_seconds": 0.25}  # of each product's timing; a smoke run (``--quick``) takes less
TARGET = 1 / 3  # of the floor, on machines with AMX
KINDS = ("products", "attention", "normalisation", "activation", "tokenisation", "other operators",
         "outside operators")


# ------------------------------------------------------------------------------------------ the shapes
def backbone_shapes(config: dict) -> tuple[list[tuple[int, int]], int, int, int]:
    """``([(in, out), ...] per layer, layers, hidden, heads)`` of a backbone's ``config.json`` (BERT family or
    ModernBERT)."""
    hidden = int(config["hidden_size"])
    inter = int(config["intermediate_size"])
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    if config.get("model_type") == "modernbert":
        shapes = [(hidden, 3 * hidden), (hidden, hidden), (hidden, 2 * inter), (inter, hidden)]
    else:
        shapes = [(hidden, 3 * hidden), (hidden, hidden), (hidden, inter), (inter, hidden)]
    return shapes, layers, hidden, heads


def head_shapes(folder: Path) -> list[tuple[int, int]]:
    """``(in, out)`` of every product of the model folder's projection head: each PyLate ``Dense`` its linear
    layer, plus its residual projection when it has one of another size (``use_residual``)."""
    shapes = []
    modules = json.loads((Path(folder) / "modules.json").read_text())
    for module in modules:
        if not module.get("type", "").endswith("Dense"):
            continue
        config = json.loads((Path(folder) / module["path"] / "config.json").read_text())
        n_in, n_out = int(config["in_features"]), int(config["out_features"])
        shapes.append((n_in, n_out))
        if config.get("use_residual") and n_in != n_out:
            shapes.append((n_in, n_out))
    return shapes


def flops_per_token(shapes, layers: int, hidden: int, lengths: list[int], head) -> dict[str, float]:
    """FLOPs a token: ``linear`` (the backbone's products), ``attention`` (its two products at ``lengths``,
    weighted by tokens: ``4 n H`` a token a layer for a text of ``n``), ``head``."""
    lengths_a = np.asarray(lengths, dtype=np.float64)
    return {"linear": 2.0 * layers * sum(i * o for i, o in shapes),
            "attention": 4.0 * layers * hidden * float((lengths_a ** 2).sum() / lengths_a.sum()),
            "head": 2.0 * sum(i * o for i, o in head)}


# ------------------------------------------------------------------------------------ attainable rate
def native_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _timed(fn, *, reps: int = 3) -> float:
    """Best CPU seconds per call of ``fn`` (this process's CPU time), over ``reps`` timings of as many calls as
    fill ``TIMING["min_seconds"]``."""
    min_seconds = TIMING["min_seconds"]
    fn()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds / 4 or calls < 2:
        fn()
        calls += 1
    best = float("inf")
    for _ in range(reps):
        c0 = time.process_time()
        for _ in range(calls * 4):
            fn()
        best = min(best, (time.process_time() - c0) / (calls * 4))
    return best


def linear_rate(n_in: int, n_out: int, dtype, *, rows: int = ROWS) -> float:
    """FLOPs per CPU second of ``[rows, n_in] x [n_in, n_out]`` at the current torch thread count: the faster
    of ``torch.nn.functional.linear`` and oneDNN's packed kernel."""
    import torch

    from findling.engine.encode import fused_blocks

    x = torch.randn(rows, n_in).to(dtype)
    w = (torch.randn(n_out, n_in) / n_in ** 0.5).to(dtype)
    b = torch.zeros(n_out, dtype=dtype)
    with torch.inference_mode():
        best = _timed(lambda: torch.nn.functional.linear(x, w, b))
        if fused_blocks.available(dtype):
            packed = torch.ops.mkldnn._reorder_linear_weight(w, None)
            best = min(best, _timed(lambda: torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")))
    return 2.0 * rows * n_in * n_out / best


def attention_rate(n: int, hidden: int, heads: int, dtype) -> float:
    """FLOPs per CPU second of attention's two batched products for one text of ``n`` tokens."""
    import torch

    d = hidden // heads
    q, k, v = (torch.randn(heads, n, d).to(dtype) for _ in range(3))
    p = torch.softmax(torch.randn(heads, n, n), dim=-1).to(dtype)
    reps = max(1, ROWS // n)  # as many texts as fill one product batch's rows

    def run():
        for _ in range(reps):
            torch.bmm(q, k.transpose(1, 2))
            torch.bmm(p, v)

    with torch.inference_mode():
        seconds = _timed(run)
    return 4.0 * reps * n * n * hidden / seconds


def floor_rates(shapes, head, *, hidden: int, heads: int, mean_len: int, dtype, threads: int) -> dict:
    """Every product's FLOPs per CPU second on ``threads`` torch threads (set here: call on a thread of its own)."""
    import torch

    torch.set_num_threads(threads)
    rates = {"linear": {s: linear_rate(*s, dtype) for s in dict.fromkeys(shapes)},
             "head": {s: linear_rate(*s, torch.float32) for s in dict.fromkeys(head)},
             "attention": attention_rate(mean_len, hidden, heads, dtype)}
    return rates


def floor_tokens_per_cpu_s(rates: dict, shapes, layers: int, head, attention_flops: float) -> float:
    """Tokens per CPU second if every product ran at its measured rate and nothing else took time."""
    seconds = sum(layers * 2.0 * i * o / rates["linear"][(i, o)] for i, o in shapes)
    seconds += sum(2.0 * i * o / rates["head"][(i, o)] for i, o in head)
    seconds += attention_flops / rates["attention"]
    return 1.0 / seconds


def peak_gflops(rates: dict) -> float:
    return max(rates["linear"].values()) / 1e9


# ------------------------------------------------------------------------------------------------ ours
def encode_rate(encoder, texts: list[str], tokens: int) -> float:
    """Tokens per CPU second of ``encoder.encode_documents(texts)`` (this process's CPU time, all threads)."""
    c0 = time.process_time()
    encoder.encode_documents(texts)
    return tokens / (time.process_time() - c0)


def classify(name: str) -> str:
    """The kind of one profiler operator name."""
    n = name.lower()
    if any(k in n for k in ("bmm", "baddbmm", "softmax", "scaled_dot_product", "attention", "flash")):
        return "attention"
    if any(k in n for k in ("linear_pointwise", "addmm", "aten::mm", "matmul", "aten::linear", "mkldnn_linear",
                            "_linear", "quantized::linear")):
        return "products"
    if any(k in n for k in ("layer_norm", "norm", "rsqrt")):
        return "normalisation"
    if any(k in n for k in ("gelu", "relu", "tanh", "silu", "sigmoid")):
        return "activation"
    return "other operators"


def breakdown(folder, info, config, texts: list[str]) -> dict[str, float]:
    """CPU seconds of one worker's encode of ``texts`` by kind (see the module docstring, step 4)."""
    from torch.profiler import ProfilerActivity, profile

    from findling.engine.encode.direct_encoder import DirectEncoder

    threads = max(1, config.threads // max(1, config.encode_workers))
    encoder = DirectEncoder(folder, info, threads=threads, batch_tokens=max(1, config.encode_batch_tokens
                                                                             // max(1, config.encode_workers)),
                            precision=config.encoder_precision, workers=1)
    encoder.encode_documents(texts[:2])  # load and warm outside the profile
    model = encoder._loaded()

    def profiled():
        c0 = time.process_time()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            encoder.encode_documents(texts)
        total = time.process_time() - c0
        c0 = time.process_time()
        for lo in range(0, len(texts), 16):
            with encoder._encode_lock:
                model.tokenize(texts[lo:lo + 16], is_query=False)
        return prof, total, time.process_time() - c0

    try:
        prof, total, tokenising = encoder._on_compute_thread(profiled)
    finally:
        encoder.close()
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        seconds[classify(event.key)] += event.self_cpu_time_total / 1e6
    seconds["tokenisation"] = tokenising
    profiled_ops = sum(v for k, v in seconds.items() if k != "tokenisation")
    # the profiler's own overhead inflates the total; what the operators do not account for is Python and glue
    seconds["outside operators"] = max(0.0, total - profiled_ops - tokenising)
    return {k: seconds.get(k, 0.0) for k in KINDS}


# --------------------------------------------------------------------------------------------- collect
def chunk_texts(args, tmp: Path, encoder, config) -> list[str]:
    """The indexing benchmark's sample, extracted and chunked by the engine."""
    from bench import indexing

    quick = getattr(args, "quick", False)
    files = getattr(args, "files", None) or (3 if quick else 24)
    if not indexing.FOLDERS.is_dir():
        print(f"{indexing.FOLDERS} is missing: {files} generated text files instead", file=sys.stderr)
        root = indexing.generated_sample(tmp, files=files)
    else:
        root = indexing.copy_sample(indexing.sample_files(files=files, pdf=None), tmp, pdf_pages=None)
    texts, _tokens, _t = indexing.peer_chunks(root, encoder, config)
    return texts


def collect(args) -> list[Result]:
    import torch

    from bench.indexing import alone
    from findling.engine.encode.resolve import load_encoder

    quick = getattr(args, "quick", False)
    rounds = getattr(args, "rounds", None) or (1 if quick else ROUNDS)
    if quick:
        TIMING["min_seconds"] = 0.02
    with tempfile.TemporaryDirectory(prefix="findling-floor-") as tmp:
        config = bench_config(args, Path(tmp) / "home")
        encoder = load_encoder(config)
        texts = chunk_texts(args, Path(tmp), encoder, config)
        lengths = encoder.tokenizer.count_document_tokens(texts)
        tokens = sum(lengths)
        backbone = json.loads((Path(encoder.folder) / "config.json").read_text())
        shapes, layers, hidden, heads = backbone_shapes(backbone)
        encoder.encode_documents(texts[:2])  # load outside the timing
        head = head_shapes(encoder.folder)
        flops = flops_per_token(shapes, layers, hidden, lengths, head)
        dtype = torch.bfloat16 if native_bf16() else torch.float32
        dname = "bf16" if dtype == torch.bfloat16 else "fp32"
        mean_len = max(1, int(round(float(np.mean(lengths)))))
        print(f"{len(texts)} chunks, {tokens} tokens (mean {mean_len}); model {encoder.info.name}: {layers} layers, "
              f"hidden {hidden}, products {shapes}, head {head}; GFLOP a token: linear {flops['linear'] / 1e9:.4f}, "
              f"attention {flops['attention'] / 1e9:.4f}, head {flops['head'] / 1e9:.4f}; encoder precision "
              f"{getattr(encoder, 'precision', '?')}, {config.threads} threads in {encoder.workers} workers; floor "
              f"in {dname}", file=sys.stderr, flush=True)
        threads_all = config.threads
        kw = dict(hidden=hidden, heads=heads, mean_len=mean_len, dtype=dtype)
        best = {"one": 0.0, "all": 0.0, "ours": 0.0}
        peaks = {"one": 0.0, "all": 0.0}
        for round_ in range(1, rounds + 1):  # the floor and ours take turns; each keeps its best
            for label, n in (("one", 1), ("all", threads_all)):
                rates = alone(lambda: floor_rates(shapes, head, threads=n, **kw))
                value = floor_tokens_per_cpu_s(rates, shapes, layers, head, flops["attention"])
                best[label], peaks[label] = max(best[label], value), max(peaks[label], peak_gflops(rates))
                print(f"round {round_}: floor on {n} thread(s): {value:,.0f} tok/CPU-s (best product "
                      f"{peak_gflops(rates):.1f} GFLOP/CPU-s, attention {rates['attention'] / 1e9:.1f})",
                      file=sys.stderr, flush=True)
            ours = encode_rate(encoder, texts, tokens)
            best["ours"] = max(best["ours"], ours)
            print(f"round {round_}: ours {ours:,.0f} tok/CPU-s", file=sys.stderr, flush=True)
        encoder.close()
        parts = breakdown(encoder.folder, encoder.info, config, texts)
    total = sum(parts.values())
    print(f"{'breakdown (one worker, profiled)':<34} {'CPU s':>8} {'share':>7}", file=sys.stderr)
    for kind, seconds in parts.items():
        print(f"{kind:<34} {seconds:8.3f} {100 * seconds / total:6.1f}%", file=sys.stderr)
    gflop = (flops["linear"] + flops["attention"] + flops["head"]) / 1e9
    results = [
        Result(f"floor: best product, {dname}, 1 thread", peaks["one"], "GFLOP/CPU-s", None, None, None,
               "reported", True),
        Result(f"floor: best product, {dname}, {threads_all} threads", peaks["all"], "GFLOP/CPU-s", None, None,
               None, "reported", True),
        Result(f"encoder GFLOP per CPU second ({gflop * 1e3:.2f} MFLOP/token)", best["ours"] * gflop,
               "GFLOP/CPU-s", f"best product, {dname}, 1 thread", peaks["one"],
               ratio(best["ours"] * gflop, peaks["one"]), "reported", True),
    ]
    for label, n in (("one", 1), ("all", threads_all)):
        r = ratio(best["ours"], best[label])
        results.append(Result(f"encoder vs floor ({dname} products, {n} thread{'s' if n > 1 else ''})", best["ours"],
                              "tok/CPU-s", f"floor, {n} thread{'s' if n > 1 else ''}", best[label], r,
                              f">= {TARGET:.2f}x peer on AMX", r is not None and r >= TARGET))
    for kind, seconds in parts.items():
        results.append(Result(f"encode breakdown: {kind}", seconds / total, "share", None, None, None, "reported",
                              True))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="3 files, one round: a smoke run")
    parser.add_argument("--files", type=int, help="python-docs files whose chunks are encoded (default 24)")
    parser.add_argument("--rounds", type=int, help=f"turns of floor then ours, best kept (default {ROUNDS})")
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
