"""Train stage: the training pairs (and labelled pairs) -> model/, resumable from checkpoints/."""

from __future__ import annotations

import math
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotEnoughDataError
from ..fileio import check_free_space, megabytes
from ..models import encoding_in, pick_device, resolve_precision
from ..pairs.data import MIN_HELD_OUT, dedupe, load_pairs_file, split_pairs
from ..records import Chunk, LabelledPair, Pair, SkipCounter, read_jsonl, write_jsonl
from ..runfiles import RunFiles
from ..training import distributed
from ..training.checkpoints import checkpoint_step, checkpoint_to_resume, scan_checkpoints
from ..training.distil import distil
from ..training.distil import summary as distil_summary
from ..training.forgetting import guard, load_general_set
from ..training.long_inputs import long_windows, serve_length
from ..training.negatives import fill_negatives, mine_hard_negatives
from .base import OPTIONAL, Run, Stage, StageResult

# What the train stage still has to write, (what, bytes), for a disk-full message.
Space = tuple[str, int]


@dataclass(kw_only=True)
class TrainResult(StageResult):
    steps: int
    seconds: float
    device: str
    precision: str
    final_loss: float | None
    # The checkpoint step training went on from, or None.
    resumed_at: int | None
    # The validation questions' scores: n_questions, base_score, history, best_step, best_score, mix, mix_scores.
    validation: dict[str, Any]
    summary: str
    # The forgetting guard's figures (ragtune.training.forgetting), which the evaluate stage adds to metrics.json.
    general: dict[str, Any] | None
    # Training chunks given a long window (cfg.long_inputs), and the length the saved model reads; None in a
    # manifest from before they were recorded.
    long_windows: int | None = None
    saved_max_seq_length: int | None = None
    # What distillation did (ragtune.training.distil); not recorded when it was off, as before it existed.
    distil: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    # The steps planned when --time-budget's deadline ended training before them; not recorded otherwise.
    cut_from: int | None = field(default=None, metadata=OPTIONAL)
    # The steps planned when training ran faster than --time-budget's plan priced them and took more; not
    # recorded otherwise.
    stretched_from: int | None = field(default=None, metadata=OPTIONAL)


# Chunks a validation check ranks among: enough distractors to tell models apart, few enough to be quick on a CPU.
VALIDATION_CORPUS = 150


def run_stage(run: Run) -> TrainResult:
    chunks = {c.id: c for c in read_jsonl(run.files.chunks, Chunk)}
    pairs = read_jsonl(run.files.split("train"), Pair)
    lexical_path = run.files.split("lexical")
    pairs += read_jsonl(lexical_path, Pair) if lexical_path.exists() else []
    model = run.model("base")
    # Train a copy so the base stays available for the "before" numbers.
    import copy

    tuned = copy.deepcopy(model)
    labelled = _labelled_split(run)
    held = {p.chunk_id for p in read_jsonl(run.files.split("test"), Pair)}
    val_pairs = read_jsonl(run.files.split("val"), Pair)
    # Held-out and validation chunks never enter training, not even as negatives (or distillation candidates).
    trainable = set(chunks) - held - {p.chunk_id for p in val_pairs}
    negatives = _negatives(run, model, pairs, chunks, trainable)
    validation = _validation(run, chunks, held, val_pairs) if val_pairs else None
    shutil.rmtree(run.files.model_tmp, ignore_errors=True)
    resume = _checkpoints_to_resume(run)
    resumed = checkpoint_step(str(resume)) if resume is not None else None
    space = _check_training_space(run, tuned)
    job = {
        "pairs": pairs,
        "chunks": chunks,
        "negatives": negatives,
        "labelled": labelled,
        "validation": validation,
        "resume": resume,
        "windows": _windows(run, tuned, pairs, chunks, trainable),
    }
    result, general = _train_and_save(run, tuned, job, space, trainable)
    return _record(result, resumed, len(val_pairs), general, len(job["windows"]), int(tuned.max_seq_length))


def _windows(run: Run, model: Any, pairs: list[Pair], chunks: dict[str, Chunk], allowed: set[str]) -> dict:
    """With cfg.long_inputs, the long window (up to the length the model is saved with) of each
    training chunk; only training chunks (`allowed`) enter a window."""
    if not run.cfg.long_inputs:
        return {}
    # Two positions are the [CLS] and [SEP] tokens the model adds.
    return long_windows(
        list(chunks.values()), allowed, {p.chunk_id for p in pairs}, model.tokenizer, serve_length(model) - 2
    )


def _negatives(run: Run, model: Any, pairs: list[Pair], chunks: dict[str, Chunk], allowed: set[str]) -> Any:
    """With --hard-negatives, a mined negative (from the `allowed` chunks) for each pair; else None."""
    if not run.cfg.hard_negatives:
        return None
    mined = mine_hard_negatives(model, pairs, chunks, allowed, same_theme=run.cfg.same_theme_negatives)
    return fill_negatives(mined, pairs, allowed, run.cfg.seed)


