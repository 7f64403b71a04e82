"""Runtimes a user could pick instead of ours for the same model: ONNX Runtime and OpenVINO, against the
document encoder the indexer uses, on the same texts in the same run.

    python bench/run.py --only peers [--quick]
    python bench/peers.py [--quick] [--json] [--model DIR] [--files N] [--rounds R]

Model: the one ``load_encoder`` gives (the bundled MiniLM backbone and its 48-d head here). Its backbone and head
go into one module (``BackboneAndHead``: token ids, attention mask and token types in, un-normalised token
vectors ``[batch, seq, dim]`` out), exported once with ``torch.onnx.export`` (batch and sequence axes dynamic)
into a temporary folder. Texts: the chunks of the indexing benchmark's sample (``bench.floor.chunk_texts``).

Contenders, each given the same batches (the engine's token-budget plan, ``plan_batches``, with PyLate's
tokenisation, kept rows and L2 normalisation done the same way around each, and timed with it):

* ours: ``encode_documents`` of the encoder ``load_encoder`` gives (``DirectEncoder``, precision "auto");
* reference: the same module in PyTorch float32 (PyLate's output within float rounding);
* ONNX Runtime float32 (graph optimisations on, ``Config.threads`` intra-op threads); and, where
  ``onnxruntime.transformers.optimizer`` fuses the BERT graph (attention, layer norm, GELU), that fused graph;
* ONNX Runtime int8: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights per channel, activations
  quantised on the fly) of the fused graph (or of the plain one);
* OpenVINO: ``openvino.convert_model`` of the ONNX file, compiled for the CPU in float32 and with the bf16
  inference-precision hint where the CPU supports bf16.

Each round runs every contender once over all the texts, in turn; each keeps its best tokens per CPU second
(this process's CPU time: the runtimes' spinning worker threads count). Fidelity: the per-token cosine of every
contender's vectors against the reference (min and mean; acceptable: min >= 0.999). A peer whose package is
not installed (``onnx``, ``onnxruntime``, ``openvino``: ``pip install onnx openvino``) is skipped with a line
on stderr and a row that says so.
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Result, bench_config, bench_parser, ratio, run_bench  # noqa: E402

ROUNDS = 2
MIN_COSINE = 0.999
OURS = "ours (DirectEncoder, auto)"


class Missing(Exception):
    """A peer's package is not installed."""


def require(*packages: str) -> None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise Missing(f"not installed: {', '.join(missing)} (pip install {' '.join(missing)})")


# ----------------------------------------------------------------------------------------- the module
def backbone_and_head(model):
    """``torch.nn.Module``: ``(input_ids, attention_mask, token_type_ids) -> [batch, seq, dim]`` token vectors
    before normalisation, the PyLate model's backbone then its head modules."""
    import torch

    class BackboneAndHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = model[0].auto_model
            self.head = torch.nn.ModuleList(list(model)[1:])

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids).last_hidden_state
            features = {"token_embeddings": hidden}
            for module in self.head:
                features = module(features)
            return features["token_embeddings"]

    return BackboneAndHead().eval()


