"""Pairs -> fine-tuned model, with sentence-transformers' Trainer and MultipleNegativesRankingLoss."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import Config
from .records import Chunk, Pair

Progress = Callable[[int, int], None]


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float | None
    device: str


def training_rows(pairs: list[Pair], chunks: dict[str, Chunk]) -> dict[str, list[str]]:
    """(anchor, positive) columns; the positive is looked up by chunk id, never copied into a pair."""
    return {"anchor": [p.query for p in pairs], "positive": [chunks[p.chunk_id].text for p in pairs]}


def _progress_callback(progress: Progress | None) -> Any:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if progress:
                progress(state.global_step, state.max_steps)

    return _Report()


def fine_tune(
    model: Any,
    pairs: list[Pair],
    chunks: dict[str, Chunk],
    cfg: Config,
    work_dir: Path,
    device: str,
    progress: Progress | None = None,
) -> TrainResult:
    """Train `model` in place on question -> chunk pairs.

    MNRL treats the other positives in a batch as negatives, so a chunk that
    appears twice in one batch would be its own false negative; the
    NO_DUPLICATES sampler keeps every text in a batch unique.
    """
    import time

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers.utils import logging as hf_logging

    import datasets

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    dataset = Dataset.from_dict(training_rows(pairs, chunks))
    # With few distinct chunks a full batch cannot be filled without duplicates.
    batch_size = max(2, min(cfg.batch_size, len({p.chunk_id for p in pairs})))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[_progress_callback(progress)],
    )
    # With disable_tqdm the Trainer prints raw log dicts; progress goes through our callback instead.
    from transformers.trainer_callback import PrinterCallback

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
