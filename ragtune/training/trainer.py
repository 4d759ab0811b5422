"""Pairs -> fine-tuned model, with sentence-transformers' Trainer: the training rows, the Trainer's
arguments and callbacks put together (run_trainer), and the run mode's training (fine_tune).

The parts live beside it: losses/ (every loss), negatives.py (hard-negative mining), validation.py
(score, evaluator, WiSE-FT mix), checkpoints.py (marking, scanning, resuming), callbacks.py."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..config import Config, TrainingArgs
from ..models import encoding_in, quiet_libraries, resolve_precision
from ..records import Chunk, Pair
from . import distributed
from .callbacks import MarkComplete, Progress, ReportProgress, StopAtDeadline, StopOnSignal, TrainingInterrupted
from .checkpoints import checkpoint_problem, checkpoint_step, scan_checkpoints
from .deadline import Deadline
from .long_inputs import Window, with_long_rows
from .losses import cached_ranking_loss, labelled_columns, make_loss
from .losses.ranking import MultiQueryRankingLoss
from .validation import Validation, ValidationEvaluator, choose_mix, weights


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final_loss: float | None
    device: str
    # The arithmetic training ran in: fp32, bf16 or fp16.
    precision: str = "fp32"
    # (step, validation score) at each checkpoint, and the step that was kept.
    val_history: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    # Validation score of the starting weights; the share of the tuned weights
    # kept (1.0: all of them, 0.0: the base model) and the score of each share tried.
    base_score: float | None = None
    mix: float = 1.0
    mix_scores: dict[float, float] = field(default_factory=dict)
    mix_cap: float = 1.0  # the largest share the mix could keep (cfg.wise_share)
    # What the distillation stage did (ragtune.training.distil), or None when it was off.
    distil: dict[str, Any] | None = None
    # The steps training was set to run when a deadline (a time budget) ended it early, else None.
    cut_from: int | None = None
    # The steps planned when training ran faster than planned and took more before the deadline, else None.
    stretched_from: int | None = None

    @property
    def best_score(self) -> float | None:
        """The best validation score over training (the checkpoint that was kept)."""
        return max((score for _, score in self.val_history), default=None)


def training_rows(
    pairs: list[Pair], chunks: dict[str, Chunk], queries_per_row: int, negatives: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Rows of `queries_per_row` question columns, the chunk text as "chunk", and with
    `negatives` (chunk id -> hard negative chunk id) a "hard_negative" column.

    A chunk with more questions than a row holds gets several rows, each with
    different questions, so an epoch sees every question once; the last row of a
    chunk (or its only one) repeats questions in turn to fill up. The positive is
    looked up by chunk id, never copied into a pair.

    >>> ch = {"a": Chunk("a", "f", (1,), "text A", 2), "b": Chunk("b", "f", (1,), "text B", 2)}
    >>> training_rows([Pair("q1", "a", "x"), Pair("q2", "a", "x"), Pair("q3", "b", "x")], ch, 2)
    {'query_0': ['q1', 'q3'], 'query_1': ['q2', 'q3'], 'chunk': ['text A', 'text B']}
    >>> training_rows([Pair(f"q{i}", "a", "x") for i in range(5)], ch, 2)["query_1"]
    ['q1', 'q3', 'q0']
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
        for start in range(0, len(queries), queries_per_row):
            for i in range(queries_per_row):
                rows[f"query_{i}"].append(queries[(start + i) % len(queries)])
            rows["chunk"].append(chunks[cid].text)
            if negatives is not None:
                rows["hard_negative"].append(chunks[negatives[cid]].text)
    return rows


def without_attention_dropout(model: Any) -> Callable[[], None]:
    """Set the attention-probability dropout of `model` to 0; returns a function that restores it.

    On a CPU, scaled-dot-product attention with dropout falls back to a kernel that
    materialises the attention matrix: measured here, a training step of 32 chunks
    of 256 tokens took 6.6 s with it and 3.0 s without, with the same retrieval
    quality on the third-party bench (README, "How well it works"). Hidden-state
    dropout stays.
    """
    changed = []
    for name, module in model.named_modules():
        # BERT-style attention keeps its probability dropout on `<layer>.attention.self.dropout`.
        dropout = getattr(module, "dropout", None)
        if isinstance(dropout, nn.Dropout) and name.endswith(("attention.self", "attention")) and dropout.p:
            changed.append((dropout, dropout.p))
            dropout.p = 0.0

    def restore() -> None:
        for dropout, p in changed:
            dropout.p = p

    return restore


def _finished_checkpoint(
    model: Any,
    checkpoint: Path,
    validation: Validation | None,
    device: str,
    progress: Progress | None,
    precision: str = "fp32",
) -> TrainResult | None:
    """When `checkpoint` is the last step of training, load what training would have ended with
    (the best checkpoint with validation, else the last) and return its result; else None.

    Resuming the Trainer from its last step would train one step more than asked.
    """
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    step, total = int(state.get("global_step", 0)), int(state.get("max_steps") or 0)
    if not total or step < total:
        return None
    start = time.perf_counter()
    best = state.get("best_model_checkpoint")
    # The path was recorded where the run directory was then; look for the same folder here.
    best_path = checkpoint.parent / Path(best).name if best else None
    keep = best_path if validation and best_path is not None and checkpoint_problem(best_path) is None else checkpoint
    loaded = type(model)(str(keep), device=device)
    model.load_state_dict(loaded.state_dict())
    if progress:
        progress(step, total)
    return _result(
        state.get("log_history", []),
        step,
        time.perf_counter() - start,
        device,
        precision,
        best_step=checkpoint_step(str(keep)) if validation else None,
    )


def _result(
    history: list[dict[str, Any]],
    steps: int,
    seconds: float,
    device: str,
    precision: str,
    best_step: int | None,
    last_loss: float | None = None,
) -> TrainResult:
    """The TrainResult the Trainer's log history tells: the last logged loss (else `last_loss`) and
    the validation score at each checkpoint."""
    losses = [h["loss"] for h in history if "loss" in h]
    return TrainResult(
        steps=steps,
        seconds=seconds,
        final_loss=float(losses[-1]) if losses else last_loss,
        device=device,
        precision=precision,
        val_history=[(int(h["step"]), float(h["eval_val_score"])) for h in history if "eval_val_score" in h],
        best_step=best_step,
    )


def _dataset(columns: dict[str, Any], multi: bool) -> tuple[Any, int]:
    """The Trainer's dataset, one or with `multi` one per name of `columns` (then batches take turns),
    and the rows of the smallest (a batch cannot hold more)."""
    from datasets import Dataset, DatasetDict

    if multi:
        datasets = DatasetDict({k: Dataset.from_dict(v) for k, v in columns.items()})
        return datasets, min(len(d) for d in datasets.values())
    dataset = Dataset.from_dict(columns)
    return dataset, len(dataset)


def _training_arguments(
    args: TrainingArgs,
    work_dir: Path,
    device: str,
    precision: str,
    rows: int,
    batch_sampler: Any,
    validated: bool,
    evals: int,
) -> Any:
    """sentence-transformers' training arguments for `args`, with `evals` checkpoints over training,
    each scored when `validated`."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import MultiDatasetBatchSamplers

    return SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        # With few rows a full batch cannot be filled (without duplicates).
        per_device_train_batch_size=max(2, min(args.batch_size, rows)),
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_ratio,
        weight_decay=args.weight_decay,
        seed=args.seed,
        data_seed=args.seed,
        batch_sampler=batch_sampler,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        # A ratio below 1 means a share of the total steps.
        save_strategy="steps",
        save_steps=1 / evals,
        save_total_limit=2,
        eval_strategy="steps" if validated else "no",
        eval_steps=1 / evals,
        load_best_model_at_end=validated,
        metric_for_best_model="eval_val_score" if validated else None,
        greater_is_better=True,
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
    )


