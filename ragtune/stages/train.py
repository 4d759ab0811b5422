"""Train stage: the training pairs (and labelled pairs) -> model/, resumable from checkpoints/."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path
from typing import Any

from ..errors import NotEnoughDataError
from ..fileio import check_free_space, megabytes
from ..records import Chunk, LabelledPair, Pair, SkipCounter, read_jsonl, write_jsonl
from . import Run

# Chunks a validation check ranks among: enough distractors to tell models apart, few enough to be quick on a CPU.
VALIDATION_CORPUS = 150


def run_stage(run: Run) -> dict[str, Any]:
    from ..models import pick_device
    from ..training.trainer import checkpoint_step, fine_tune, scan_checkpoints

    chunks = {c.id: c for c in read_jsonl(run.path("chunks.jsonl"), Chunk)}
    pairs = read_jsonl(run.path("pairs_train.jsonl"), Pair)
    lexical_path = run.path("pairs_lexical.jsonl")
    pairs += read_jsonl(lexical_path, Pair) if lexical_path.exists() else []
    model = run.model("base")
    # Train a copy so the base stays available for the "before" numbers.
    import copy

    tuned = copy.deepcopy(model)
    labelled = _labelled_split(run)
    held = {p.chunk_id for p in read_jsonl(run.path("pairs_eval.jsonl"), Pair)}
    val_pairs = read_jsonl(run.path("pairs_val.jsonl"), Pair)
    negatives = None
    if run.cfg.hard_negatives:
        from ..training.trainer import fill_negatives, mine_hard_negatives

        # Held-out and validation chunks never enter training, not even as negatives.
        allowed = set(chunks) - held - {p.chunk_id for p in val_pairs}
        mined = mine_hard_negatives(model, pairs, chunks, allowed, same_theme=run.cfg.same_theme_negatives)
        negatives = fill_negatives(mined, pairs, allowed, run.cfg.seed)
    validation = None
    if val_pairs:
        from ..training.trainer import Validation

        # Validation ranks among chunks that are not held out (those stay unseen
        # until the end): its own and, to keep each check quick, at most
        # VALIDATION_CORPUS in all, the others a seeded sample.
        own = {p.chunk_id for p in val_pairs}
        others = sorted(cid for cid in chunks if cid not in held and cid not in own)
        random.Random(run.cfg.seed).shuffle(others)
        keep = own | set(others[: max(0, VALIDATION_CORPUS - len(own))])
        corpus = [c for cid, c in chunks.items() if cid in keep]
        validation = Validation([p.query for p in val_pairs], [p.kind or p.generator for p in val_pairs],
                                [p.chunk_id for p in val_pairs], [c.id for c in corpus], [c.text for c in corpus])
    tmp = run.path("model.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    resume = _checkpoints_to_resume(run)
    resumed = checkpoint_step(str(resume)) if resume is not None else None
    _check_training_space(run, tuned)
    try:
        from ..training import distributed

        job = {"pairs": pairs, "chunks": chunks, "negatives": negatives, "labelled": labelled,
               "validation": validation, "resume": resume}
        # Under torchrun the other ranks train beside this one on the same rows (ragtune.training.distributed).
        distributed.share(job | {"max_seq_length": tuned.max_seq_length})
        result = fine_tune(tuned, cfg=run.cfg, work_dir=run.path("checkpoints"),
                           device=pick_device(run.cfg.device), progress=run.progress_for("train"), **job)
        tuned.save(str(tmp), safe_serialization=True)
    except Exception as e:
        if run.is_disk_full(e):
            # What was half written gives its space back now; complete checkpoints stay to resume from.
            shutil.rmtree(tmp, ignore_errors=True)
            for path, _ in scan_checkpoints(run.path("checkpoints"))[1]:
                shutil.rmtree(path, ignore_errors=True)
        raise
    shutil.rmtree(run.path("model"), ignore_errors=True)
    tmp.replace(run.path("model"))
    shutil.rmtree(run.path("checkpoints"), ignore_errors=True)
    # Later stages load what was saved: after mixed-precision training the Trainer can leave the model in
    # memory wrapped for autocast, and the index must hold the vectors an app gets from the model folder.
    run.models.pop("tuned", None)
    summary = f"{result.steps} steps on {result.device} ({result.precision})"
    if resumed is not None:
        summary += f" (resumed at step {resumed})"
    if result.final_loss is not None:
        summary += f", final loss {result.final_loss:.3f}"
    if result.base_score is not None:
        best = result.best_score if result.best_score is not None else result.base_score
        summary += (f"; validation {result.base_score:.3f} -> {best:.3f} (step {result.best_step}), "
                    f"kept {result.mix:.0%} of the change")
    return {
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "device": result.device,
        "precision": result.precision,
        "final_loss": result.final_loss,
        "resumed_at": resumed,
        "validation": {
            "n_questions": len(val_pairs),
            "base_score": result.base_score,
            "history": [list(h) for h in result.val_history],  # as JSON reads it back
            "best_step": result.best_step,
            "best_score": result.best_score,
            "mix": result.mix,
            "mix_scores": {str(a): round(v, 4) for a, v in result.mix_scores.items()},
        },
        "summary": summary,
    }


def _checkpoints_to_resume(run: Run) -> Path | None:
    """The newest complete checkpoint left by an interrupted run of this same
    training stage, or None (and a clean checkpoint folder) otherwise.

    A checkpoint cut off mid-write, or left half deleted, is removed with a
    note: the previous complete one is resumed from, or training starts again.
    """
    from ..fileio import atomic_write_text
    from ..training.trainer import scan_checkpoints

    folder = run.path("checkpoints")
    marker = folder / "ragtune_stage_key"
    if marker.is_file() and marker.read_text(encoding="utf-8", errors="replace") == run.key:
        newest, broken = scan_checkpoints(folder)
        for path, problem in broken:
            shutil.rmtree(path, ignore_errors=True)
            then = f"resuming from {newest.name}" if newest is not None else "training starts again"
            run.note(f"{path.name} cannot be resumed from: {problem}; {then}")
        if newest is not None:
            return newest
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    atomic_write_text(marker, run.key)
    return None


def _check_training_space(run: Run, model: Any) -> None:
    """Stop before training when the disk cannot hold its checkpoints and the model (estimated from the weights)."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    try:
        extra = 2 * len(model.tokenizer.backend_tokenizer.to_str()) + 1_000_000  # tokenizer and config files
    except AttributeError:
        extra = 4_000_000
    # A checkpoint holds the weights and AdamW's two moments; three exist while one is written.
    checkpoint = 3 * weights + extra
    held = len(list(run.path("checkpoints").glob("checkpoint-*")))
    need = max(1, 3 - held) * checkpoint + weights + extra
    what = (f"training (checkpoints of about {megabytes(checkpoint)}, up to 3 at a time, "
            f"and the {megabytes(weights + extra)} model)")
    run.space = (what, need)
    check_free_space(run.run_dir, need, what)


def _labelled_split(run: Run) -> list[LabelledPair] | None:
    """Read --pairs files, split them (seeded), write both sides; the training side is returned."""
    if not run.cfg.pairs_files:
        for name in ("labelled_train.jsonl", "labelled_eval.jsonl"):
            run.path(name).unlink(missing_ok=True)
        return None
    from ..pairs.data import MIN_HELD_OUT, dedupe, load_pairs_file, split_pairs

    skipped = SkipCounter()
    pairs = dedupe([p for f in run.cfg.pairs_files for p in load_pairs_file(f)], skipped)
    train, held = split_pairs(pairs, run.cfg.eval_fraction, run.cfg.seed)
    if len(held) < MIN_HELD_OUT:
        need = math.ceil(MIN_HELD_OUT / run.cfg.eval_fraction)
        raise NotEnoughDataError(f"only {len(held)} labelled pairs held out for evaluation; give at least {need} pairs")
    write_jsonl(run.path("labelled_train.jsonl"), train, LabelledPair)
    write_jsonl(run.path("labelled_eval.jsonl"), held, LabelledPair)
    return train
