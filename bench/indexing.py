"""Indexing throughput: Findling's ``Indexer`` end to end against PyLate's default ``ColBERT.encode``.

    python bench/run.py --only indexing [--quick]
    python bench/indexing.py [--quick] [--files N] [--pdf NAME|none] [--pdf-pages N] [--threads T] [--workers W]
                             [--read-ahead N] [--rounds R] [--json]

Data: a fixed sample of ``../shared/data/folders`` (every k-th python-docs file in sorted order, ``--files`` of
them, plus one R manual, ``--pdf``, R-data.pdf by default, whole or its first ``--pdf-pages``), copied into a
temporary folder; ``--quick``: 6 files and the PDF's first 6 pages (without the shared data: ``--files`` generated
text files, no PDF). Same model
(the one ``load_encoder`` picks: the bundled MiniLM here), same texts, same torch threads on both sides.

* peer: extract and chunk with the engine, then ``models.ColBERT(folder).encode(texts, is_query=False)`` with its
  default batch size (32) in fp32, on the distinct chunk texts;
* ours: ``Indexer.sync()`` over the sample folder into a temporary index (scan, hash, extract, chunk, encode,
  write), with the default encoder (``DirectEncoder``, precision "auto", ``Config.encode_workers``).

Both sides count the same tokens (the chunks' token counts) and exclude model loading. Throughput is printed
per wall-clock second and per CPU second of this process: the machines this runs on are shared, so the two
sides take turns, ``--rounds`` times (2; ``--quick``: 1), and each side's best round counts, by either clock
(one run of either side measured here has come out a fifth slower than the next for no cause in it). Then each lever alone on a slice of the chunks (token-budget batches, the direct
runtime in fp32, int8, bf16 where the CPU has it), with the per-token cosine of every path against the fp32
reference vectors (min and mean; target min >= 0.99).
"""
from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Result, bench_parser, ratio, run_bench  # noqa: E402

logger = logging.getLogger(__name__)
FOLDERS = ROOT.parent / "shared" / "data" / "folders"
PEER = "PyLate ColBERT.encode (bs 32, fp32)"
MIN_COSINE = 0.99
ROUNDS = 2  # turns each side takes end to end (best kept): one run of either can lose a fifth to a busy host


@dataclass
class Timed:
    """Seconds of wall clock and of this process's CPU for one measured step."""

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> "Timed":
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


def sample_files(*, files: int, pdf: str | None) -> list[Path]:
    """Every k-th python-docs file (sorted) up to ``files`` of them, plus the named R manual."""
    docs = sorted(p for p in (FOLDERS / "python-docs").rglob("*") if p.is_file())
    step = max(1, len(docs) // max(files, 1))
    chosen = docs[::step][:files]
    if pdf:
        chosen.append(FOLDERS / "r-manuals" / pdf)
    return chosen


def generated_sample(dest: Path, *, files: int) -> Path:
    """``files`` generated pseudo-English text files under ``dest/sample``: the smoke run's input where the shared
    data is absent."""
    from tests.model_factory import generated_text

    root = dest / "sample"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"generated-{i:02d}.txt").write_text("\n\n".join(generated_text(paragraphs=12, seed=i)) + "\n")
    return root


def copy_sample(paths: list[Path], dest: Path, *, pdf_pages: int | None) -> Path:
    """The sample laid out under ``dest/sample`` (the indexer needs one folder to watch); a PDF is cut to its
    first ``pdf_pages`` pages when that is set."""
    root = dest / "sample"
    for path in paths:
        target = root / path.relative_to(FOLDERS)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".pdf" and pdf_pages:
            _first_pages(path, target, pdf_pages)
        else:
            shutil.copyfile(path, target)
    return root


def _first_pages(source: Path, target: Path, pages: int) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages[:pages]:
        writer.add_page(page)
    with open(target, "wb") as f:
        writer.write(f)


