"""Pairs -> fine-tuned model, with sentence-transformers' Trainer and MultipleNegativesRankingLoss."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from torch import nn

from .config import Config
from .records import Chunk, Pair

Progress = Callable[[int, int], None]


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float | None
    device: str


def training_rows(
    pairs: list[Pair], chunks: dict[str, Chunk], queries_per_row: int, negatives: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """One row per chunk: `queries_per_row` question columns, the chunk text as "chunk",
    and with `negatives` (chunk id -> hard negative chunk id) a "hard_negative" column.

    A chunk with fewer questions repeats them in turn. The positive is looked
    up by chunk id, never copied into a pair.

    >>> ch = {"a": Chunk("a", "f", (1,), "text A", 2), "b": Chunk("b", "f", (1,), "text B", 2)}
    >>> training_rows([Pair("q1", "a", "x"), Pair("q2", "a", "x"), Pair("q3", "b", "x")], ch, 2)
    {'query_0': ['q1', 'q3'], 'query_1': ['q2', 'q3'], 'chunk': ['text A', 'text B']}
    """
    by_chunk: dict[str, list[str]] = {}
    for p in pairs:
        by_chunk.setdefault(p.chunk_id, []).append(p.query)
    rows: dict[str, list[str]] = {f"query_{i}": [] for i in range(queries_per_row)}
    rows["chunk"] = []
    if negatives is not None:
        rows["hard_negative"] = []
    for cid, queries in by_chunk.items():
        if negatives is not None and cid not in negatives:
            continue
        for i in range(queries_per_row):
            rows[f"query_{i}"].append(queries[i % len(queries)])
        rows["chunk"].append(chunks[cid].text)
        if negatives is not None:
            rows["hard_negative"].append(chunks[negatives[cid]].text)
    return rows


def mine_hard_negatives(
    model: Any, pairs: list[Pair], chunks: dict[str, Chunk], allowed: set[str], margin: float = 0.95,
    max_chunk_similarity: float = 0.9, depth: int = 20,
) -> dict[str, str]:
    """For each chunk with questions, the chunk (among `allowed`) the base model ranks highest
    for its questions without being the answer.

    A candidate is skipped as a likely false negative when it scores above
    `margin` times the positive's score, or is a near-duplicate of the positive
    (cosine above `max_chunk_similarity`).
    """
    import numpy as np

    from .evaluate import build_index, embed

    ids = sorted(allowed | {p.chunk_id for p in pairs})
    pos_of = {cid: i for i, cid in enumerate(ids)}
    chunk_vecs = embed(model, [chunks[c].text for c in ids])
    query_vecs = embed(model, [p.query for p in pairs])
    scores, idx = build_index(chunk_vecs).search(query_vecs, min(depth, len(ids)))
    votes: dict[str, dict[str, float]] = {}
    for p, q_vec, row_scores, row_idx in zip(pairs, query_vecs, scores, idx):
        positive = pos_of[p.chunk_id]
        pos_score = float(q_vec @ chunk_vecs[positive])
        for score, j in zip(row_scores, row_idx):
            cid = ids[j]
            if j == positive or cid not in allowed or score > margin * pos_score:
                continue
            if float(chunk_vecs[j] @ chunk_vecs[positive]) > max_chunk_similarity:
                continue
            tally = votes.setdefault(p.chunk_id, {})
            tally[cid] = tally.get(cid, 0.0) + float(score)
            break
    return {cid: max(t, key=lambda c: t[c]) for cid, t in votes.items() if t} if votes else {}


class MultiQueryRankingLoss(nn.Module):
    """MultipleNegativesRankingLoss for several questions sharing one positive chunk.

    Columns are (query_0, …, query_{n-1}, chunk[, hard_negative]). Every question is scored
    against all chunks in the batch; the other chunks are its negatives. Each
    chunk is encoded once per step for all of its questions, so an epoch costs
    about 1/n of plain MNRL over (question, chunk) rows, where chunks dominate
    the compute.
    """

    def __init__(self, model: Any, scale: float = 20.0, with_negatives: bool = False) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.with_negatives = int(with_negatives)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Any = None) -> Any:
        import torch
        import torch.nn.functional as F

        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]
        # Columns: questions…, chunk[, hard_negative]. Hard negatives join the
        # candidate chunks; the targets stay the first len(positives) rows.
        n_queries = len(embeddings) - 1 - self.with_negatives
        queries, positives = embeddings[:n_queries], embeddings[n_queries]
        candidates = torch.cat(embeddings[n_queries:]) if self.with_negatives else positives
        candidates = F.normalize(candidates, dim=-1)
        target = torch.arange(len(positives), device=positives.device)
        losses = [F.cross_entropy(self.scale * F.normalize(q, dim=-1) @ candidates.T, target) for q in queries]
        return torch.stack(losses).mean()

    @property
    def citation(self) -> str:
        return ""


def _progress_callback(progress: Progress | None) -> Any:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if progress:
                progress(state.global_step, state.max_steps)

    return _Report()


def run_trainer(
    model: Any,
    columns: dict[str, Any],
    loss: Any,
    cfg: Any,
    work_dir: Path,
    device: str,
    progress: Progress | None = None,
    no_duplicates: bool = False,
) -> TrainResult:
    """Run sentence-transformers' Trainer quietly on `columns` with `loss`.

    `cfg` supplies epochs, max_steps, batch_size, learning_rate, warmup_ratio,
    weight_decay and seed (Config and PairsConfig both do). Progress goes
    through `progress(done, total)`, never to stdout. With several datasets,
    `columns` and `loss` are dicts keyed by dataset name, and batches take
    turns between them (round robin).
    """
    import time

    import datasets
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    from datasets import DatasetDict
    from sentence_transformers.sentence_transformer.training_args import MultiDatasetBatchSamplers

    multi = isinstance(loss, dict)
    dataset: Any = (DatasetDict({k: Dataset.from_dict(v) for k, v in columns.items()}) if multi
                    else Dataset.from_dict(columns))
    rows = min(len(d) for d in dataset.values()) if multi else len(dataset)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        # With few rows a full batch cannot be filled (without duplicates).
        per_device_train_batch_size=max(2, min(cfg.batch_size, rows)),
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES if no_duplicates else BatchSamplers.BATCH_SAMPLER,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[_progress_callback(progress)]
    )
    # With disable_tqdm the Trainer prints raw log dicts; progress goes through our callback instead.
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return TrainResult(
        steps=int(out.global_step),
        seconds=time.perf_counter() - start,
        final_loss=float(losses[-1]) if losses else float(out.training_loss),
        device=device,
    )


def fine_tune(
    model: Any,
    pairs: list[Pair],
    chunks: dict[str, Chunk],
    cfg: Config,
    work_dir: Path,
    device: str,
    progress: Progress | None = None,
    negatives: dict[str, str] | None = None,
    labelled: list[Any] | None = None,
) -> TrainResult:
    """Train `model` in place on question -> chunk pairs (and, given `labelled`
    LabelledPairs, on those too with cfg.pairs_loss, taking turns by batch).

    In-batch negatives: the other chunks of a batch are negatives for each
    question, so a chunk that appears twice in one batch would be its own false
    negative; the NO_DUPLICATES sampler keeps every text in a batch unique.
    """
    columns: dict[str, Any] = training_rows(pairs, chunks, cfg.questions_per_chunk, negatives)
    loss: Any = MultiQueryRankingLoss(model, with_negatives=negatives is not None)
    if labelled:
        from .pairs import labelled_columns, make_loss

        columns = {"retrieval": columns, "labelled": labelled_columns(labelled)}
        loss = {"retrieval": loss, "labelled": make_loss(cfg.pairs_loss, model)}
    return run_trainer(model, columns, loss, cfg, work_dir, device, progress, no_duplicates=True)