def _callbacks(
    progress: Progress | None, stopper: StopOnSignal, patience: int, in_time: StopAtDeadline | None = None
) -> list[Any]:
    """Progress, stop on a signal, mark each checkpoint complete, with `patience` stop early, and with
    `in_time` stop at its deadline."""
    callbacks = [ReportProgress(progress), stopper.callback(), MarkComplete()] + ([in_time] if in_time else [])
    if patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
    return callbacks


@quiet_libraries()
def run_trainer(
    model: Any,
    columns: dict[str, Any],
    loss: Any,
    args: TrainingArgs,
    work_dir: Path,
    device: str,
    progress: Progress | None = None,
    no_duplicates: bool = False,
    validation: Validation | None = None,
    evals: int = 4,
    patience: int = 0,
    resume: Path | None = None,
    batch_sampler: Any = None,
    deadline: Deadline | None = None,
) -> TrainResult:
    """Run sentence-transformers' Trainer quietly on `columns` with `loss`.

    `args` holds epochs, max_steps, batch_size, learning_rate, warmup_ratio,
    weight_decay and seed (`TrainingArgs.of(cfg)` for a Config or a PairsConfig). Progress goes
    through `progress(done, total)`, never to stdout. With several datasets,
    `columns` and `loss` are dicts keyed by dataset name, and batches take
    turns between them (round robin).

    A checkpoint is saved to `work_dir` `evals` times over training, marked
    complete once all of it is written (see `scan_checkpoints`); with `resume`
    (a complete checkpoint), training continues from it, or, when it is the
    last step, ends there without training again. With `validation`,
    each checkpoint is scored, the best is loaded at the end, and training
    stops after `patience` scores without improvement (0: never). SIGINT or
    SIGTERM saves a checkpoint after the current step and raises
    TrainingInterrupted. With `deadline`, training ends with the last step that ends before it, or, run
    faster than planned, takes the steps that fit before it (StopAtDeadline).
    """
    precision = resolve_precision(args.precision, device)
    # A checkpoint of training that had stretched (StopAtDeadline) resumes to the steps it had stretched to: the
    # Trainer sets its schedule and epochs from max_steps, and would go back to the planned ones.
    planned = args.max_steps
    if resume is not None and args.max_steps > 0:
        total = int(json.loads((resume / "trainer_state.json").read_text(encoding="utf-8")).get("max_steps") or 0)
        args = dataclasses.replace(args, max_steps=max(args.max_steps, total))
    if resume is not None:
        finished = _finished_checkpoint(model, resume, validation, device, progress, precision)
        if finished is not None:
            finished.stretched_from = planned if args.max_steps > planned else None
            return finished
    stopper = StopOnSignal(Path(work_dir))
    # Under torchrun every rank must stop at the same step, which timing each rank's own steps cannot promise.
    timed = deadline is not None and distributed.world_size() == 1
    # Set out for the most steps a stretch may take (the loop runs no more epochs than the Trainer's max_steps
    # hold), training held to the planned ones until it stretches: see StopAtDeadline.
    hold = timed and 0 < args.max_steps < deadline.most_steps
    set_out = dataclasses.replace(args, max_steps=deadline.most_steps) if hold else args
    in_time = StopAtDeadline(deadline, hold_to=args.max_steps if hold else 0) if timed else None
    callbacks = _callbacks(progress, stopper, patience if validation else 0, in_time)
    trainer = _trainer(
        model,
        columns,
        loss,
        set_out,
        work_dir,
        device,
        precision,
        callbacks,
        validation,
        evals,
        no_duplicates,
        batch_sampler,
    )
    result = _train(trainer, stopper, work_dir, resume, device, precision)
    if in_time is not None and in_time.stopped_at is not None:
        result.cut_from = int(trainer.state.max_steps)
    if args.max_steps > planned:
        result.stretched_from = planned
    elif in_time is not None:
        result.stretched_from = in_time.stretched_from
    return result


