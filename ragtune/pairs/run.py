"""A `ragtune pairs` run: the base model, training with a labelled-pair loss, the before/after
correlations, the model card, and the run directory (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..card import BUNDLED_HUB_ID, base_model_id, base_model_label
from ..config import PairsConfig, TrainingArgs
from ..errors import PairsError
from ..fileio import sha256_digest, write_json
from ..hub import resolve_pairs_model
from ..models import load_model, pick_device
from ..names import BASE, FINE_TUNED
from ..records import LabelledPair, write_jsonl
from ..rundir import check_out_dir, claim_out_dir
from ..similarity import evaluate_pairs
from ..training import checkpoints
from ..training.checkpoints import checkpoint_step
from ..training.losses import LOSSES, labelled_columns, make_loss
from .data import MIN_HELD_OUT, gather, split_pairs

RUN_VERSION = 1
# Fewer pairs than this cannot give a meaningful held-out correlation.
MIN_PAIRS = 20


Log = Callable[[str], None]
Progress = Callable[[int, int], None]


def train_pairs(
    model: Any,
    train: list[LabelledPair],
    cfg: PairsConfig,
    work_dir: Path,
    device: str,
    progress: Progress | None = None,
    resume: Path | None = None,
) -> dict[str, Any]:
    """Train `model` in place on labelled pairs; returns steps, seconds and final loss.

    Checkpoints go to `work_dir` (the caller removes it); given `resume` (a checkpoint
    folder there), training continues from it. SIGINT or SIGTERM saves one and raises
    TrainingInterrupted (ragtune.training.callbacks).
    """
    from ..training.trainer import run_trainer  # imports torch: `ragtune pairs --help` and a failed check stay fast

    result = run_trainer(
        model,
        labelled_columns(train),
        make_loss(cfg.loss, model),
        TrainingArgs.of(cfg),
        work_dir,
        device,
        progress,
        resume=resume,
    )
    return {
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "final_loss": result.final_loss,
        "device": device,
    }


def checkpoint_to_resume(work_dir: Path, key: str, log: Log | None = None) -> Path | None:
    """The newest complete checkpoint an interrupted run with the same `key` left in
    `work_dir`, or None, leaving an empty `work_dir` marked with `key` (a run with other
    settings or inputs starts again, and its checkpoints are removed). A checkpoint cut
    off mid-write is removed, with a note to `log`.
    """
    return checkpoints.checkpoint_to_resume(work_dir, key, "ragtune_pairs_key", log)


def _run_key(cfg: PairsConfig, source: str) -> str:
    """What training depends on: ragtune's version, every setting, the inputs' bytes and the model."""
    inputs = {str(p): sha256_digest(p) for p in (*cfg.pairs_files, *cfg.alternatives)}
    parts = [__version__, cfg.to_dict(), inputs, source]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


# ---------------------------------------------------------------- card and run


def metrics_table(metrics: dict[str, Any]) -> str:
    lines = ["| model | Pearson (cosine) | Spearman (cosine) |", "|---|---:|---:|"]
    for label, key in (("base", BASE), ("fine-tuned", FINE_TUNED)):
        lines.append(f"| {label} | {metrics[key]['pearson']:.4f} | {metrics[key]['spearman']:.4f} |")
    return "\n".join(lines)


def render_pairs_card(cfg: PairsConfig, metrics: dict[str, Any], train: dict[str, Any], max_seq_length: int) -> str:
    """The model card for a pairs run: front matter for the Hub, the before/after table, training details."""
    hub_base = base_model_id(cfg.base_model)
    front = (
        ["---"]
        + ([f"base_model: {hub_base}"] if hub_base else [])
        + [
            "library_name: sentence-transformers",
            "pipeline_tag: sentence-similarity",
            "tags:",
            *(
                f"- {t}"
                for t in (
                    "sentence-transformers",
                    "sentence-similarity",
                    "feature-extraction",
                    "ragtune",
                    f"loss:{LOSSES[cfg.loss]}",
                )
            ),
            "model-index:",
            "- name: ragtune-pairs-model",
            "  results:",
            "  - task:",
            "      type: semantic-similarity",
            "      name: Semantic Similarity",
            "    dataset:",
            "      type: ragtune-labelled-pairs-heldout",
            "      name: held-out labelled pairs",
            "    metrics:",
        ]
    )
    for k in ("pearson", "spearman"):
        front += [
            f"    - type: {k}_cosine",
            f"      value: {metrics[FINE_TUNED][k]:.4f}",
            f"      name: {k.title()} Cosine",
        ]
    front.append("---")
    files = ", ".join(p.name for p in cfg.pairs_files) or "(none)"
    alts = ", ".join(p.name for p in cfg.alternatives) or "(none)"
    verdict = (
        "Both correlations went up."
        if metrics["improved"]
        else "**The fine-tuned model did not beat the base model on both correlations.**"
    )
    body = f"""
# ragtune-pairs-model

