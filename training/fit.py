"""Fit a projection head on cached backbone features, by distillation (KL) or contrastive loss.

Each step takes a batch of tuples (query, positive, negatives), projects the query's and every candidate's
cached backbone vectors through the head, scores candidates by MaxSim and compares:

* ``kl`` (default): KL divergence between the teacher's score distribution over the tuple's candidates and
  the student's (softmax of scores), as in the mxbai-edge-colbert recipe.
* ``contrastive``: cross-entropy with the positive as the target.

Optimisers: ``adamw``, or ``muon`` (torch's Muon for the weight matrices, AdamW for biases) when torch has it.
A checkpoint (head, optimiser, step, RNG) is written every ``checkpoint_every`` steps and at the end; a run
started again with the same output folder resumes from it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.features import FeatureSet
from training.head import Head


@dataclass
class FitSettings:
    steps: int = 600
    batch: int = 16
    lr: float = 3e-4
    optimizer: str = "adamw"
    loss: str = "kl"
    temperature: float = 1.0  # scores are divided by it before the softmax (both teacher and student)
    weight_decay: float = 0.01
    warmup: float = 0.05
    max_doc_tokens: int = 256  # candidates are cut to this many tokens while training (cost), not at search
    ce_weight: float = 0.0  # with loss "kl": add this much cross-entropy on the positive (in-domain labels)
    checkpoint_every: int = 100
    seed: int = 0


def _optimizer(head: Head, s: FitSettings):
    if s.optimizer == "muon":
        if not hasattr(torch.optim, "Muon"):
            raise SystemExit("this torch has no Muon optimiser; use --optimizer adamw")
        matrices = [p for p in head.parameters() if p.ndim == 2]
        others = [p for p in head.parameters() if p.ndim != 2]
        return [torch.optim.Muon(matrices, lr=s.lr * 10, weight_decay=s.weight_decay, adjust_lr_fn="match_rms_adamw"),
                torch.optim.AdamW(others, lr=s.lr, weight_decay=0.0)]
    if s.optimizer != "adamw":
        raise SystemExit(f"unknown optimiser {s.optimizer!r} (adamw or muon)")
    return [torch.optim.AdamW(head.parameters(), lr=s.lr, weight_decay=s.weight_decay)]


def _lr_factor(step: int, s: FitSettings) -> float:
    warm = max(1, int(s.steps * s.warmup))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, s.steps - warm)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def student_scores(head: Head, queries: list[np.ndarray], candidates: list[list[np.ndarray]]) -> torch.Tensor:
    """``[batch, candidates]`` MaxSim scores; missing candidates (short tuples) score ``-inf``."""
    n = max(len(c) for c in candidates)
    flat_docs = [d for c in candidates for d in c]
    device = next(head.parameters()).device
    doc_tokens = head(torch.from_numpy(np.concatenate(flat_docs).astype(np.float32)).to(device))
    q_tokens = head(torch.from_numpy(np.concatenate(queries).astype(np.float32)).to(device))
    lmax_d = max(len(d) for d in flat_docs)
    lmax_q = max(len(q) for q in queries)
    dim = doc_tokens.shape[1]
    docs = doc_tokens.new_zeros((len(queries), n, lmax_d, dim))
    dmask = torch.zeros((len(queries), n, lmax_d), dtype=torch.bool, device=device)
    qs = q_tokens.new_zeros((len(queries), lmax_q, dim))
    qmask = torch.zeros((len(queries), lmax_q), dtype=torch.bool, device=device)
    pos = 0
    for b, c in enumerate(candidates):
        for j, d in enumerate(c):
            docs[b, j, : len(d)] = doc_tokens[pos:pos + len(d)]
            dmask[b, j, : len(d)] = True
            pos += len(d)
    pos = 0
    for b, q in enumerate(queries):
        qs[b, : len(q)] = q_tokens[pos:pos + len(q)]
        qmask[b, : len(q)] = True
        pos += len(q)
    sims = torch.einsum("bqd,bntd->bnqt", qs, docs)
    sims = sims.masked_fill(~dmask[:, :, None, :], -1e4)
    best = sims.max(dim=-1).values * qmask[:, None, :]
    scores = best.sum(-1)
    present = dmask.any(-1)
    return scores.masked_fill(~present, float("-inf"))


def fit(head: Head, tuples: list[dict], queries: FeatureSet, passages: FeatureSet, out: Path,
        s: FitSettings, *, log=print) -> Head:
    """Train ``head`` in place on ``tuples`` (each with ``query_index``, ``positive``, ``negatives``, ``scores``)."""
    from training.runtime import pick_device

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    head.to(pick_device())
    optimizers = _optimizer(head, s)
    step, history = 0, []
    rng = np.random.default_rng(s.seed)
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        head.load_state_dict(saved["head"])
        for opt, state in zip(optimizers, saved["optimizers"]):
            opt.load_state_dict(state)
        step, history = saved["step"], saved["history"]
        rng = np.random.default_rng(s.seed + step)
        log(f"  resuming at step {step}/{s.steps}")
    base_lrs = [[g["lr"] for g in opt.param_groups] for opt in optimizers]
    started = time.time()
    while step < s.steps:
        batch = [tuples[i] for i in rng.choice(len(tuples), size=min(s.batch, len(tuples)), replace=False)]
        qv = [np.asarray(queries.text(t["query_index"])) for t in batch]
        cands = [[np.asarray(passages.text(p))[: s.max_doc_tokens] for p in [t["positive"], *t["negatives"]]]
                 for t in batch]
        scores = student_scores(head, qv, cands) / s.temperature
        log_p = torch.log_softmax(scores, dim=-1)
        if s.loss == "kl":
            n = scores.shape[1]
            teacher = torch.full((len(batch), n), float("-inf"), device=scores.device)
            for b, t in enumerate(batch):
                teacher[b, : len(t["scores"])] = torch.tensor(t["scores"], dtype=torch.float32)
            target = torch.softmax(teacher / s.temperature, dim=-1)
            loss = (target * (torch.log(target.clamp_min(1e-12)) - log_p.clamp_min(-1e4))).sum(-1).mean()
            if s.ce_weight:
                loss = loss - s.ce_weight * log_p[:, 0].mean()
        else:
            loss = -log_p[:, 0].mean()
        for opt, lrs in zip(optimizers, base_lrs):
            for g, lr in zip(opt.param_groups, lrs):
                g["lr"] = lr * _lr_factor(step, s)
            opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        for opt in optimizers:
            opt.step()
        history.append(float(loss.detach()))
        step += 1
        if step % 20 == 0 or step == s.steps:
            log(f"  step {step}/{s.steps}  loss {np.mean(history[-20:]):.4f}  ({time.time() - started:.0f} s)")
        if step % s.checkpoint_every == 0 or step == s.steps:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"head": head.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                        "step": step, "history": history}, tmp)
            tmp.replace(checkpoint)
    return head.cpu()