def export_onnx(module, features, path: Path) -> Path:
    """``module`` as an ONNX file at ``path`` (batch and sequence dynamic), traced on ``features``."""
    import torch

    names = ["input_ids", "attention_mask", "token_type_ids"]
    args = tuple(features[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["vectors"] = {0: "batch", 1: "sequence"}
    with torch.inference_mode():
        torch.onnx.export(module, args, str(path), input_names=names, output_names=["vectors"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def fused_onnx(path: Path, config: dict, out: Path) -> Path | None:
    """The BERT graph with ONNX Runtime's transformer fusions (attention, layer norm, GELU), or None when the
    optimizer does not apply to this model."""
    try:
        from onnxruntime.transformers import optimizer

        model = optimizer.optimize_model(str(path), model_type="bert", num_heads=int(config["num_attention_heads"]),
                                         hidden_size=int(config["hidden_size"]), opt_level=1)
        model.save_model_to_file(str(out))
        print(f"  onnxruntime fusions: {model.get_fused_operator_statistics()}", file=sys.stderr)
        return out
    except Exception as exc:  # noqa: BLE001 - an optimizer that cannot handle the graph leaves the plain one
        print(f"  onnxruntime transformer optimizer did not apply: {exc}", file=sys.stderr)
        return None


def quantised_onnx(path: Path, out: Path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # the fused graph's contrib operators carry no inferred types: their outputs are float32
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


def ort_runner(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}

    def run(features):
        feeds = {k: v.numpy() for k, v in features.items() if k in wanted}
        return session.run(["vectors"], feeds)[0]

    return run


def openvino_runner(path: Path, threads: int, *, bf16: bool):
    import openvino as ov

    core = ov.Core()
    model = ov.convert_model(str(path))
    props = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
             "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"}
    compiled = core.compile_model(model, "CPU", props)
    request = compiled.create_infer_request()
    names = {i.get_any_name() for i in compiled.inputs}
    output = compiled.output(0)

    def run(features):
        feeds = {k: v.numpy() for k, v in features.items() if k in names}
        return request.infer(feeds)[output]

    return run


def openvino_bf16() -> bool:
    import openvino as ov

    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in caps


# ------------------------------------------------------------------------------------------- running
class Batches:
    """The texts' token-budget batches, tokenised once per call as the encoder does, with the rows it keeps."""

    def __init__(self, encoder, model, texts: list[str]) -> None:
        from findling.engine.encode.pylate_encoder import plan_batches

        self.encoder, self.model, self.texts = encoder, model, texts
        lengths = encoder.tokenizer.count_document_tokens(texts)
        self.plan = plan_batches(lengths, encoder.batch_tokens)

    def run(self, forward) -> list[np.ndarray]:
        """Every text's L2-normalised kept rows, in text order, from ``forward(features) -> [B, S, dim]``."""
        import torch

        from findling.engine.encode.direct_encoder import DirectEncoder

        out: list[np.ndarray | None] = [None] * len(self.texts)
        for batch in self.plan:
            features = self.model.tokenize([self.texts[i] for i in batch], is_query=False)
            if "token_type_ids" not in features:
                features["token_type_ids"] = torch.zeros_like(features["input_ids"])
            mask = DirectEncoder._row_mask(self.model, features, queries=False)
            vectors = torch.as_tensor(np.asarray(forward(features), dtype=np.float32))
            rows = torch.nn.functional.normalize(vectors[mask], p=2, dim=1).numpy()
            bounds = np.cumsum([0, *mask.sum(dim=1).tolist()])
            for i, a, b in zip(batch, bounds[:-1], bounds[1:]):
                out[i] = rows[a:b]
        return out


def cosines(ours: list[np.ndarray], ref: list[np.ndarray]) -> tuple[float, float]:
    per_token = np.concatenate([(np.asarray(a, dtype=np.float32) * b).sum(axis=1) for a, b in zip(ours, ref)
                                if len(a)])
    return float(per_token.min()), float(per_token.mean())


def timed(fn) -> tuple[object, float, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def contenders(encoder, model, batches: Batches, tmp: Path, threads: int) -> tuple[dict, dict]:
    """name -> ``() -> vectors`` for every runtime that could be set up, and name -> why for the others."""
    import json

    import torch

    from bench.indexing import alone

    module = backbone_and_head(model)

    def reference():
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return batches.run(lambda f: module(f["input_ids"], f["attention_mask"], f["token_type_ids"]))

    fns = {OURS: lambda: encoder.encode_documents(batches.texts),
           "PyTorch fp32 (reference)": lambda: alone(reference)}
    skipped: dict[str, str] = {}
    try:
        require("onnx", "onnxruntime")
    except Missing as exc:
        for name in ("ONNX Runtime fp32", "ONNX Runtime int8 (quantize_dynamic)"):
            skipped[name] = str(exc)
        return fns, skipped | _openvino_skipped(str(exc))
    sample = model.tokenize(batches.texts[:2], is_query=False)
    if "token_type_ids" not in sample:
        sample["token_type_ids"] = torch.zeros_like(sample["input_ids"])
    plain = export_onnx(module, sample, tmp / "model.onnx")
    config = json.loads((Path(encoder.folder) / "config.json").read_text())
    fused = fused_onnx(plain, config, tmp / "model-fused.onnx") if config.get("model_type") == "bert" else None

    def add(name: str, make) -> None:
        """``fns[name]`` from ``make()``, or the reason it could not be set up in ``skipped``."""
        try:
            fns[name] = _bound(batches, make())
        except Exception as exc:  # noqa: BLE001 - a runtime that rejects the model is reported, the rest run
            skipped[name] = f"failed to set up: {type(exc).__name__}: {str(exc)[:200]}"

    add("ONNX Runtime fp32", lambda: ort_runner(plain, threads))
    if fused is not None:
        add("ONNX Runtime fp32, fused (transformers optimizer)", lambda: ort_runner(fused, threads))
    add("ONNX Runtime int8 (quantize_dynamic)",
        lambda: ort_runner(quantised_onnx(fused or plain, tmp / "model-int8.onnx"), threads))
    if fused is not None:
        add("ONNX Runtime int8 (quantize_dynamic, unfused graph)",
            lambda: ort_runner(quantised_onnx(plain, tmp / "model-plain-int8.onnx"), threads))
    try:
        require("openvino")
    except Missing as exc:
        return fns, skipped | _openvino_skipped(str(exc))
    add("OpenVINO fp32", lambda: openvino_runner(plain, threads, bf16=False))
    if openvino_bf16():
        add("OpenVINO bf16 hint", lambda: openvino_runner(plain, threads, bf16=True))
    else:
        skipped["OpenVINO bf16 hint"] = "this CPU has no bf16 for OpenVINO"
    return fns, skipped


def _openvino_skipped(why: str) -> dict[str, str]:
    return {"OpenVINO fp32": why, "OpenVINO bf16 hint": why}


def _bound(batches: Batches, forward):
    return lambda: batches.run(forward)


def collect(args) -> list[Result]:
    from bench.floor import chunk_texts
    from findling.engine.encode.pylate_encoder import PyLateEncoder
    from findling.engine.encode.resolve import load_encoder

    quick = getattr(args, "quick", False)
    rounds = getattr(args, "rounds", None) or (1 if quick else ROUNDS)
    with tempfile.TemporaryDirectory(prefix="findling-peers-") as tmp:
        tmp_path = Path(tmp)
        config = bench_config(args, tmp_path / "home")
        encoder = load_encoder(config)
        texts = chunk_texts(args, tmp_path, encoder, config)
        tokens = sum(encoder.tokenizer.count_document_tokens(texts))
        reference_encoder = PyLateEncoder(encoder.folder, encoder.info, threads=config.threads,
                                          batch_tokens=config.encode_batch_tokens)
        model = reference_encoder._loaded()
        batches = Batches(encoder, model, texts)
        encoder.encode_documents(texts[:2])  # load outside the timing
        fns, skipped = contenders(encoder, model, batches, tmp_path, config.threads)
        for name, why in skipped.items():
            print(f"  {name}: skipped, {why}", file=sys.stderr, flush=True)
        print(f"  {len(texts)} chunks, {tokens} tokens, model {encoder.info.name}, {config.threads} threads; ours "
              f"in {getattr(encoder, 'precision', '?')}", file=sys.stderr, flush=True)
        for fn in fns.values():
            fn()  # every runtime warmed once, outside the timing
        best = {name: (0.0, 0.0) for name in fns}  # (tok/CPU-s, tok/s)
        vectors: dict[str, list[np.ndarray]] = {}
        for round_ in range(1, rounds + 1):
            for name, fn in fns.items():
                out, cpu, wall = timed(fn)
                vectors[name] = out
                best[name] = (max(best[name][0], tokens / cpu), max(best[name][1], tokens / wall))
                print(f"  round {round_}: {name:<50} {tokens / cpu:9,.0f} tok/CPU-s {tokens / wall:9,.0f} tok/s",
                      file=sys.stderr, flush=True)
        encoder.close()
        reference_encoder.close()
    ref = vectors["PyTorch fp32 (reference)"]
    ours_rate = best[OURS][0]
    results = []
    print(f"  {'contender':<50} {'tok/CPU-s':>10} {'x ours':>7} {'cos min':>8} {'cos mean':>9}", file=sys.stderr)
    for name in fns:
        low, mean = cosines(vectors[name], ref)
        rate = best[name][0]
        print(f"  {name:<50} {rate:10,.0f} {rate / ours_rate:7.2f} {low:8.4f} {mean:9.5f}", file=sys.stderr)
        if name == OURS:
            results.append(Result(f"peers: {name}, per-token cosine min vs fp32", low, "cosine",
                                  "PyTorch fp32 (reference)", 1.0, low, ">= 0.99 (engine's bound)", low >= 0.99))
            continue
        # ours against each peer: the target is that no peer at acceptable fidelity is faster than ours
        acceptable = low >= MIN_COSINE
        r = ratio(ours_rate, rate)
        results.append(Result(f"peers: ours vs {name} (cos min {low:.4f})", ours_rate, "tok/CPU-s", name, rate, r,
                              ">= 1x peer where its cos min >= 0.999", r is not None and (r >= 1.0 or not acceptable)))
    for name, why in skipped.items():
        results.append(Result(f"peers: {name}: {why}", 0.0, "tok/CPU-s", name, None, None, "not measured", True))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__, quick="3 files, one round: a smoke run")
    parser.add_argument("--files", type=int, help="python-docs files whose chunks are encoded (default 24)")
    parser.add_argument("--rounds", type=int, help=f"turns of every contender, best kept (default {ROUNDS})")
    return run_bench(parser, collect, argv)


if __name__ == "__main__":
    raise SystemExit(main())
