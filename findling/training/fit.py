"""Fit a projection head on cached backbone features, by distillation (KL) or contrastive loss.

Each step takes a batch of tuples (query, positive, negatives), projects the query's and every candidate's
cached backbone vectors through the head, scores candidates by MaxSim and compares:

* ``kl`` (default): KL divergence between the teacher's score distribution over the tuple's candidates and
  the student's (softmax of scores), as in the mxbai-edge-colbert recipe.
* ``contrastive``: cross-entropy with the positive as the target.

``candidates`` says what each query is scored against: ``tuple`` (its own positive and negatives, with the
teacher scores stored in the tuple) or ``batch`` (every candidate of every tuple in the batch, so each query
also meets the other queries' passages as easy and random negatives; the teacher is then MaxSim over the
normalised wide backbone vectors, computed on the fly, optionally mixed with the backbone's dense cosine
and BM25: ``fused_teacher``). The student compresses 384 dims into 48, and what it
must learn most is to keep unrelated passages low; the 16 BM25 candidates of a tuple alone never show it those.

Optimisers: ``adamw``, or ``muon`` (torch's Muon for the weight matrices, AdamW for biases) when torch has it.
A checkpoint (head, optimiser, step, RNG) is written every ``checkpoint_every`` steps and at the end; a run
started again with the same output folder resumes from it.

Under ``torchrun`` or ``accelerate launch`` the same call trains one head over all the processes, each on its
share of every batch (see ``fit`` and ``findling.training.distributed``); one process runs as it always did.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from findling.training.distributed import (
    Group,
    barrier,
    broadcast_object,
    broadcast_parameters,
    group,
    quiet,
    reduce_gradients,
    shard,
)
from findling.training.features import FeatureSet
from findling.training.head import Head


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
    candidates: str = "tuple"  # "tuple": a query's own candidates; "batch": every candidate in the batch
    token_weight: float = 0.0  # with "batch": add this much per-query-token KL (see ``_token_kl``)
    token_temperature: float = 0.05  # the softmax temperature of that token-level loss (cosine units)
    checkpoint_every: int = 100
    seed: int = 0
    teacher_dense: float = 0.0  # with "batch": mix the backbone's dense cosine into the teacher (``fused_teacher``)
    teacher_bm25: float = 0.0  # with "batch": mix BM25 (each tuple's ``bm25`` list) into the teacher


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


def _padded(tokens: torch.Tensor, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[n, max_len, dim]`` zero-padded rows of the back-to-back ``tokens`` and the ``[n, max_len]`` mask."""
    n, width = len(lengths), max(lengths)
    out = tokens.new_zeros((n, width, tokens.shape[1]))
    mask = torch.zeros((n, width), dtype=torch.bool, device=tokens.device)
    pos = 0
    for i, length in enumerate(lengths):
        out[i, :length] = tokens[pos:pos + length]
        mask[i, :length] = True
        pos += length
    return out, mask


def maxsim_all(q: torch.Tensor, qmask: torch.Tensor, d: torch.Tensor, dmask: torch.Tensor, *,
               per_token: bool = False) -> torch.Tensor:
    """``[B, N]`` MaxSim of every query ``q`` ``[B, Lq, dim]`` against every document ``d`` ``[N, Ld, dim]``.

    With ``per_token`` the ``[B, N, Lq]`` best similarity of each query token (0 at padding) instead of the sum.
    """
    sims = torch.einsum("bqd,ntd->bnqt", q, d).masked_fill(~dmask[None, :, None, :], -1e4)
    best = sims.max(dim=-1).values * qmask[:, None, :]
    return best if per_token else best.sum(-1)


