"""``python -m findling.training`` / ``findling train``: the training package's commands.

    run RECIPE --work DIR [--stop-after STEP]   a recipe end to end: pairs, features, score, fit, export,
                                                held-out evaluation (each step resumes from its files)
    adapt SOURCE [--out DIR] [--held-out 0.2]   fine-tune the model in use on your own files (a folder, or
                                                "index" for the files already indexed), with a before/after
                                                figure on held-out files
    convert DENSE_MODEL --out DIR [--dim 48] [--head ffn|linear]
                                                a sentence-transformers model as a ColBERT with a new head

The device and thread count come from the environment (FINDLING_DEVICE, FINDLING_THREADS; see
``findling.training.runtime``). ``run`` also works under ``torchrun --nproc_per_node N -m findling.training run ...`` or
``accelerate launch -m findling.training run ...``: rank 0 prepares, all processes fit the head together, rank 0
exports (see ``findling.training.recipe.main_run``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

STEPS = ["pairs", "features", "score", "fit", "export"]

SUMMARY = "Rebuild the bundled model, or fine-tune a model on your own files."
EPILOG = """\
commands:
  run RECIPE --work DIR       a recipe end to end: pairs, features, score, fit, export, held-out evaluation
                              (each step resumes from its files)
  adapt SOURCE [--out DIR]    fine-tune the model in use on your own files (a folder, or "index" for the
                              files already indexed), with a before/after figure on held-out files
  convert DENSE_MODEL --out DIR
                              a sentence-transformers model as a ColBERT with a new head

The device and thread count come from the environment (FINDLING_DEVICE, FINDLING_THREADS). `run` also works
under `torchrun --nproc_per_node N -m findling.training run ...` or `accelerate launch -m findling.training
run ...`: rank 0 prepares, all processes fit the head together, rank 0 exports.