def peer_chunks(root: Path, encoder, config) -> tuple[list[str], int, Timed]:
    """Extract and chunk every file of ``root`` with the engine: distinct chunk texts, their tokens, the time."""
    from findling.engine.encode.chunker import chunk_text
    from findling.engine.extract import extract
    from findling.engine.index.indexer import chunk_limit

    limit = chunk_limit(encoder, config)
    texts: dict[str, int] = {}
    with Timed() as t:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                doc = extract(path, config=config)
            except Exception as exc:  # the peer skips what the engine would record as failed
                logger.info("peer skips %s: %s", path, exc)
                continue
            for c in chunk_text(doc, encoder.tokenizer, max_tokens=limit, overlap=config.chunk_overlap_tokens):
                texts.setdefault(c.text, c.token_count)
    return list(texts), sum(texts.values()), t


def run_peer(model, texts: list[str], threads: int) -> tuple[list[np.ndarray], Timed]:
    """PyLate's default document encode on ``threads`` torch threads, as a user of PyLate would call it (on a
    thread of its own, see ``alone``). The count is set on that thread: torch gives a new thread the count last
    set anywhere in the process, and our encoder's workers set theirs (one each on 2 cores)."""
    def encode():
        import torch

        torch.set_num_threads(threads)
        with Timed() as t:
            out = model.encode(texts, is_query=False, show_progress_bar=False)
        return [np.asarray(v, dtype=np.float32) for v in out], t

    return alone(encode)