A sentence-transformers model fine-tuned by [ragtune](https://pypi.org/project/ragtune/) from
{base_model_label(cfg.base_model)} on labelled text pairs (similarity labels in [0, 1]).

## Held-out evaluation

Pearson and Spearman correlation between the cosine similarity of each held-out pair and its label
({metrics["n_test"]} pairs not trained on, split with seed {cfg.seed}; a text of a held-out pair may still occur in
training pairs, so this measures how well the model learned this labelling, not general similarity). {verdict}

{metrics_table(metrics)}

## Training data

- Labelled pairs files: {files} ({metrics["n_labelled"]} pairs)
- Alternatives files: {alts} ({metrics["n_from_alternatives"]} positive pairs, label 1.0)
- After removing duplicates: {metrics["n_pairs"]} pairs; {metrics["n_train"]} for training, {metrics["n_test"]} held out

## Training details

| setting | value |
|---|---|
| loss | {LOSSES[cfg.loss]} |
| preset | {cfg.preset} |
| epochs | {cfg.epochs} |
| batch size | {cfg.batch_size} |
| learning rate | {cfg.learning_rate} |
| warmup ratio | {cfg.warmup_ratio} |
| weight decay | {cfg.weight_decay} |
| steps | {train["steps"]} |
| seed | {cfg.seed} |
| max sequence length | {max_seq_length} |

## Usage

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/run/model")
a, b = model.encode(["Mobile Automation with Appium", "Appium mobile testing"], normalize_embeddings=True)
print(float(a @ b))
```

Or from the command line: `python -m ragtune similarity path/to/run "text a" "text b"`.
"""
    return "\n".join(front) + "\n" + body


@dataclass
class PairsResult:
    run_dir: Path
    metrics: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)


def run_pairs(cfg: PairsConfig, log: Log | None = None, progress: Progress | None = None) -> PairsResult:
    """Read, split, evaluate the base model, train, evaluate again, and write the run directory."""
    say = log or (lambda msg: None)
    out = Path(cfg.out)
    # ragtune deletes or overwrites only what it wrote itself (ragtune.rundir).
    check_out_dir(out, "pairs")
    pairs, skipped, counts = gather(cfg)
    train, held = split_pairs(pairs, cfg.eval_fraction, cfg.seed)
    if len(pairs) < MIN_PAIRS:
        raise PairsError(f"too few pairs: {len(pairs)} after removing duplicates; give at least {MIN_PAIRS}")
    if len(held) < MIN_HELD_OUT:
        raise PairsError(
            f"only {len(held)} pairs held out for evaluation; raise --test-fraction "
            f"(now {cfg.eval_fraction}) or add pairs"
        )
    if len({p.label for p in held}) < 2:
        raise PairsError(
            "all held-out pairs have the same label, so correlation is undefined; "
            "add pairs with other labels (e.g. unrelated texts labelled 0.0)"
        )
    # Before any output: a missing model should fail as one clean line, like bad input.
    source = resolve_pairs_model(cfg.base_model)
    say(
        f"pairs: {len(pairs)} ({counts['n_labelled']} labelled, {counts['n_from_alternatives']} from alternatives, "
        f"{skipped.total()} skipped); {len(train)} train, {len(held)} held out"
    )
    device = pick_device(cfg.device)
    say(f"model: {cfg.base_model or BUNDLED_HUB_ID + ' (bundled)'} on {device}")
    model = load_model(source, device)
    before = evaluate_pairs(model, held)
    say(f"before: pearson {before['pearson']:.4f}  spearman {before['spearman']:.4f}")
    # An interrupted run left its checkpoints here; the same command with the same inputs resumes from them.
    work = out / "trainer.tmp"
    claim_out_dir(out, "pairs")
    checkpoint = checkpoint_to_resume(work, _run_key(cfg, source), say)
    resumed = checkpoint_step(str(checkpoint)) if checkpoint is not None else None
    say(
        f"training: {LOSSES[cfg.loss]}, {cfg.epochs:g} epochs, batch {cfg.batch_size}, lr {cfg.learning_rate:g}"
        + (f" (resumed at step {resumed})" if resumed is not None else "")
    )
    trained = train_pairs(model, train, cfg, work, device, progress, resume=checkpoint)
    trained["resumed_at"] = resumed
    after = evaluate_pairs(model, held)
    metrics = {
        BASE: before,
        FINE_TUNED: after,
        "improved": after["pearson"] > before["pearson"] and after["spearman"] > before["spearman"],
        "n_pairs": len(pairs),
        "n_train": len(train),
        "n_test": len(held),
        **counts,
        "skipped": skipped.to_dict(),
    }

    # Save to a temporary folder and swap it in, so a crash never leaves half a model.
    tmp = out / "model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), safe_serialization=True)
    (tmp / "README.md").write_text(
        render_pairs_card(cfg, metrics, trained, int(model.max_seq_length)), encoding="utf-8"
    )
    shutil.rmtree(out / "model", ignore_errors=True)
    tmp.replace(out / "model")
    write_jsonl(out / "train.jsonl", train, LabelledPair)
    write_jsonl(out / "test.jsonl", held, LabelledPair)
    # ragtune 0.3 named the held-out side eval.jsonl: a rerun into its folder leaves one name, not two splits.
    (out / "eval.jsonl").unlink(missing_ok=True)
    write_json(
        out / "run.json",
        {
            "ragtune": "pairs-run",
            "version": RUN_VERSION,
            "ragtune_version": __version__,
            "config": cfg.to_dict(),
            "inputs": {str(p): sha256_digest(p) for p in (*cfg.pairs_files, *cfg.alternatives)},
            "train": trained,
        },
    )
    write_json(out / "metrics.json", metrics)
    # Kept until now, so an interrupt while evaluating or saving still resumes with training done.
    shutil.rmtree(work, ignore_errors=True)
    return PairsResult(run_dir=out, metrics=metrics, train=trained)