def _validation(run: Run, chunks: dict[str, Chunk], held: set[str], val_pairs: list[Pair]) -> Any:
    """The validation questions and the chunks they rank among."""
    from ..training.validation import Validation  # imports torch: only a train stage that runs pays for it

    # Validation ranks among chunks that are not held out (those stay unseen
    # until the end): its own and, to keep each check quick, at most
    # VALIDATION_CORPUS in all, the others a seeded sample.
    own = {p.chunk_id for p in val_pairs}
    others = sorted(cid for cid in chunks if cid not in held and cid not in own)
    random.Random(run.cfg.seed).shuffle(others)
    keep = own | set(others[: max(0, VALIDATION_CORPUS - len(own))])
    corpus = [c for cid, c in chunks.items() if cid in keep]
    return Validation(
        [p.query for p in val_pairs],
        [p.kind or p.generator for p in val_pairs],
        [p.chunk_id for p in val_pairs],
        [c.id for c in corpus],
        [c.text for c in corpus],
    )


def _train_and_save(
    run: Run, tuned: Any, job: dict[str, Any], space: Space, trainable: set[str]
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune `tuned` (with --distil-steps, then distil the hybrid into it among the `trainable` chunks),
    let the forgetting guard check it, and put it in model/ (through model.tmp/, so a crash never leaves
    half a model). Returns the training result and the guard's record; a full disk is a DiskFullError that
    says what training needed (`space`)."""
    from ..training.trainer import fine_tune  # imports torch: only a train stage that runs pays for it

    tmp = run.files.model_tmp
    # Training reads the long windows whole; the run's own checks read its chunks as the base model
    # does (chunk_length), and the model is saved to read what apps chunk at (serve_length).
    chunk_length = tuned.max_seq_length
    tuned.max_seq_length = max(chunk_length, serve_length(tuned)) if job["windows"] else chunk_length
    try:
        # Under torchrun the other ranks train beside this one on the same rows (ragtune.training.distributed).
        distributed.share(job | {"max_seq_length": tuned.max_seq_length})
        result = fine_tune(
            tuned,
            cfg=run.cfg,
            work_dir=run.files.checkpoints,
            device=pick_device(run.cfg.device),
            progress=run.progress_for("train"),
            deadline=run.training_deadline(),
            **job,
        )
        tuned.max_seq_length = chunk_length
        # Distillation ranks the run's chunks, read at their own length as the guard reads them.
        device = pick_device(run.cfg.device)
        result.distil = distil(tuned, job["pairs"], job["chunks"], trainable, run.cfg, device, job["validation"])
        general = _forgetting_guard(run, tuned, job["chunks"])
        # Never below the run's own chunks (a model with more positions may chunk longer than 512).
        tuned.max_seq_length = max(chunk_length, serve_length(tuned))
        tuned.save(str(tmp), safe_serialization=True)
    except Exception as e:
        if not run.is_disk_full(e, space):
            raise
        # What was half written gives its space back now; complete checkpoints stay to resume from.
        shutil.rmtree(tmp, ignore_errors=True)
        for path, _ in scan_checkpoints(run.files.checkpoints)[1]:
            shutil.rmtree(path, ignore_errors=True)
        raise run.disk_full_error(e, space) from None
    shutil.rmtree(run.files.model, ignore_errors=True)
    tmp.replace(run.files.model)
    shutil.rmtree(run.files.checkpoints, ignore_errors=True)
    return result, general


def _forgetting_guard(run: Run, tuned: Any, chunks: dict[str, Chunk]) -> dict[str, Any]:
    """Base and tuned model on the general retrieval set, among some of the run's chunks; with --wise,
    a tuned model that fell is mixed back toward the base (ragtune.training.forgetting)."""
    device = pick_device(run.cfg.device)
    general = load_general_set().with_distractors([c.text for c in chunks.values()], seed=run.cfg.seed)
    # Encoded in the precision training ran in, as validation is.
    with encoding_in(resolve_precision(run.cfg.precision, device), device):
        return guard(tuned, run.model("base"), general, act=run.cfg.wise)


def _record(
    result: Any, resumed: int | None, n_val: int, general: dict[str, Any], n_windows: int, saved_length: int
) -> TrainResult:
    """What the manifest records of a training run, with its summary line."""
    summary = f"{result.steps} steps on {result.device} ({result.precision})"
    if resumed is not None:
        summary += f" (resumed at step {resumed})"
    if result.stretched_from is not None and result.cut_from is not None:
        summary += (
            f" (planned {result.stretched_from}, then {result.cut_from} as steps ran faster than planned: "
            "the time budget ended training)"
        )
    elif result.cut_from is not None:
        summary += f" (of {result.cut_from} planned: the time budget ended training)"
    elif result.stretched_from is not None:
        summary += f" (planned {result.stretched_from}: steps ran faster than planned, and the time budget held more)"
    if result.final_loss is not None:
        summary += f", final loss {result.final_loss:.3f}"
    if result.base_score is not None:
        best = result.best_score if result.best_score is not None else result.base_score
        summary += (
            f"; validation {result.base_score:.3f} -> {best:.3f} (step {result.best_step}), "
            f"kept {result.mix:.0%} of the change"
            + (f" (at most {result.mix_cap:.0%}: --wise-share)" if result.mix_cap < 1 else "")
        )
    summary += distil_summary(result.distil)
    return TrainResult(
        steps=result.steps,
        seconds=round(result.seconds, 1),
        device=result.device,
        precision=result.precision,
        final_loss=result.final_loss,
        resumed_at=resumed,
        validation={
            "n_questions": n_val,
            "base_score": result.base_score,
            "history": [list(h) for h in result.val_history],  # as JSON reads it back
            "best_step": result.best_step,
            "best_score": result.best_score,
            "mix": result.mix,
            "mix_scores": {str(a): round(v, 4) for a, v in result.mix_scores.items()},
            "mix_cap": result.mix_cap,
        },
        summary=summary,
        general=general,
        long_windows=n_windows,
        saved_max_seq_length=saved_length,
        distil=result.distil,
        cut_from=result.cut_from,
        stretched_from=result.stretched_from,
    )


def _checkpoints_to_resume(run: Run) -> Path | None:
    """The newest complete checkpoint left by an interrupted run of this same training stage (same key),
    or None and a clean checkpoint folder (see `checkpoints.checkpoint_to_resume`)."""
    return checkpoint_to_resume(run.files.checkpoints, run.key, "ragtune_stage_key", run.note)


def _check_training_space(run: Run, model: Any) -> Space:
    """Stop before training when the disk cannot hold its checkpoints and the model (estimated from the
    weights); returns what training needs, for the message should the disk fill up while it runs."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    try:
        extra = 2 * len(model.tokenizer.backend_tokenizer.to_str()) + 1_000_000  # tokenizer and config files
    except AttributeError:
        extra = 4_000_000
    # A checkpoint holds the weights and AdamW's two moments; three exist while one is written.
    checkpoint = 3 * weights + extra
    held = len(list(run.files.checkpoints.glob("checkpoint-*")))
    need = max(1, 3 - held) * checkpoint + weights + extra
    what = (
        f"training (checkpoints of about {megabytes(checkpoint)}, up to 3 at a time, "
        f"and the {megabytes(weights + extra)} model)"
    )
    check_free_space(run.run_dir, need, what)
    return what, need


def _labelled_split(run: Run) -> list[LabelledPair] | None:
    """Read --pairs files, split them (seeded), write both sides; the training side is returned."""
    if not run.cfg.pairs_files:
        for side in ("train", "test"):
            run.files.labelled(side).unlink(missing_ok=True)
        return None
    skipped = SkipCounter()
    pairs = dedupe([p for f in run.cfg.pairs_files for p in load_pairs_file(f)], skipped)
    train, held = split_pairs(pairs, run.cfg.eval_fraction, run.cfg.seed)
    if len(held) < MIN_HELD_OUT:
        need = math.ceil(MIN_HELD_OUT / run.cfg.eval_fraction)
        raise NotEnoughDataError(f"only {len(held)} labelled pairs held out for evaluation; give at least {need} pairs")
    write_jsonl(run.files.labelled("train"), train, LabelledPair)
    write_jsonl(run.files.labelled("test"), held, LabelledPair)
    return train


def model_files(files: RunFiles) -> list[Path]:
    """Every file training wrote into model/ (tokenizer, modules, pooling): all but the card, which
    the save stage writes and a user may edit, and onnx/, which `ragtune export --onnx` adds."""
    model = files.model
    return sorted(
        p for p in model.rglob("*") if p.is_file() and p.relative_to(model).parts[0] not in ("README.md", "onnx")
    )


STAGE = Stage(
    "train",
    (
        "epochs",
        "batch_size",
        "learning_rate",
        "warmup_ratio",
        "weight_decay",
        "max_steps",
        "distil_steps",
        "hard_negatives",
        "same_theme_negatives",
        "pairs_files",
        "pairs_loss",
        "evals",
        "patience",
        "wise",
        "wise_share",
        "matryoshka_dims",
        "mini_batch_size",
        "queries_per_row",
        "precision",
        "long_inputs",
    ),
    lambda files: [files.model / "config.json", files.model / "model.safetensors"],
    lambda run, records: run_stage(run),
    written=model_files,
    result=TrainResult,
    # After mixed-precision training the Trainer can leave the model in memory wrapped for autocast, and the
    # index must hold the vectors an app gets from the model folder: later stages load what was saved.
    replaces=("tuned",),
)