def alone(fn, *args):
    """``fn(*args)`` on a new thread that ends when it returns, and torch's worker threads with it. torch's OpenMP
    runtime keeps a team of workers for every thread that ran parallel operations, and once two teams exist its
    workers stop spinning between operations: each side measured here runs with no other team alive, as the
    app's encoder runs (``findling.engine.encode.pylate_encoder``: one compute thread)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-alone") as worker:
        return worker.submit(fn, *args).result()


def run_ours(root: Path, config) -> tuple[int, Timed, float, object]:
    """The real ``Indexer`` end to end into a new index; tokens encoded, time, seconds spent writing, encoder."""
    from findling.engine.index.indexer import Indexer
    from findling.engine.encode.resolve import load_encoder
    from findling.engine.store.store import Store

    encoder = load_encoder(config)
    encoder.encode_documents(["warm up: the model loads on first use"])
    store = Store(config.db_path)
    store.add_folder(root)
    writes = Timed()
    write_files = store.write_files

    def timed_write(batch):
        with writes:
            write_files(batch)

    store.write_files = timed_write  # measure the write share without touching the engine
    # on a thread of its own, as the app's indexing worker runs it: the thread that indexes lowers its CPU
    # priority for good (Config.indexing_nice), which must not reach the searches of later bench modules
    try:
        with Timed() as t, ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-indexer") as worker:
            last = worker.submit(Indexer(store, encoder, config=config).run_to_end).result()
    finally:
        store.close()
    if last.failed:
        logger.warning("%d files failed: %s", last.failed, last.errors)
    return last.tokens_encoded, t, writes.wall, encoder


def cosines(ours: list[np.ndarray], ref: list[np.ndarray]) -> tuple[float, float]:
    """Min and mean per-token cosine of two lists of L2-normalised ``[n_i, dim]`` matrices."""
    per_token = np.concatenate([(a * b).sum(axis=1) for a, b in zip(ours, ref) if len(a)])
    return float(per_token.min()), float(per_token.mean())


def lever_encoders(encoder, config) -> dict[str, object]:
    """One encoder per lever, on the same folder as ``encoder``."""
    from findling.engine.encode.direct_encoder import DirectEncoder
    from findling.engine.encode.pylate_encoder import PyLateEncoder

    kw = dict(threads=config.threads, batch_tokens=config.encode_batch_tokens)
    levers = {"token-budget batches (PyLateEncoder fp32)": PyLateEncoder(encoder.folder, encoder.info, **kw)}
    for precision in ("fp32", "int8", "bf16"):
        if precision == "bf16" and not _native_bf16():
            print("bf16: skipped, this CPU has no native bf16 (torch would emulate it)", file=sys.stderr)
            continue
        levers[f"direct runtime, folded head, {precision}"] = DirectEncoder(
            encoder.folder, encoder.info, precision=precision, **kw)
    return levers


def _native_bf16() -> bool:
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def measure_levers(encoder, config, model, texts: list[str], tokens: int) -> list[Result]:
    """Each lever alone on ``texts``: tokens/s (CPU) against the peer on the same slice, and fidelity, which must
    hold for the levers the default encoder uses (``chosen``: its precision); int8 is measured but never chosen."""
    chosen = getattr(encoder, "precision", "fp32")
    ref, peer_t = run_peer(model, texts, config.threads)
    results = []
    for name, lever in lever_encoders(encoder, config).items():
        lever.encode_documents(texts[:1])  # load outside the timing
        with Timed() as t:
            vectors = lever.encode_documents(texts)
        lever.close()  # its compute thread ends: the next lever runs with no other team of torch workers
        low, mean = cosines(vectors, ref)
        print(f"{name:<46} {tokens / t.cpu:8.0f} tok/CPU-s  x{peer_t.cpu / t.cpu:4.2f}  "
              f"cosine min {low:.4f} mean {mean:.5f}", file=sys.stderr)
        default = not name.startswith("direct runtime") or name.endswith(f", {chosen}")  # batching: always
        results.append(Result(f"lever: {name}", tokens / t.cpu, "tok/CPU-s", PEER, tokens / peer_t.cpu,
                              ratio(tokens / t.cpu, tokens / peer_t.cpu),
                              f"cos min >= {MIN_COSINE} where used by default ({'it is' if default else 'it is not'})",
                              low >= MIN_COSINE or not default))
    return results


def collect(args) -> list[Result]:
    """Run the sample through the peer and through the Indexer; return throughput, ratio and fidelity."""
    from findling.engine.config import Config
    from findling.engine.encode.resolve import load_encoder
    from findling.engine.encode.pylate_encoder import _quiet_transformers

    quick = getattr(args, "quick", False)
    files = getattr(args, "files", None) or (6 if quick else 40)
    pdf = getattr(args, "pdf", None) or "R-data.pdf"
    pdf_pages = getattr(args, "pdf_pages", None) or (6 if quick else None)
    rounds = getattr(args, "rounds", None) or (1 if quick else ROUNDS)
    with tempfile.TemporaryDirectory(prefix="findling-bench-") as tmp:
        tmp_path = Path(tmp)
        config = Config(data_dir=tmp_path / "home", **_config_overrides(args))
        if quick and not FOLDERS.is_dir():
            print(f"{FOLDERS} is missing: the smoke run indexes {files} generated text files", file=sys.stderr)
            root = generated_sample(tmp_path, files=files)
        else:
            root = copy_sample(sample_files(files=files, pdf=None if pdf == "none" else pdf), tmp_path,
                               pdf_pages=pdf_pages)
        encoder = load_encoder(config)
        print(f"sample: {sum(1 for p in root.rglob('*') if p.is_file())} files, model {encoder.info.name}, "
              f"{config.threads} threads in {encoder.workers} workers, default precision "
              f"{getattr(encoder, 'precision', 'fp32')}, "
              f"{config.read_ahead_files} files read ahead", file=sys.stderr)
        texts, tokens, chunk_t = peer_chunks(root, encoder, config)
        _quiet_transformers()  # its weight-loading report lists MiniLM's unused keys on stderr
        model = alone(_load_peer, encoder, texts[:1])
        peer = ours_t = ours_encoder = None
        for round_ in range(1, rounds + 1):  # peer and ours take turns; each side's best round counts
            if round_ > 1:
                _, _, chunk_t = peer_chunks(root, encoder, config)
            ref, encode_t = run_peer(model, texts, config.threads)
            peer_round = Timed(chunk_t.wall + encode_t.wall, chunk_t.cpu + encode_t.cpu)
            print(f"round {round_}/{rounds} peer: {len(texts)} chunks, {tokens} tokens; extract+chunk "
                  f"{chunk_t.wall:.1f} s wall ({100 * chunk_t.wall / peer_round.wall:.1f}% of the peer), encode "
                  f"{encode_t.wall:.1f} s wall, {peer_round.cpu:.1f} s CPU", file=sys.stderr, flush=True)
            if ours_encoder is not None:
                ours_encoder.close()  # the round before's compute threads end: one set of them at a time
            ours_tokens, ours_round, write_s, ours_encoder = run_ours(
                root, replace(config, data_dir=tmp_path / f"ours-{round_}"))
            print(f"round {round_}/{rounds} ours: {ours_tokens} tokens in {ours_round.wall:.1f} s wall, "
                  f"{ours_round.cpu:.1f} s CPU (writing {write_s:.2f} s)", file=sys.stderr, flush=True)
            peer, ours_t = _best(peer, peer_round), _best(ours_t, ours_round)
        picks = sorted(set(np.linspace(0, len(texts) - 1, num=min(32, len(texts)), dtype=int).tolist()))
        low, mean = cosines(ours_encoder.encode_documents([texts[i] for i in picks]), [ref[i] for i in picks])
        print(f"fidelity of the default path vs fp32 reference: per-token cosine min {low:.4f} mean {mean:.5f}",
              file=sys.stderr)
        results = [
            _throughput("indexing, end to end (wall)", tokens, ours_t.wall, peer.wall, "tok/s"),
            _throughput("indexing, end to end (CPU)", tokens, ours_t.cpu, peer.cpu, "tok/CPU-s"),
            Result("indexing fidelity: min per-token cosine", low, "cosine", "fp32 reference", 1.0, low,
                   f">= {MIN_COSINE}", low >= MIN_COSINE),
        ]
        lever_texts = texts[:: max(1, len(texts) // (6 if quick else 24))]
        lever_tokens = sum(encoder.tokenizer.count_document_tokens(lever_texts))
        results += measure_levers(ours_encoder, config, model, lever_texts, lever_tokens)
    return results


def _best(kept: Timed | None, new: Timed) -> Timed:
    """The lower wall clock and the lower CPU time of two rounds of one side (each figure its own best)."""
    return new if kept is None else Timed(min(kept.wall, new.wall), min(kept.cpu, new.cpu))


def _load_peer(encoder, warm: list[str]):
    """PyLate's ``ColBERT`` on the same folder, loaded and warmed up (outside the timing)."""
    import torch
    from pylate import models

    torch.set_num_threads(encoder.threads)  # same threads on both sides
    model = models.ColBERT(str(encoder.folder), device="cpu", local_files_only=True,
                           document_length=encoder.info.max_tokens)
    model.encode(warm, is_query=False, show_progress_bar=False)
    return model


