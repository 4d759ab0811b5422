"""Pairs -> fine-tuned model, with sentence-transformers' Trainer and MultipleNegativesRankingLoss."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from torch import nn

from ..config import Config, TrainingArgs
from ..models import quiet_libraries
from ..records import Chunk, Pair

Progress = Callable[[int, int], None]


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


def mine_hard_negatives(
    model: Any, pairs: list[Pair], chunks: dict[str, Chunk], allowed: set[str], margin: float = 0.95,
    max_chunk_similarity: float = 0.9, depth: int = 20, same_theme: bool = False,
) -> dict[str, str]:
    """For each chunk with questions, the chunk (among `allowed`) the base model ranks highest
    for its questions without being the answer.

    A candidate is skipped as a likely false negative when it scores above
    `margin` times the positive's score, or is a near-duplicate of the positive
    (cosine above `max_chunk_similarity`). With `same_theme`, the highest-ranked
    candidate sharing a theme with the positive is taken when there is one in
    the top `depth`: a negative on the same subject is harder to tell apart.
    """
    from ..retrieval import build_index, embed

    ids = sorted(allowed | {p.chunk_id for p in pairs})
    pos_of = {cid: i for i, cid in enumerate(ids)}
    chunk_vecs = embed(model, [chunks[c].text for c in ids])
    query_vecs = embed(model, [p.query for p in pairs])
    scores, idx = build_index(chunk_vecs).search(query_vecs, min(depth, len(ids)))
    votes: dict[str, dict[str, float]] = {}
    for p, q_vec, row_scores, row_idx in zip(pairs, query_vecs, scores, idx):
        positive = pos_of[p.chunk_id]
        pos_score = float(q_vec @ chunk_vecs[positive])
        usable = [(float(score), ids[j]) for score, j in zip(row_scores, row_idx)
                  if j != positive and ids[j] in allowed and score <= margin * pos_score
                  and float(chunk_vecs[j] @ chunk_vecs[positive]) <= max_chunk_similarity]
        if same_theme:
            themes = set(chunks[p.chunk_id].themes)
            usable = [u for u in usable if themes & set(chunks[u[1]].themes)] or usable
        if usable:
            score, cid = usable[0]
            tally = votes.setdefault(p.chunk_id, {})
            tally[cid] = tally.get(cid, 0.0) + score
    return {cid: max(t, key=lambda c: t[c]) for cid, t in votes.items() if t} if votes else {}


def fill_negatives(negatives: dict[str, str], pairs: list[Pair], allowed: set[str], seed: int) -> dict[str, str]:
    """Give every chunk with questions a negative: where mining found none (all
    candidates looked like false negatives), a seeded random other chunk of
    `allowed`. Rows need a negative each, and a chunk without one would
    otherwise drop out of training.

    >>> fill_negatives({"a": "b"}, [Pair("q", "a", "g"), Pair("q2", "c", "g")], {"a", "b", "c"}, 0)["a"]
    'b'
    >>> fill_negatives({}, [Pair("q", "c", "g")], {"c", "d"}, 0)
    {'c': 'd'}
    """
    import random

    rng = random.Random(seed)
    pool = sorted(allowed)
    out = dict(negatives)
    for cid in sorted({p.chunk_id for p in pairs} - set(negatives)):
        others = [c for c in pool if c != cid]
        if others:
            out[cid] = rng.choice(others)
    return out


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
        return self.loss_from_embeddings([self.model(f)["sentence_embedding"] for f in sentence_features])

    def loss_from_embeddings(self, embeddings: list[Any]) -> Any:
        import torch
        import torch.nn.functional as F

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


def cached_ranking_loss(model: Any, mini_batch_size: int, with_negatives: bool = False) -> nn.Module:
    """MultiQueryRankingLoss with gradient caching (GradCache, as in
    CachedMultipleNegativesRankingLoss): texts are encoded `mini_batch_size` at a
    time, so the batch, and with it the number of in-batch negatives, can grow
    beyond what fits in memory at once. Same loss, same gradients.
    """
    try:
        from sentence_transformers.base.losses.gradcache import CachedLossMixin
    except ImportError:
        from ..config import ConfigError

        raise ConfigError("mini_batch_size needs sentence-transformers>=6 (pip install -U sentence-transformers)") from None

    class CachedMultiQueryRankingLoss(CachedLossMixin, MultiQueryRankingLoss):
        def __init__(self) -> None:
            MultiQueryRankingLoss.__init__(self, model, with_negatives=with_negatives)
            self.mini_batch_size = mini_batch_size

        def calculate_loss(self, reps: list[list[Any]], labels: Any = None, *, with_backward: bool = False) -> Any:
            import torch

            loss = self.loss_from_embeddings([torch.cat(column) for column in reps])
            if with_backward:
                loss.backward()
                loss = loss.detach()
            return loss

        def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Any = None) -> Any:
            return self.forward_cached(sentence_features, labels)

    return CachedMultiQueryRankingLoss()


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM; `saved` says whether a complete checkpoint is there to resume from
    (a second signal stops at once, possibly before any was written)."""

    def __init__(self, signum: int, saved: bool = True) -> None:
        super().__init__(f"training stopped by signal {signum}; "
                         + ("a checkpoint was saved" if saved else "no checkpoint was saved"))
        self.signum = signum
        self.saved = saved


