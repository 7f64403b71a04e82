"""The model card written beside an exported model: what it is, how it was made, how to rebuild it."""
from __future__ import annotations

import json
import platform
from pathlib import Path


def model_card(recipe: dict, recipe_path: Path, seconds: float) -> str:
    spec = recipe.get("head", {})
    data = "\n".join(f"- {d['kind']}: `{d.get('path')}`" + (f" (first {d['limit']} after a seeded shuffle)"
                                                          if d.get("limit") else "") for d in recipe["data"])
    scores = recipe.get("expect", {})
    table = "\n".join(f"| {k} | {v} |" for k, v in scores.items()) or "| (none recorded) | |"
    built = recipe.get("built") or (f"Last run took {seconds / 60:.0f} min (steps already done were skipped) on "
                                    f"{platform.machine()} ({platform.processor() or 'CPU'})")
    return f"""# {recipe.get('name', 'Findling ColBERT model')}

{recipe.get('description', '').strip()}

- Start: `{recipe['start']}`; head: {spec.get('kind', 'ffn')} to {spec.get('dim', 48)} dims
  (middle width {spec.get('mid') or 'twice the input'}), warm start: {spec.get('warm_start', 'pca')}.
- Teacher: {recipe.get('teacher', 'wide-maxsim')}; loss: {recipe.get('fit', {}).get('loss', 'kl')};
  optimiser: {recipe.get('fit', {}).get('optimizer', 'adamw')}; {recipe.get('negatives', 15)} BM25 negatives per query.
- Licence: {recipe.get('licence', 'see the base model')}.

## Data
{data}

## Scores (nDCG@10; each row says how it was measured)
| what | score |
|---|---|
{table}

## Rebuild
```
python -m findling.training run {recipe_path.as_posix() if not recipe_path.is_absolute() else recipe_path.name} --work WORK_DIR
```
{built}, settings:
```
{json.dumps({k: v for k, v in recipe.items() if not k.startswith('_')}, indent=1)}
```
"""