def _zscore(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp_min(1e-6)


def fused_teacher(maxsim: torch.Tensor, dense: torch.Tensor, bm25: torch.Tensor, *, dense_weight: float,
                  bm25_weight: float) -> torch.Tensor:
    """The wide MaxSim teacher ``[B, N]`` with the dense cosine and BM25 mixed in, in MaxSim's own units.

    Each signal is z-scored over a query's candidates, so the weights say how many of MaxSim's standard
    deviations one standard deviation of the other signal is worth; the sum is scaled back by MaxSim's spread,
    so the loss's temperature keeps its meaning. Each is stronger on different text (BM25 on rare exact
    terms, the dense cosine on paraphrase), and the head learns their agreement.
    """
    mixed = _zscore(maxsim)
    if dense_weight:
        mixed = mixed + dense_weight * _zscore(dense)
    if bm25_weight:
        mixed = mixed + bm25_weight * _zscore(bm25)
    return maxsim.mean(-1, keepdim=True) + maxsim.std(-1, keepdim=True) * mixed


def _mean_pooled(tokens: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Unit mean of each text's back-to-back token rows: the backbone's sentence embedding, as the dense lane's."""
    pooled, mask = _padded(tokens, lengths)
    summed = (pooled * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
    return torch.nn.functional.normalize(summed, dim=-1)


def batch_scores(head: Head, batch: list[dict], queries: FeatureSet, passages: FeatureSet, max_doc_tokens: int,
                 *, per_token: bool = False, teacher_dense: float = 0.0,
                 teacher_bm25: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Student and teacher ``[B, N]`` scores over the batch's distinct candidates, and each query's positive.

    With ``per_token`` the scores are ``[B, N, Lq]`` per query token (see ``maxsim_all``). ``teacher_dense`` and
    ``teacher_bm25`` mix those signals into the teacher (``fused_teacher``; not with ``per_token``); BM25
    comes from each tuple's ``bm25`` list of ``[passage, score]`` (0 for a candidate not in it).
    """
    ids = sorted({p for t in batch for p in [t["positive"], *t["negatives"]]})
    where = {p: i for i, p in enumerate(ids)}
    device = next(head.parameters()).device
    raw_d = [np.asarray(passages.text(p))[:max_doc_tokens] for p in ids]
    raw_q = [np.asarray(queries.text(t["query_index"])) for t in batch]
    flat_d = torch.from_numpy(np.concatenate(raw_d).astype(np.float32)).to(device)
    flat_q = torch.from_numpy(np.concatenate(raw_q).astype(np.float32)).to(device)
    d_len, q_len = [len(d) for d in raw_d], [len(q) for q in raw_q]
    with torch.no_grad():
        tq, qmask = _padded(torch.nn.functional.normalize(flat_q, dim=-1), q_len)
        td, dmask = _padded(torch.nn.functional.normalize(flat_d, dim=-1), d_len)
        teacher = maxsim_all(tq, qmask, td, dmask, per_token=per_token)
        if (teacher_dense or teacher_bm25) and not per_token:
            dense = _mean_pooled(flat_q, q_len) @ _mean_pooled(flat_d, d_len).T
            keyword = torch.zeros_like(teacher)
            for b, t in enumerate(batch):
                for pid, value in t.get("bm25", ()):
                    if pid in where:
                        keyword[b, where[pid]] = value
            teacher = fused_teacher(teacher, dense, keyword, dense_weight=teacher_dense, bm25_weight=teacher_bm25)
    sq, _ = _padded(head(flat_q), q_len)
    sd, _ = _padded(head(flat_d), d_len)
    return (maxsim_all(sq, qmask, sd, dmask, per_token=per_token), teacher,
            [where[t["positive"]] for t in batch])


def _kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    log_p = torch.log_softmax(student / temperature, dim=-1)
    target = torch.softmax(teacher / temperature, dim=-1)
    return (target * (torch.log(target.clamp_min(1e-12)) - log_p.clamp_min(-1e4))).sum(-1).mean()


def _token_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Each query token's KL over the candidates: its best match in each candidate, teacher against student.

    ``student`` and ``teacher`` are ``[B, N, Lq]`` (``maxsim_all(..., per_token=True)``); padded query tokens are
    0 in the teacher everywhere and are left out. A score-level KL only sees the sum over query tokens; this
    tells the student which of its token matches carried the teacher's ranking.
    """
    valid = teacher.abs().sum(1) > 0  # [B, Lq]
    log_p = torch.log_softmax(student / temperature, dim=1)
    target = torch.softmax(teacher / temperature, dim=1)
    per = (target * (torch.log(target.clamp_min(1e-12)) - log_p)).sum(1)  # [B, Lq]
    return per[valid].mean()


def _tuple_loss(head: Head, batch: list[dict], queries: FeatureSet, passages: FeatureSet,
                s: FitSettings) -> torch.Tensor:
    """The loss over each query's own candidates, against the teacher scores stored in the tuples."""
    qv = [np.asarray(queries.text(t["query_index"])) for t in batch]
    cands = [[np.asarray(passages.text(p))[: s.max_doc_tokens] for p in [t["positive"], *t["negatives"]]]
             for t in batch]
    scores = student_scores(head, qv, cands)
    if s.loss != "kl":
        return -torch.log_softmax(scores / s.temperature, dim=-1)[:, 0].mean()
    teacher = torch.full(scores.shape, float("-inf"), device=scores.device)
    for b, t in enumerate(batch):
        teacher[b, : len(t["scores"])] = torch.tensor(t["scores"], dtype=torch.float32)
    loss = _kl(scores, teacher, s.temperature)
    if s.ce_weight:
        loss = loss - s.ce_weight * torch.log_softmax(scores / s.temperature, dim=-1)[:, 0].mean()
    return loss


def _step_loss(head: Head, batch: list[dict], queries: FeatureSet, passages: FeatureSet,
               s: FitSettings) -> torch.Tensor:
    """The loss of one (shard of a) batch, by ``s.candidates`` and ``s.loss``."""
    if s.candidates != "batch":
        return _tuple_loss(head, batch, queries, passages, s)
    if (s.teacher_dense or s.teacher_bm25) and s.token_weight:
        raise SystemExit("a mixed teacher (teacher_dense, teacher_bm25) scores whole candidates: set token_weight 0")
    student, teacher, positives = batch_scores(head, batch, queries, passages, s.max_doc_tokens,
                                               per_token=bool(s.token_weight), teacher_dense=s.teacher_dense,
                                               teacher_bm25=s.teacher_bm25)
    token_loss = _token_kl(student, teacher, s.token_temperature) if s.token_weight else None
    if token_loss is not None:
        student, teacher = student.sum(-1), teacher.sum(-1)
    loss = _kl(student, teacher, s.temperature) if s.loss == "kl" else student.new_zeros(())
    if token_loss is not None:
        loss = loss + s.token_weight * token_loss
    if s.loss != "kl" or s.ce_weight:
        ce = torch.nn.functional.cross_entropy(student / s.temperature,
                                               torch.tensor(positives, device=student.device))
        loss = loss + (s.ce_weight if s.loss == "kl" else 1.0) * ce
    return loss


def _resume(checkpoint: Path, head: Head, optimizers: list, g: Group) -> tuple[int, list[float]] | None:
    """Load the checkpoint, if there is one, into ``head`` and ``optimizers``; returns its step and history.

    Only rank 0 reads the file; the other ranks get its contents over the process group, so they all resume
    from the same state and the work folder need not be on a disk every machine sees.
    """
    saved = None
    if g.is_main and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    saved = broadcast_object(saved, g)
    if saved is None:
        return None
    head.load_state_dict(saved["head"])
    for opt, state in zip(optimizers, saved["optimizers"]):
        opt.load_state_dict(state)
    return saved["step"], saved["history"]


def _save_checkpoint(checkpoint: Path, head: Head, optimizers: list, step: int, history: list[float]) -> None:
    tmp = checkpoint.with_suffix(".tmp")
    torch.save({"head": head.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
                "step": step, "history": history}, tmp)
    tmp.replace(checkpoint)


def fit(head: Head, tuples: list[dict], queries: FeatureSet, passages: FeatureSet, out: Path,
        s: FitSettings, *, log=print) -> Head:
    """Train ``head`` in place on ``tuples`` (each with ``query_index``, ``positive``, ``negatives``, ``scores``).

    Under ``torchrun``/``accelerate launch`` (``WORLD_SIZE`` > 1) every process runs this same call and they
    train one head together (see ``findling.training.distributed``):

    * ``s.batch`` stays the *global* batch: every rank draws the same ``s.batch`` tuples from the same seeded
      generator and keeps every ``world``-th of them (from its rank on), so the shards are disjoint and
      together are the batch one process would have drawn. More processes share a step; they do not make it
      bigger (``s.batch`` must be at least the number of processes).
    * The gradients are averaged over the ranks, weighted by shard size, which makes them the gradient of the
      global batch's mean loss: with ``candidates="tuple"`` a run over N processes follows the one-process run
      up to float rounding. The logged and checkpointed loss is the global batch's.
    * With ``candidates="batch"`` each query meets the candidates of its own rank's shard only (no all-gather):
      N processes give each query about 1/N of the in-batch negatives of one process, so raise ``s.batch``
      N-fold to keep them. The per-token loss is likewise averaged over each shard's tokens.
    * All ranks start from rank 0's head (broadcast), and resume from rank 0's checkpoint. Only rank 0 writes
      the checkpoint and logs; every rank returns the same trained head.
    """
    from findling.training.runtime import pick_device

    device = pick_device()
    with group(device) as g:
        return _fit(head, tuples, queries, passages, out, s, log=log if g.is_main else quiet, device=device,
                    g=g)


def _fit(head: Head, tuples: list[dict], queries: FeatureSet, passages: FeatureSet, out: Path, s: FitSettings,
         *, log, device: str, g: Group) -> Head:
    """``fit`` within its process group ``g`` (``SINGLE`` for one process, which then runs as it always did)."""
    if g.is_main:
        out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    head.to(device)
    broadcast_parameters(head, g)
    optimizers = _optimizer(head, s)
    step, history = 0, []
    rng = np.random.default_rng(s.seed)
    resumed = _resume(checkpoint, head, optimizers, g)
    if resumed is not None:
        step, history = resumed
        rng = np.random.default_rng(s.seed + step)
        log(f"  resuming at step {step}/{s.steps}")
    if g.active:
        log(f"  {g.world} processes share each batch of {s.batch} tuples")
    parameters = list(head.parameters())
    base_lrs = [[pg["lr"] for pg in opt.param_groups] for opt in optimizers]
    started = time.time()
    while step < s.steps:
        batch = [tuples[i] for i in rng.choice(len(tuples), size=min(s.batch, len(tuples)), replace=False)]
        mine = shard(batch, g) if g.active else batch
        loss = _step_loss(head, mine, queries, passages, s)
        for opt, lrs in zip(optimizers, base_lrs):
            for pg, lr in zip(opt.param_groups, lrs):
                pg["lr"] = lr * _lr_factor(step, s)
            opt.zero_grad()
        loss.backward()
        value = reduce_gradients(parameters, loss, len(mine) / len(batch), g) if g.active else float(loss.detach())
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        for opt in optimizers:
            opt.step()
        history.append(value)
        step += 1
        if step % 20 == 0 or step == s.steps:
            log(f"  step {step}/{s.steps}  loss {np.mean(history[-20:]):.4f}  ({time.time() - started:.0f} s)")
        if g.is_main and (step % s.checkpoint_every == 0 or step == s.steps):
            _save_checkpoint(checkpoint, head, optimizers, step, history)
    barrier(g)  # every rank returns with the final checkpoint on disk
    return head.cpu()