@dataclass
class Validation:
    """Validation questions and the corpus they are ranked against.

    The score is the mean over question kinds of MRR@10, so that every
    question style counts the same and a model that only learned one shape
    of question cannot win the checkpoint or the mix.
    """

    queries: list[str]
    kinds: list[str]
    relevant: list[str]
    corpus_ids: list[str]
    corpus_texts: list[str]

    def scores(self, model: Any) -> dict[str, float]:
        from ..metrics import MRR_AT, model_rankings, rank_metrics

        ranked = model_rankings(model, self.corpus_texts, self.corpus_ids, self.queries, MRR_AT)
        out: dict[str, float] = {}
        for kind in sorted(set(self.kinds)):
            sel = [i for i, k in enumerate(self.kinds) if k == kind]
            out[f"mrr@{MRR_AT}_{kind}"] = rank_metrics([ranked[i] for i in sel], [self.relevant[i] for i in sel],
                                                       ks=(5,))[f"mrr@{MRR_AT}"]
        out["score"] = sum(out.values()) / len(out)
        return out


def _evaluator(validation: Validation, precision: str, device: str) -> Any:
    try:
        from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
    except ImportError:  # sentence-transformers 5.x
        from sentence_transformers.evaluation import SentenceEvaluator

    class _Evaluator(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.primary_metric = "score"

        def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> Any:
            from ..models import encoding_in

            with encoding_in(precision, device):
                return self.prefix_name_to_metrics(validation.scores(model), "val")

    return _Evaluator()


def weights(model: Any) -> dict[str, Any]:
    """A copy of the model's weights, safe from later training or mixing."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def mix_with_base(model: Any, base_state: dict[str, Any], tuned: dict[str, Any], alpha: float) -> None:
    """Set `model`'s weights to base + alpha * (tuned - base), in place (WiSE-FT)."""
    import torch

    with torch.no_grad():
        mixed = {k: torch.lerp(base_state[k].to(v.device, v.dtype), v, alpha) if v.is_floating_point() else v
                 for k, v in tuned.items()}
    model.load_state_dict(mixed)


def choose_mix(
    model: Any, base_state: dict[str, Any], validation: Validation, base_score: float,
    tuned_score: float | None = None, alphas: tuple[float, ...] = (0.75, 0.5),
) -> tuple[float, dict[float, float]]:
    """Try shares of the tuned weights on the validation questions and leave the
    model at the best one: the base itself (alpha 0) if nothing beats it.

    Shares are tried from all of the change (1.0, scored as `tuned_score` when
    known) down through `alphas`, stopping at the first that scores lower than
    the one before: validation scores along the path from base to tuned
    rarely rise again once they fall, and each check costs a pass over the
    validation corpus. Ties go to the larger share, the one training chose.
    """
    tuned = weights(model)
    scores = {0.0: base_score}
    previous = scores[1.0] = tuned_score if tuned_score is not None else validation.scores(model)["score"]
    for a in alphas:
        mix_with_base(model, base_state, tuned, a)
        scores[a] = validation.scores(model)["score"]
        if scores[a] < previous:
            break
        previous = scores[a]
    best = max(scores, key=lambda a: (round(scores[a], 6), a))
    mix_with_base(model, base_state, tuned, best)
    return best, scores


class _StopOnSignal:
    """While training: the first SIGINT/SIGTERM asks the Trainer to save a
    checkpoint and stop after the current step; a second one stops at once."""

    def __init__(self, work_dir: Path | None = None) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        # Where the checkpoints go: a second signal says whether one is there to resume from.
        self.work_dir = work_dir

    def __enter__(self) -> "_StopOnSignal":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            # A second signal: stop now; a rerun resumes from the last checkpoint saved, if any.
            saved = self.work_dir is not None and scan_checkpoints(self.work_dir)[0] is not None
            raise TrainingInterrupted(signum, saved=saved)
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        stopper = self

        class _Stop(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                if stopper.signum is not None:
                    control.should_save = True
                    control.should_training_stop = True

        return _Stop()


# Written into a checkpoint folder once the Trainer has saved everything in it: the files and their
# sizes. A folder without it (cut off mid-write), or whose files no longer match it (a half-finished
# rotation), is never resumed from.
CHECKPOINT_MARKER = "ragtune_checkpoint.json"


def _checkpoint_files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != CHECKPOINT_MARKER}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems (FUSE, CIFS, vboxsf) cannot sync a directory; its files are synced already.
        if not (path.is_dir() and e.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def mark_complete(folder: Path, step: int) -> None:
    """Record that checkpoint `folder` is whole: its files and their sizes, in CHECKPOINT_MARKER.

    Its files are flushed to the disk first and the marker after them, so that after a power
    cut a marker never vouches for data that was still only in the page cache.
    """
    from ..fileio import write_json

    files = _checkpoint_files(folder)
    for rel in files:
        _fsync(folder / rel)
    for sub in sorted({(folder / rel).parent for rel in files}, key=lambda d: len(d.parts), reverse=True):
        _fsync(sub)
    write_json(folder / CHECKPOINT_MARKER, {"step": step, "files": files})
    _fsync(folder / CHECKPOINT_MARKER)
    _fsync(folder)


def _mark_complete_callback() -> Any:
    from transformers import TrainerCallback

    class _MarkComplete(TrainerCallback):
        # on_save runs right after the Trainer has written (and rotated) a checkpoint.
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            # Under torchrun every rank gets on_save; only the one that wrote the checkpoint marks it.
            if state.is_world_process_zero and folder.is_dir():
                mark_complete(folder, state.global_step)

    return _MarkComplete()


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None when it is complete.

    >>> checkpoint_problem(Path("/nonexistent/checkpoint-3"))
    'it was cut off mid-write (no ragtune_checkpoint.json)'
    """
    import json

    try:
        marker = json.loads((folder / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
        listed = marker["files"]
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        return f"it was cut off mid-write (no {Path(str(e.filename)).name})"
    except (OSError, ValueError, KeyError, TypeError):
        return "its trainer_state.json or ragtune_checkpoint.json is unreadable"
    if not isinstance(listed, dict) or not isinstance(state, dict) or "global_step" not in state:
        return "its trainer_state.json or ragtune_checkpoint.json is unreadable"
    if "model.safetensors" not in listed:
        return "it has no model weights (model.safetensors)"
    present = _checkpoint_files(folder)
    damaged = sorted(name for name, size in listed.items() if present.get(name) != size)
    if damaged:
        return f"{', '.join(damaged[:3])}{' …' if len(damaged) > 3 else ''} missing or cut short"
    return None


def scan_checkpoints(folder: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint in `folder` (or None), and every incomplete one with what is wrong."""
    found = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    newest, broken = None, []
    for path in found:
        problem = checkpoint_problem(path)
        if problem is not None:
            broken.append((path, problem))
        elif newest is None:
            newest = path
    return newest, broken


def _finished_checkpoint(model: Any, checkpoint: Path, validation: Validation | None, device: str,
                         progress: Progress | None, precision: str = "fp32") -> TrainResult | None:
    """When `checkpoint` is the last step of training, load what training would have ended with
    (the best checkpoint with validation, else the last) and return its result; else None.

    Resuming the Trainer from its last step would train one step more than asked.
    """
    import json
    import time

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
    history = state.get("log_history", [])
    losses = [h["loss"] for h in history if "loss" in h]
    return TrainResult(
        steps=step, seconds=time.perf_counter() - start, final_loss=float(losses[-1]) if losses else None,
        device=device,
        precision=precision,
        val_history=[(int(h["step"]), float(h["eval_val_score"])) for h in history if "eval_val_score" in h],
        best_step=checkpoint_step(str(keep)) if validation else None,
    )


def _progress_callback(progress: Progress | None) -> Any:
    from transformers import TrainerCallback

    class _Report(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if progress:
                progress(state.global_step, state.max_steps)

    return _Report()


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
    TrainingInterrupted.
    """
    import time

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    precision = resolve_precision(args.precision, device)
    if resume is not None:
        finished = _finished_checkpoint(model, resume, validation, device, progress, precision)
        if finished is not None:
            return finished
    from datasets import DatasetDict
    from sentence_transformers.sentence_transformer.training_args import MultiDatasetBatchSamplers

    multi = isinstance(loss, dict)
    dataset: Any = (DatasetDict({k: Dataset.from_dict(v) for k, v in columns.items()}) if multi
                    else Dataset.from_dict(columns))
    rows = min(len(d) for d in dataset.values()) if multi else len(dataset)
    trainer_args = SentenceTransformerTrainingArguments(
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
        batch_sampler=batch_sampler or (BatchSamplers.NO_DUPLICATES if no_duplicates else BatchSamplers.BATCH_SAMPLER),
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
        # A ratio below 1 means a share of the total steps.
        save_strategy="steps",
        save_steps=1 / evals,
        save_total_limit=2,
        eval_strategy="steps" if validation else "no",
        eval_steps=1 / evals,
        load_best_model_at_end=validation is not None,
        metric_for_best_model="eval_val_score" if validation else None,
        greater_is_better=True,
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
    )
    stopper = _StopOnSignal(Path(work_dir))
    callbacks = [_progress_callback(progress), stopper.callback(), _mark_complete_callback()]
    if validation and patience:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=patience))
    trainer = SentenceTransformerTrainer(
        model=model, args=trainer_args, train_dataset=dataset, loss=loss, callbacks=callbacks,
        evaluator=_evaluator(validation, precision, device) if validation else None,
    )
    # With disable_tqdm the Trainer prints raw log dicts; progress goes through our callback instead.
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    with stopper:
        out = trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
    if stopper.signum is not None:
        raise TrainingInterrupted(stopper.signum, saved=scan_checkpoints(Path(work_dir))[0] is not None)
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    return TrainResult(
        steps=int(out.global_step),
        seconds=time.perf_counter() - start,
        final_loss=float(losses[-1]) if losses else float(out.training_loss),
        device=device,
        precision=precision,
        val_history=[(int(h["step"]), float(h["eval_val_score"])) for h in history if "eval_val_score" in h],
        best_step=checkpoint_step(trainer.state.best_model_checkpoint),
    )


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX). There bf16
    autocast trains in about half the time of fp32 (bench/precision.py); elsewhere it is emulated."""
    import torch

    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


def resolve_precision(precision: str, device: str, cpu_bf16: bool | None = None) -> str:
    """What `precision` trains in on `device`: auto is bf16 (or fp16) on a CUDA GPU, bf16 on a CPU
    with bf16 in hardware (`cpu_bf16`, probed when None), and fp32 elsewhere.

    >>> resolve_precision("auto", "cpu", cpu_bf16=False), resolve_precision("auto", "cpu", cpu_bf16=True)
    ('fp32', 'bf16')
    >>> resolve_precision("fp32", "cpu", cpu_bf16=True), resolve_precision("auto", "mps")
    ('fp32', 'fp32')
    """
    if precision == "fp16" and not device.startswith("cuda"):
        from ..config import ConfigError

        raise ConfigError(f"precision fp16 needs a CUDA GPU, and training runs on {device}; use bf16 or fp32",
                          "precision")
    if precision != "auto":
        return precision
    if device == "cpu":
        return "bf16" if (cpu_has_bf16() if cpu_bf16 is None else cpu_bf16) else "fp32"
    if not device.startswith("cuda"):
        return "fp32"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def checkpoint_step(path: str | None) -> int | None:
    """The step a Trainer checkpoint folder was saved at.

    >>> checkpoint_step("runs/x/checkpoints/checkpoint-12"), checkpoint_step(None)
    (12, None)
    """
    return int(path.rsplit("-", 1)[1]) if path else None


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
) -> TrainResult:
    """Train `model` in place on question -> chunk pairs (and, given `labelled`
    LabelledPairs, on those too with cfg.pairs_loss, taking turns by batch).

    In-batch negatives: the other chunks of a batch are negatives for each
    question, so a chunk that appears twice in one batch would be its own false
    negative; the NO_DUPLICATES sampler keeps every text in a batch unique.

    With `validation`, the best checkpoint is kept and, with cfg.wise, mixed
    with the starting weights in the share that scores best; the base itself
    wins when training did not help.
    """
    columns: dict[str, Any] = training_rows(pairs, chunks, cfg.queries_per_row, negatives)
    loss: Any = (cached_ranking_loss(model, cfg.mini_batch_size, negatives is not None) if cfg.mini_batch_size
                 else MultiQueryRankingLoss(model, with_negatives=negatives is not None))
    if cfg.matryoshka_dims:
        from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss

        full = model.get_embedding_dimension()
        loss = MatryoshkaLoss(model, loss, sorted({full, *cfg.matryoshka_dims}, reverse=True))
    if labelled:
        from .losses import labelled_columns, make_loss

        columns = {"retrieval": columns, "labelled": labelled_columns(labelled)}
        loss = {"retrieval": loss, "labelled": make_loss(cfg.pairs_loss, model)}
    from ..models import encoding_in

    # Every validation score, before, during and after training, is taken in the precision training runs in.
    precision = resolve_precision(cfg.precision, device)
    base_state = base_score = None
    if validation:
        base_state = weights(model)
        with encoding_in(precision, device):
            base_score = validation.scores(model)["score"]
    restore = without_attention_dropout(model)
    try:
        result = run_trainer(model, columns, loss, TrainingArgs.of(cfg), work_dir, device, progress, no_duplicates=True,
                             validation=validation, evals=cfg.evals, patience=cfg.patience, resume=resume)
    finally:
        restore()
    if validation and base_state is not None and base_score is not None:
        result.base_score = base_score
        if cfg.wise:
            # The model now holds the best checkpoint, whose score validation already knows.
            with encoding_in(precision, device):
                result.mix, result.mix_scores = choose_mix(model, base_state, validation, base_score,
                                                           result.best_score)
    return result
