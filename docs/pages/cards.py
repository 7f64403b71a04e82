"""The scores block of every bundled model card, ``assets/models/<name>/README.md``, from the recorded runs.

The block (between ``findling.training.card.SCORES_START`` and ``SCORES_END``) shows, per data set and split,
each mode's nDCG@10 (and Recall@100 where the run has it), the run's stamp, precision and vector format, and
the ``findling eval`` command that reproduces it. A run belongs to the card of the folder its ``model`` names
(``findling/<name>``, a path ending in it, or the name itself). Contracts: everything outside the block, the
marker lines included, is kept byte for byte; a card without the markers is left as it is and reported by the
generator; a card with no run of its model shows the card module's ``NO_SCORES``, the text the export writes; a
recorded file that cannot be read is named on the card of the model its file name ends in.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .markdown import cell, number, stamp, table
from .paths import EVAL_DIR, MODELS_DIR, shown
from .runs import ordered_modes, read_runs, run_metric, slug

DATA_SHOWN = "../shared/data"
"""Where the commands on model cards find the data sets: the shared data folder beside the checkout."""
BUNDLED_PREFIX = "findling/"
"""How ``findling eval`` names a bundled model (``findling/<folder name>``): one it runs without ``--model``."""
CARD_MODES = {"hybrid": "hybrid (the default ranking)", "bm25": "bm25 (keywords alone)",
              "maxsim": "maxsim (token vectors alone)",
              "dense": "dense (baseline: all-MiniLM-L6-v2's sentence embedding, exact cosine)",
              "dense_lane": "dense_lane (the index's per-chunk dense vectors alone)"}
"""How a model card names each ranking mode of ``findling eval``; modes not named here show as they are."""
FUSION_FLAGS = (("method", "--fusion"), ("weight", "--fusion-weight"), ("dense", "--fusion-dense"),
                ("decay", "--fusion-decay"), ("keyword_decay", "--fusion-keyword-decay"))
"""The run's recorded fusion field and the ``findling eval`` option that sets it."""


def card_module():
    """``findling.training.card``, which owns the card's markers and its text for a model with no run (imported
    when a card is made, not when this module is)."""
    from findling.training import card

    return card


def run_model_name(run: Mapping) -> str:
    """The folder name a run's ``model`` field ends in (``findling/x``, ``/path/to/x`` and ``x`` all give x)."""
    return str(run.get("model") or "").replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def reproduce_command(run: Mapping) -> str:
    """The ``findling eval`` command line that measures ``run`` again and records it: every setting the run
    recorded is spelled out (precision, vector format, chunk size, fusion), so the command does not depend on
    the defaults of a later version. A bundled model is run without ``--model``; any other by its recorded
    name or path."""
    words = []
    if run.get("precision"):
        words.append(f"FINDLING_PRECISION={run['precision']}")
    words += ["findling", "eval", f"{DATA_SHOWN}/{run.get('dataset')}"]
    model = str(run.get("model") or "")
    if model and not model.startswith(BUNDLED_PREFIX):
        words += ["--model", model]
    if run.get("split") not in (None, "", "test"):
        words += ["--split", str(run["split"])]
    for key, flag in (("max_docs", "--max-docs"), ("max_queries", "--max-queries"),
                      ("chunk_tokens", "--chunk-tokens"), ("vector_format", "--codec")):
        if run.get(key) not in (None, ""):
            words += [flag, _flag(run[key])]
    fusion = run.get("fusion") if isinstance(run.get("fusion"), Mapping) else {}
    for key, flag in FUSION_FLAGS:
        if fusion.get(key) not in (None, ""):
            words += [flag, _flag(fusion[key])]
    return " ".join(words + ["--json", "|", "python", "docs/generate.py", "record-eval"])


