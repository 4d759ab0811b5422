"""Distillation: a second training stage that teaches the single vector what the served hybrid knows.

The hybrid (the tuned model's dense search, with passages, fused with BM25) ranks better than the
model's one vector per chunk, yet an app that puts the model into its own vector store gets only that
vector. So, after the first stage, each of some training questions gets its candidates (the hybrid's
top DISTIL_CANDIDATES among the training chunks) and a teacher distribution over them (a softmax of
the hybrid's fused scores at TEACHER_TEMPERATURE); the student is the model's cosine between the
question and each candidate's single vector, and the loss the listwise KL divergence from teacher to
student. The question's own chunk is always among its candidates (taking the last place when the
hybrid ranks it lower), so the teacher never learns that the answer is absent; nothing else is left
out or added.

Validation keeps it honest: the validation score is taken before and `evals` times during the stage,
the best state is kept, and it is mixed with the first stage's weights (WiSE-FT) in the share
validation prefers; when no step beats the first stage, the first stage's weights stay as they were.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..config import Config
from ..models import encoding_in, resolve_precision
from ..records import Chunk, Pair
from ..retrieval import BM25Index, dense_index, embed, fused_scores

# The hybrid's top this many chunks per question are its candidates: enough to hold the chunks the
# hybrid and the single vector disagree on, few enough that a step encodes about a hundred chunks.
DISTIL_CANDIDATES = 16
# The teacher's softmax temperature over fused scores (each list min-max scaled, so they lie in [0, 1]):
# a gap of 0.1 is a factor e. The student's cosines are scaled as in the ranking loss.
TEACHER_TEMPERATURE = 0.1
STUDENT_SCALE = 20.0
# Each step takes the questions of CHUNKS_PER_STEP chunks, QUESTIONS_PER_CHUNK of each: questions of one
# chunk share most of their candidates, so a step encodes far fewer chunks than questions x candidates.
CHUNKS_PER_STEP = 4
QUESTIONS_PER_CHUNK = 4
# Used when the hybrid weight is chosen on validation (hybrid_weight None): the evaluate stage's default.
DEFAULT_WEIGHT = 0.6


@dataclass(frozen=True)
class Target:
    """One question, its candidate chunks (ids, the hybrid's best first) and the teacher's distribution."""

    query: str
    chunk_id: str
    candidates: list[str]
    teacher: np.ndarray  # float64, sums to 1


def teacher_targets(
    model: Any,
    pairs: list[Pair],
    chunks: dict[str, Chunk],
    allowed: set[str],
    weight: float,
    k: int = DISTIL_CANDIDATES,
    passage_words: int = 20,
    chunk_weight: float = 0.5,
    passage_stride: int = 1,
    temperature: float = TEACHER_TEMPERATURE,
) -> list[Target]:
    """The hybrid's top `k` chunks among `allowed` (and the question's own) for each pair, and the
    softmax of their fused scores at `temperature`. The dense side is `model` as served (passages)."""
    ids = sorted(allowed | {p.chunk_id for p in pairs})
    texts = [chunks[c].text for c in ids]
    queries = [p.query for p in pairs]
    pool = 10 * k  # as the evaluate stage fuses: each list this deep, the fused top k kept
    dense = dense_index(model, texts, passage_words, chunk_weight, stride=passage_stride)
    fused = fused_scores(
        dense.search(embed(model, queries), pool), BM25Index.build(texts).search(queries, pool), weight
    )
    position = {c: i for i, c in enumerate(ids)}
    out = []
    for p, score in zip(pairs, fused):
        top = sorted(score, key=lambda c: -score[c])[:k]
        own = position[p.chunk_id]
        if own not in top:
            top = top[: k - 1] + [own]
        logits = np.array([score.get(c, 0.0) for c in top], dtype=np.float64) / temperature
        teacher = np.exp(logits - logits.max())
        out.append(Target(p.query, p.chunk_id, [ids[c] for c in top], teacher / teacher.sum()))
    return out


def questions_to_teach(pairs: list[Pair], steps: int, seed: int) -> list[Pair]:
    """The questions `steps` batches need (a seeded choice of STEPS x CHUNKS_PER_STEP chunks, or all of them,
    and up to QUESTIONS_PER_CHUNK questions of each), so the teacher scores no question that is never taught.

    >>> picked = questions_to_teach([Pair(f"q{i}", f"c{i % 10}", "x") for i in range(50)], steps=1, seed=0)
    >>> len(picked), len({p.chunk_id for p in picked})
    (16, 4)
    """
    rng = random.Random(seed)
    by_chunk: dict[str, list[Pair]] = {}
    for p in pairs:
        by_chunk.setdefault(p.chunk_id, []).append(p)
    chosen = sorted(by_chunk)
    rng.shuffle(chosen)
    chosen = chosen[: steps * CHUNKS_PER_STEP]
    return [p for c in chosen for p in rng.sample(by_chunk[c], min(QUESTIONS_PER_CHUNK, len(by_chunk[c])))]


def batches(targets: list[Target], steps: int, seed: int) -> list[list[Target]]:
    """`steps` batches, each the targets of CHUNKS_PER_STEP chunks (up to QUESTIONS_PER_CHUNK of each),
    chunks and questions in a seeded order; the order starts again once every chunk has had its turn."""
    rng = random.Random(seed)
    by_chunk: dict[str, list[Target]] = {}
    for t in targets:
        by_chunk.setdefault(t.chunk_id, []).append(t)
    order: list[str] = []
    out: list[list[Target]] = []
    while len(out) < steps and by_chunk:
        if len(order) < CHUNKS_PER_STEP:
            more = sorted(by_chunk)
            rng.shuffle(more)
            order += more
        picked, order = order[:CHUNKS_PER_STEP], order[CHUNKS_PER_STEP:]
        out.append([t for c in picked for t in rng.sample(by_chunk[c], min(QUESTIONS_PER_CHUNK, len(by_chunk[c])))])
    return out


def distil_loss(model: Any, batch: list[Target], chunks: dict[str, Chunk]) -> Any:
    """The mean listwise KL(teacher || student) over `batch`; each candidate chunk is encoded once."""
    import torch
    import torch.nn.functional as F

    needed = sorted({c for t in batch for c in t.candidates})
    row = {c: i for i, c in enumerate(needed)}
    q = F.normalize(_encode(model, [t.query for t in batch]), dim=-1)
    d = F.normalize(_encode(model, [chunks[c].text for c in needed]), dim=-1)
    losses = []
    for i, t in enumerate(batch):
        cand = d[torch.tensor([row[c] for c in t.candidates], device=d.device)]
        student = F.log_softmax((STUDENT_SCALE * cand @ q[i]).float(), dim=-1)
        teacher = torch.tensor(t.teacher, dtype=student.dtype, device=student.device)
        losses.append(F.kl_div(student, teacher, reduction="sum"))
    return torch.stack(losses).mean()


def _encode(model: Any, texts: list[str]) -> Any:
    # sentence-transformers 6 calls it preprocess (and adds non-tensor entries); 5.x tokenize.
    features = model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)
    features = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in features.items()}
    return model(features)["sentence_embedding"]


def distil(
    model: Any,
    pairs: list[Pair],
    chunks: dict[str, Chunk],
    allowed: set[str],
    cfg: Config,
    device: str,
    validation: Any,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any] | None:
    """With cfg.distil_steps, train `model` in place toward the hybrid's ranking (see the module) and
    return what happened; None when it is off. Without validation questions it does not run (nothing
    could tell a worse model), and says so."""
    if not cfg.distil_steps:
        return None
    if validation is None or not pairs:
        return {"skipped": "no validation questions" if validation is None else "no training questions"}
    from .trainer import without_attention_dropout  # imports torch: only when distillation runs
    from .validation import weights  # imports torch: only when distillation runs

    start = time.perf_counter()
    weight = DEFAULT_WEIGHT if cfg.hybrid_weight is None else cfg.hybrid_weight
    sample = questions_to_teach(pairs, cfg.distil_steps, cfg.seed)
    precision = resolve_precision(cfg.precision, device)
    with encoding_in(precision, device):
        targets = teacher_targets(
            model, sample, chunks, allowed, weight, passage_words=cfg.passage_words,
            chunk_weight=cfg.chunk_weight, passage_stride=cfg.passage_stride,
        )  # fmt: skip
        first = validation.scores(model)["score"]
    first_state = weights(model)
    restore = without_attention_dropout(model)
    try:
        history, losses, best = _train(model, targets, chunks, cfg, validation, precision, device, progress)
    finally:
        restore()
        model.eval()
    best_step = best[0]
    with encoding_in(precision, device):
        mix, mix_scores = _keep_or_restore(model, first_state, best, first, validation, cfg.wise)
    return {
        "steps": len(losses),
        "questions": len(targets),
        "candidates": DISTIL_CANDIDATES,
        "hybrid_weight": weight,
        "seconds": round(time.perf_counter() - start, 1),
        "first_loss": round(losses[0], 4) if losses else None,
        "final_loss": round(losses[-1], 4) if losses else None,
        "start_score": first,
        "history": history,
        "best_step": best_step,
        "mix": mix,
        "mix_scores": {str(a): round(v, 4) for a, v in mix_scores.items()},
    }


def _keep_or_restore(
    model: Any, first_state: Any, best: tuple[Any, Any, Any], first: float, validation: Any, wise: bool
) -> tuple[float, dict[float, float]]:
    """Load the best distilled state when validation prefers it to the first stage's (with --wise, mixed
    back toward the first stage as far as validation allows), else the first stage's; returns the share
    of the change kept and the validation score of each share tried."""
    from .validation import choose_mix  # imports torch: only when distillation runs

    _, best_score, best_state = best
    if best_state is None or best_score <= first:
        model.load_state_dict(first_state)
        return 0.0, {0.0: first}
    model.load_state_dict(best_state)
    if not wise:
        return 1.0, {0.0: first}
    return choose_mix(model, first_state, validation, first, best_score)


def _train(
    model: Any,
    targets: list[Target],
    chunks: dict[str, Chunk],
    cfg: Config,
    validation: Any,
    precision: str,
    device: str,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[list[float]], list[float], tuple[int | None, float, dict[str, Any] | None]]:
    """The stage's steps (AdamW at cfg.learning_rate, linear decay), validated `cfg.evals` times; returns
    the (step, score) history, each step's loss, and the best (step, score, weights) seen."""
    import torch

    from .validation import weights  # imports torch, as above: only when distillation runs

    plan = batches(targets, cfg.distil_steps, cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / len(plan)))
    every = -(-len(plan) // cfg.evals)  # at most cfg.evals validations, the last after the last step
    history: list[list[float]] = []
    losses: list[float] = []
    best: tuple[int | None, float, dict[str, Any] | None] = (None, float("-inf"), None)
    torch.manual_seed(cfg.seed)
    for step, batch in enumerate(plan, 1):
        model.train()
        # In bf16 where training ran in it (autocast, no loss scaling needed); fp16 would need a scaler, so fp32.
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = distil_loss(model, batch, chunks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % every == 0 or step == len(plan):
            model.eval()
            with encoding_in(precision, device):
                score = validation.scores(model)["score"]
            history.append([step, score])
            if score > best[1]:
                best = (step, score, weights(model))
        if progress:
            progress(step, len(plan))
    return history, losses, best


def summary(record: dict[str, Any] | None) -> str:
    """The train stage's words for what distillation did ("" when it was off).

    >>> summary({"steps": 16, "start_score": 0.61, "history": [[8, 0.6], [16, 0.63]], "mix": 0.75})
    '; distilled the hybrid 16 steps: validation 0.610 -> 0.630, kept 75% of the change'
    >>> summary({"skipped": "no validation questions"})
    '; no distillation: no validation questions'
    """
    if not record:
        return ""
    if "skipped" in record:
        return f"; no distillation: {record['skipped']}"
    best = max((score for _, score in record["history"]), default=record["start_score"])
    return (
        f"; distilled the hybrid {record['steps']} steps: validation {record['start_score']:.3f} -> {best:.3f}, "
        f"kept {record['mix']:.0%} of the change"
    )