def _trainer(
    model: Any,
    columns: dict[str, Any],
    loss: Any,
    args: TrainingArgs,
    work_dir: Path,
    device: str,
    precision: str,
    callbacks: list[Any],
    validation: Validation | None,
    evals: int,
    no_duplicates: bool,
    batch_sampler: Any,
) -> Any:
    """sentence-transformers' Trainer, set up for `run_trainer`: the rows, the arguments, the callbacks."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    dataset, rows = _dataset(columns, multi=isinstance(loss, dict))
    sampler = batch_sampler or (BatchSamplers.NO_DUPLICATES if no_duplicates else BatchSamplers.BATCH_SAMPLER)
    trainer_args = _training_arguments(args, work_dir, device, precision, rows, sampler, validation is not None, evals)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=trainer_args,
        train_dataset=dataset,
        loss=loss,
        callbacks=callbacks,
        evaluator=ValidationEvaluator(validation, precision, device) if validation else None,
    )
    # With disable_tqdm the Trainer prints raw log dicts; progress goes through our callback instead.
    trainer.remove_callback(PrinterCallback)
    return trainer


def _train(
    trainer: Any, stopper: StopOnSignal, work_dir: Path, resume: Path | None, device: str, precision: str
) -> TrainResult:
    """Train (from `resume` when given) until done or a signal; a signal raises TrainingInterrupted."""
    start = time.perf_counter()
    with stopper:
        out = trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    if stopper.signum is not None:
        raise TrainingInterrupted(stopper.signum, saved=scan_checkpoints(Path(work_dir))[0] is not None)
    return _result(
        trainer.state.log_history,
        int(out.global_step),
        time.perf_counter() - start,
        device,
        precision,
        checkpoint_step(trainer.state.best_model_checkpoint),
        float(out.training_loss),
    )


def _ranking_loss(model: Any, cfg: Config, with_negatives: bool) -> Any:
    """The loss for generated questions: MultiQueryRankingLoss (gradient-cached with cfg.mini_batch_size),
    wrapped in MatryoshkaLoss with cfg.matryoshka_dims."""
    loss: Any = (
        cached_ranking_loss(model, cfg.mini_batch_size, with_negatives)
        if cfg.mini_batch_size
        else MultiQueryRankingLoss(model, with_negatives=with_negatives)
    )
    if cfg.matryoshka_dims:
        from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

        full = model.get_embedding_dimension()
        loss = MatryoshkaLoss(model, loss, sorted({full, *cfg.matryoshka_dims}, reverse=True))
    return loss


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
    validation: Validation | None = None,
    resume: Path | None = None,
    windows: dict[str, Window] | None = None,
    deadline: Deadline | None = None,
) -> TrainResult:
    """Train `model` in place on question -> chunk pairs (and, given `labelled`
    LabelledPairs, on those too with cfg.pairs_loss, taking turns by batch).

    With `windows` (chunk id -> its long window) and cfg.long_inputs, that share of the rows
    has the window as its positive, in batches that keep apart rows covering the same chunk
    (ragtune.training.long_inputs); `model.max_seq_length` must then fit the windows.

    In-batch negatives: the other chunks of a batch are negatives for each
    question, so a chunk that appears twice in one batch would be its own false
    negative; the NO_DUPLICATES sampler keeps every text in a batch unique.

    With `validation`, the best checkpoint is kept and, with cfg.wise, mixed
    with the starting weights in the share that scores best; the base itself
    wins when training did not help.
    """
    columns, loss = _training_data(model, pairs, chunks, cfg, negatives, labelled)
    sampler = None
    if windows and cfg.long_inputs:
        retrieval = columns["retrieval"] if labelled else columns
        retrieval, sampler = with_long_rows(retrieval, chunks, windows, cfg.long_inputs, cfg.seed)
        columns = columns | {"retrieval": retrieval} if labelled else retrieval
    # Every validation score, before, during and after training, is taken in the precision training runs in.
    precision = resolve_precision(cfg.precision, device)
    base_state = base_score = None
    if validation:
        base_state = weights(model)
        with encoding_in(precision, device):
            base_score = validation.scores(model)["score"]
    result = _train_without_dropout(
        model, columns, loss, cfg, work_dir, device, progress, validation, resume, sampler, deadline
    )
    if validation and base_state is not None and base_score is not None:
        result.base_score = base_score
        if cfg.wise:
            # The model now holds the best checkpoint, whose score validation already knows.
            with encoding_in(precision, device):
                result.mix_cap = cfg.wise_share
                result.mix, result.mix_scores = choose_mix(
                    model, base_state, validation, base_score, result.best_score, cap=cfg.wise_share
                )
    return result


def _training_data(
    model: Any,
    pairs: list[Pair],
    chunks: dict[str, Chunk],
    cfg: Config,
    negatives: dict[str, str] | None,
    labelled: list[Any] | None,
) -> tuple[Any, Any]:
    """The columns to train on and their loss: the question rows, and with `labelled` a second dataset."""
    columns: dict[str, Any] = training_rows(pairs, chunks, cfg.queries_per_row, negatives)
    loss: Any = _ranking_loss(model, cfg, with_negatives=negatives is not None)
    if labelled:
        columns = {"retrieval": columns, "labelled": labelled_columns(labelled)}
        loss = {"retrieval": loss, "labelled": make_loss(cfg.pairs_loss, model)}
    return columns, loss


def _train_without_dropout(
    model: Any,
    columns: Any,
    loss: Any,
    cfg: Config,
    work_dir: Path,
    device: str,
    progress: Progress | None,
    validation: Validation | None,
    resume: Path | None,
    batch_sampler: Any = None,
    deadline: Deadline | None = None,
) -> TrainResult:
    """`run_trainer` with the run mode's settings, attention dropout off while it runs (see
    without_attention_dropout); `batch_sampler` (else no-duplicates batches) makes the batches."""
    restore = without_attention_dropout(model)
    try:
        return run_trainer(
            model,
            columns,
            loss,
            TrainingArgs.of(cfg),
            work_dir,
            device,
            progress,
            no_duplicates=True,
            validation=validation,
            evals=cfg.evals,
            patience=cfg.patience,
            resume=resume,
            batch_sampler=batch_sampler,
            deadline=deadline,
        )
    finally:
        restore()