examples:
  findling train adapt ~/Documents
  findling train run findling/training/recipes/bundled.json --work ~/findling-work
  findling train convert ~/models/all-MiniLM-L6-v2 --out ~/models/minilm-colbert"""


def main(argv: list[str] | None = None, config=None) -> int:
    """``python -m findling.training``: the same commands as ``findling train``."""
    parser = argparse.ArgumentParser(prog="findling train", description=SUMMARY, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(parser)
    return run_command(parser.parse_args(argv), config)


def add_train_parser(sub) -> None:
    """Register ``train`` and its commands on the ``findling`` command line's subparsers ``sub``."""
    train = sub.add_parser("train", help="rebuild or fine-tune the model: `train run`, `train adapt`, "
                           "`train convert`", description=SUMMARY, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_commands(train)
    train.set_defaults(func=run_command)


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add the ``run``, ``adapt`` and ``convert`` commands to ``parser``."""
    sub = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    run = sub.add_parser("run", help="run a recipe end to end (each step resumes)", formatter_class=raw,
                         description="Run a training recipe end to end: pairs, features, teacher scores, fit, "
                                     "export, held-out evaluation.",
                         epilog="""\
Each step keeps its files in the work folder, so running the same command again resumes where it stopped.

examples:
  findling train run findling/training/recipes/bundled.json --work ~/findling-work
  findling train run findling/training/recipes/bundled.json --work ~/findling-work --stop-after fit""")
    run.add_argument("recipe", type=Path)
    run.add_argument("--work", type=Path, required=True, help="folder for intermediate files and checkpoints")
    run.add_argument("--stop-after", choices=STEPS)
    adapt = sub.add_parser("adapt", help="fine-tune the model in use on your own files", formatter_class=raw,
                           description="Fine-tune the model in use on your own files, with a before/after "
                                       "figure on files held out.",
                           epilog="""\
examples:
  findling train adapt ~/Documents
  findling train adapt index --steps 200      # the files already indexed
  findling train adapt ~/Documents --out ~/models/adapted --held-out 0.2
then search with the new model: findling model use ~/models/adapted""")
    adapt.add_argument("source", help='a folder of documents, or "index" for the files already indexed')
    adapt.add_argument("--out", type=Path, help="model folder to write (default: DATA/models/adapted-<time>)")
    adapt.add_argument("--work", type=Path, help="folder for intermediate files (default: beside --out)")
    adapt.add_argument("--held-out", type=float, default=0.2, help="share of files kept for the evaluation")
    adapt.add_argument("--steps", type=int, default=400)
    adapt.add_argument("--limit", type=int, default=4000, help="at most this many pseudo-queries")
    adapt.add_argument("--model", help="model to start from (default: the one in use)")
    conv = sub.add_parser("convert", help="turn a dense sentence-transformers model into a ColBERT",
                          formatter_class=raw,
                          description="Turn a dense sentence-transformers model into a ColBERT model with a new "
                                      "projection head.",
                          epilog="""\
examples:
  findling train convert ~/models/all-MiniLM-L6-v2 --out ~/models/minilm-colbert
  findling train convert ~/models/all-MiniLM-L6-v2 --out ~/models/minilm-colbert-linear --head linear --dim 64""")
    conv.add_argument("dense_model", type=Path)
    conv.add_argument("--out", type=Path, required=True)
    conv.add_argument("--dim", type=int, default=48)
    conv.add_argument("--head", choices=["ffn", "linear"], default="ffn")
    conv.add_argument("--query-length", type=int, default=64)
    conv.add_argument("--document-length", type=int, default=512)


def run_command(args: argparse.Namespace, config=None) -> int:
    """Carry out the training command parsed into ``args``."""
    if args.command == "run":
        from findling.training.recipe import main_run

        main_run(args.recipe, args.work, stop_after=args.stop_after)
    elif args.command == "adapt":
        _adapt(args, config)
    elif args.command == "convert":
        from findling.training.convert import convert

        out = convert(args.dense_model, args.out, dim=args.dim, kind=args.head, query_length=args.query_length,
                      document_length=args.document_length)
        print(f"wrote {out}; use it with: findling --model {out} index --reencode")
    return 0


def _adapt(args, config) -> None:
    from findling.engine.config import Config
    from findling.engine.encode.resolve import resolve_model
    from findling.training.recipe import main_run
    from findling.training.runtime import world_size

    if world_size() > 1:  # each process would name its own output folder after the clock and write its recipe
        raise SystemExit("findling train adapt runs in one process; for several GPUs write a recipe and start "
                         "`torchrun --nproc_per_node N -m findling.training run RECIPE --work DIR`")

    config = config or Config.default()
    if args.model:
        config = Config.default(data_dir=config.data_dir, model=args.model)
    start = resolve_model(config)
    out = args.out or config.data_dir / "models" / f"adapted-{time.strftime('%Y%m%d-%H%M%S')}"
    work = args.work or out.with_name(out.name + ".work")
    if args.source == "index":
        data = {"kind": "index", "path": str(config.db_path), "limit": args.limit}
    else:
        folder = Path(args.source).expanduser().resolve()
        if not folder.is_dir():
            raise SystemExit(f"findling train adapt: {folder} is not a folder")
        data = {"kind": "folder", "path": str(folder), "limit": args.limit}
    recipe = {
        "name": f"{start.name} adapted to {args.source}",
        "description": f"{start.name} with its head fine-tuned on pseudo-queries from {args.source}.",
        "start": str(start.path), "out": str(out), "layout": "full", "seed": 0, "data": [data],
        "held_out": args.held_out, "negatives": 15, "teacher": "wide-maxsim",
        "head": {"warm_start": "current"},
        # tuple candidates: in-batch scoring of 256 long passages per step costs several times more on a CPU
        "fit": {"steps": args.steps, "batch": 16, "lr": 0.0003, "loss": "kl", "ce_weight": 1.0},
    }
    work.mkdir(parents=True, exist_ok=True)
    recipe_path = work / "recipe.json"
    if not recipe_path.is_file():  # a second call resumes the same run
        recipe_path.write_text(json.dumps(recipe, indent=1))
    result = main_run(recipe_path, work)
    print(f"model written to {result}; search with it: findling --model {result} index --reencode")