def _flag(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_card_scores(runs: list[Mapping], *, problems: Iterable[str] = ()) -> list[str]:
    """The lines inside a card's scores block: one section per data set (and split) with each mode's nDCG@10
    (and Recall@100 where the run has it), the run's stamp and the command that reproduces it; the card
    module's ``NO_SCORES`` when no run is recorded."""
    problems = list(problems)
    lines: list[str] = []
    if not runs:
        lines.append(card_module().NO_SCORES)
    else:
        runs = sorted(runs, key=lambda r: (str(r.get("dataset")), str(r.get("split"))))
        lines.append("Measured by `findling eval` on each data set, one recorded run per data set "
                     f"(`{shown(EVAL_DIR)}/`); hybrid is Findling's default ranking.")
        if any(str(r.get("model") or "").startswith(BUNDLED_PREFIX) for r in runs):
            lines += ["", "Commands without `--model` run the bundled model: Findling uses it when no model is set "
                          "(`--model`, `FINDLING_MODEL`, `findling model use`) and the target model is not in the "
                          "Hugging Face cache."]
        for run in runs:
            modes = ordered_modes([run])
            modes = [m for m in modes if m == "hybrid"] + [m for m in modes if m != "hybrid"]
            recall = any(isinstance(v, Mapping) and "recall@100" in v for v in run["modes"].values())
            split = f"{run.get('split')} split" if run.get("split") else "split not recorded"
            size = ", ".join(f"{number(run[k])} {label}" for k, label in (("n_docs", "documents"),
                                                                         ("n_queries", "queries"))
                             if isinstance(run.get(k), int))
            lines += ["", f"### {cell(run.get('dataset'))} ({split}{': ' + size if size else ''})", ""]
            lines += table(["mode", "nDCG@10"] + ["Recall@100"] * recall,
                           ([CARD_MODES.get(m, cell(m)), run_metric(run, m, "ndcg@10")]
                            + [run_metric(run, m, "recall@100")] * recall for m in modes))
            reused = bool(run.get("reused_index"))
            line = (f"- Run: {stamp(run, 'date')}; machine {stamp(run, 'machine')}; commit {stamp(run, 'commit')}; "
                    f"{'query ' if reused else ''}encoder precision {cell(run.get('precision'))}; "
                    f"vectors {cell(run.get('vector_format'))}")
            if reused:
                line += "; searched an index that an earlier run of the same corpus and model kept (and encoded)"
            lines += ["", line + ".", f"- Reproduce: `{reproduce_command(run)}`"]
    if problems:
        lines += ["", "Not shown (could not be read):", ""] + [f"- {p}" for p in problems]
    return lines


def card_text(text: str, name: str, runs: Iterable[Mapping], *, problems: Iterable[str] = ()) -> str:
    """``text`` (a model card for the model folder ``name``) with its scores block regenerated from the runs of
    that model among ``runs``; everything outside the block, the marker lines included, is kept byte for byte.
    A card without the markers is returned as it is."""
    card = card_module()
    start = text.find(card.SCORES_START)
    end = text.find(card.SCORES_END, start)
    if start < 0 or end < 0:
        return text
    start = text.find("\n", start) + 1
    if start <= 0 or start > end:
        return text
    mine = [r for r in runs if run_model_name(r) == name]
    return text[:start] + "\n".join(render_card_scores(mine, problems=problems)) + "\n" + text[end:]


def card_pages(models_dir: Path | None = None, folder: Path | None = None) -> dict[Path, str]:
    """Every model card under ``models_dir`` (``<name>/README.md``) with its scores block regenerated from the
    runs recorded in ``folder``. A file there that cannot be read is named on the card of the model its name
    ends in (``record-eval`` names them ``<data set>--<model>[--<split>].json``)."""
    models_dir = MODELS_DIR if models_dir is None else models_dir
    folder = EVAL_DIR if folder is None else folder
    runs, unread = read_runs(folder)
    pages = {}
    for readme in sorted(models_dir.glob("*/README.md")) if models_dir.is_dir() else []:
        name = readme.parent.name
        problems = [p for path, p in unread if slug(name) in path.stem.split("--")[1:]]
        pages[readme] = card_text(readme.read_text(encoding="utf-8"), name, runs, problems=problems)
    return pages


def cards_without_scores_block(pages: Mapping[Path, str]) -> list[Path]:
    """The cards among ``pages`` that have no scores block, so the generator leaves their scores alone."""
    card = card_module()
    return [path for path, text in pages.items() if card.SCORES_START not in text or card.SCORES_END not in text]
