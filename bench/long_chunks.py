"""Long chunks: a ModernBERT backbone of the Ettin-17m shape with windowed local attention
(``findling.engine.encode.windowed_attention``) against transformers' own attention, which runs the local layers as full
``N x N`` attention under a band mask.

    python bench/run.py --only long_chunks [--quick]
    python bench/long_chunks.py [--quick] [--json] [--lengths 512 8192 32768]

1. One random backbone (7 layers, hidden 256, MLP 384, 4 heads, window 128, global every third layer; the
   shape of mxbai-edge-colbert-v0-17m's backbone; vocabulary 50,368 as Ettin's) and a deep copy of it switched
   to windowed attention by ``findling.engine.encode.windowed_attention.use_windowed_attention``, as the encoder does on load.
2. For each length N (512, 8k, 32k; ``--quick``: 512 and 4k), one sequence of N random tokens; every rep runs
   the library copy then ours (fp32, ``torch.inference_mode``, default thread count), best rep kept.
   tokens/s = N / seconds of one forward. 512 gets 10 reps, longer lengths 1.
3. Fidelity: max |ours - library| over every output value of every length, and of a padded batch
   (lengths 1500, 700, 130) with its attention mask.

Wall-clock figures on a shared machine are noisy; the ratios, measured side by side, are what count.
"""
from __future__ import annotations

import copy
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Result, bench_parser, ratio, run_bench  # noqa: E402

logger = logging.getLogger(__name__)

PEER = "transformers ModernBERT (sdpa)"
VOCAB = 50368
FULL_LENGTHS = (512, 8192, 32768)
QUICK_LENGTHS = (512, 4096)
PADDED_BATCH = (1500, 700, 130)
REPS_SHORT = 10  # one forward at 512 tokens takes 50 ms: a scheduler hiccup is a tenth of it, so take the best of many


def build_backbones(*, seed: int = 0):
    """``(library, ours)``: one random Ettin-17m-shape ``ModernBertModel`` and a windowed copy, in eval mode."""
    import torch
    from transformers import ModernBertModel

    from findling.engine.encode.windowed_attention import use_windowed_attention
    from tests.model_factory import edge_backbone_config

    torch.manual_seed(seed)
    config = edge_backbone_config(vocab_size=VOCAB, pad_token_id=50283, cls_token_id=50281, sep_token_id=50282)
    library = ModernBertModel(config).eval()
    ours = copy.deepcopy(library)
    use_windowed_attention(ours)
    return library, ours


def random_ids(lengths, *, seed: int = 0):
    """Token ids ``[B, max(lengths)]`` and a 0/1 attention mask ``[B, max(lengths)]`` (padding on the right)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    longest = max(lengths)
    ids = torch.randint(0, 50280, (len(lengths), longest), generator=generator)
    mask = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids, mask


def timed_forward(model, ids, mask=None):
    """``(wall seconds, last_hidden_state [B, N, 256])`` of one forward pass; the process CPU seconds are logged
    too (on a machine shared with other jobs they track the work done better than the wall clock)."""
    import torch

    with torch.inference_mode():
        start, cpu = time.perf_counter(), time.process_time()
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
        wall = time.perf_counter() - start
    logger.info("  %s N=%d: %.2f s wall, %.2f s CPU", getattr(model.config, "_attn_implementation", "?"),
                ids.shape[1], wall, time.process_time() - cpu)
    return wall, out


def measure_length(library, ours, n: int, *, reps: int) -> tuple[float, float, float]:
    """``(library tokens/s, our tokens/s, max abs diff)`` for one sequence of ``n`` tokens, best of ``reps``."""
    ids, _ = random_ids([n], seed=n)
    best_lib = best_ours = float("inf")
    diff = 0.0
    for _ in range(reps):
        seconds_lib, out_lib = timed_forward(library, ids)
        seconds_ours, out_ours = timed_forward(ours, ids)
        best_lib, best_ours = min(best_lib, seconds_lib), min(best_ours, seconds_ours)
        diff = max(diff, (out_lib - out_ours).abs().max().item())
        del out_lib, out_ours
    logger.info("N=%d: library %.1f s, ours %.1f s, max abs diff %.2g", n, best_lib, best_ours, diff)
    return n / best_lib, n / best_ours, diff


def padded_batch_diff(library, ours) -> float:
    """Max abs difference of the two models' outputs on a padded batch (``PADDED_BATCH`` lengths)."""
    ids, mask = random_ids(PADDED_BATCH, seed=1)
    _, out_lib = timed_forward(library, ids, mask)
    _, out_ours = timed_forward(ours, ids, mask)
    return (out_lib - out_ours).abs().max().item()


def speed_result(n: int, lib_rate: float, our_rate: float) -> Result:
    """One tokens/s record; the goal is 2x at 32k and more, no loss at shorter lengths."""
    r = ratio(our_rate, lib_rate)
    label = f"{n // 1024}k" if n >= 1024 else str(n)
    goal, needed = (">= 2x peer", 2.0) if n >= 32768 else (">= 0.9x peer", 0.9)
    return Result(name=f"long chunks: encode tokens/s at {label}", value=our_rate, unit="tokens/s", peer=PEER,
                  peer_value=lib_rate, ratio=r, target=goal, ok=r is not None and r >= needed)


def collect(args) -> list[Result]:
    """Measure every length of ``args.lengths`` (or the quick / full defaults) and the fidelity."""
    lengths = getattr(args, "lengths", None) or (QUICK_LENGTHS if args.quick else FULL_LENGTHS)
    library, ours = build_backbones()
    timed_forward(library, random_ids([256])[0])  # warm both paths once
    timed_forward(ours, random_ids([256])[0])
    results, worst = [], padded_batch_diff(library, ours)
    for n in lengths:
        lib_rate, our_rate, diff = measure_length(library, ours, n, reps=REPS_SHORT if n <= 512 else 1)
        worst = max(worst, diff)
        results.append(speed_result(n, lib_rate, our_rate))
    results.append(Result(name="long chunks: max |ours - library| output", value=worst, unit="abs", peer=PEER,
                          peer_value=0.0, ratio=None, target="<= 1e-4", ok=worst <= 1e-4))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="512 and 4k tokens only, for a smoke run")
    parser.add_argument("--lengths", type=int, nargs="*", help="sequence lengths to measure (tokens)")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