def _throughput(name: str, tokens: int, ours_s: float, peer_s: float, unit: str) -> Result:
    value, peer_value = tokens / ours_s, tokens / peer_s
    r = ratio(value, peer_value)
    return Result(name, value, unit, PEER, peer_value, r, ">= 3x peer", r is not None and r >= 3.0)


def _config_overrides(args) -> dict:
    """Config overrides from the command line: torch threads, encode workers, files read ahead of the encoder."""
    out = {}
    if getattr(args, "model", None):
        out["model"] = str(args.model)
    if getattr(args, "threads", None):
        out["threads"] = args.threads
    if getattr(args, "workers", None):
        out["encode_workers"] = args.workers
    if getattr(args, "read_ahead", None) is not None:
        out["read_ahead_files"] = args.read_ahead
    return out


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="6 files and 6 PDF pages: a smoke run")
    parser.add_argument("--files", type=int, help="python-docs files in the sample (default 40)")
    parser.add_argument("--pdf", help="R manual in the sample, or 'none' (default R-data.pdf)")
    parser.add_argument("--pdf-pages", type=int, help="cut the PDF to its first N pages (default: whole)")
    parser.add_argument("--threads", type=int, help="torch threads (default: the engine's, all cores)")
    parser.add_argument("--workers", type=int, help="batches encoded at once (default: Config.encode_workers)")
    parser.add_argument("--rounds", type=int, help=f"turns of peer then ours, best kept (default {ROUNDS})")
    parser.add_argument("--read-ahead", type=int,
                        help="files the indexer reads ahead of its encoder (default: Config.read_ahead_files; 0: "
                             "read each file in line)")
    logging.basicConfig(level=logging.WARNING)
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
