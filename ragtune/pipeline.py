"""Runs the stages in order, keeping all state in the run directory.

The stages' work is in ragtune/stages/, one module each; this module only runs
them. Each stage has a key: a hash of the previous stage's key, the Config fields
the stage declares in STAGE_SETTINGS and ragtune's version. A rerun skips a stage
whose key matches the manifest and whose outputs are still the files it wrote
(their size and digest are recorded); when a setting changes, or an output was
truncated or replaced, that stage and everything after it run again.

One run at a time: run.lock in the run directory names the run that holds it
(ragtune.rundir, with the manifest).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from . import __version__
from .config import LLM_GENERATORS, Config
from .errors import (
    DiskFullError,
    NotEnoughDataError,  # noqa: F401  (importable from here, as before the stages moved)
)
from .fileio import free_bytes, is_disk_full, megabytes, read_json, sha256_digest, write_json
from .rundir import MANIFEST_VERSION, Manifest, RunLock, check_out_dir, claim_out_dir, hash_parts  # noqa: F401

STAGES = ("extract", "chunk", "theme", "generate", "split", "train", "evaluate", "save")
# The Config fields each stage's output depends on. A stage's cache key hashes these
# with the key of the stage before it, so a change reruns that stage and every later
# one. Three are hashed through what they name: docs as the digest of every file read,
# themes_file as the lexicon it loads, pairs_files as their digests.
# tests/test_stage_keys.py checks that every Config field is here or in UNKEYED.
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "extract": ("docs", "extractor", "include", "exclude"),
    "chunk": ("base_model", "chunk_tokens", "chunk_overlap", "min_chunk_tokens"),
    "theme": ("themes_file",),
    "generate": ("generator", "questions_per_chunk", "seed", "near_duplicate",
                 "llm_base_url", "llm_model", "llm_concurrency", "llm_timeout", "llm_retries"),
    "split": ("round_trip_k", "eval_fraction", "val_fraction", "eval_max_chunks", "val_max_chunks", "lexical_per_chunk",
              "lexical_remove"),
    "train": ("epochs", "batch_size", "learning_rate", "warmup_ratio", "weight_decay", "max_steps", "hard_negatives",
              "same_theme_negatives", "pairs_files", "pairs_loss", "evals", "patience", "wise", "matryoshka_dims",
              "mini_batch_size", "queries_per_row", "precision"),
    "evaluate": ("ks", "passage_words", "passage_stride", "chunk_weight", "hybrid_weight"),
    # save: the summary of the stages before it, nothing of its own.
    "save": (),
}
# No output depends on these: where the run goes, where it trains, where it is pushed.
UNKEYED = ("out", "device", "push_repo", "private")
# Keyed only with an LLM generator, so that offline runs keep their key when these change.
LLM_SETTINGS = ("llm_base_url", "llm_model", "llm_concurrency", "llm_timeout", "llm_retries")


class Reporter(Protocol):
    """How the pipeline tells the caller what it is doing (the CLI prints; tests may record)."""

    def stage_start(self, name: str, index: int, total: int) -> None: ...
    def stage_progress(self, name: str, done: int, total: int) -> None: ...
    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None: ...

    # Optional (the pipeline looks it up): the stage raised, e.g. to clear a progress bar.
    # def stage_abort(self, name: str) -> None: ...

    # Optional (the pipeline looks it up): the input files, pages or lines extraction
    # skipped, as SkipCounter.to_dict(); called after the extract stage, fresh or reused.
    # def input_skipped(self, skipped: dict[str, Any]) -> None: ...

    # Optional (the pipeline looks it up; without it, a logging warning): one line about
    # something the run repaired or redid, e.g. a checkpoint cut off mid-write it skipped.
    # def note(self, message: str) -> None: ...


class SilentReporter:
    def stage_start(self, name: str, index: int, total: int) -> None:
        pass

    def stage_progress(self, name: str, done: int, total: int) -> None:
        pass

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        pass


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The held-out metrics, one row per retriever (as `ragtune run` prints them)."""
        from .metrics import metrics_text_table

        return metrics_text_table(self.metrics)

    def __repr__(self) -> str:
        hit5 = [self.metrics.get(key, {}).get("hit@5") for key in ("before", "after")]
        moved = " -> ".join(f"{v:.3f}" if isinstance(v, float) else "?" for v in hit5)
        return (f"RunResult(run_dir={str(self.run_dir)!r}, improved={self.metrics.get('improved')!r}, "
                f"hit@5={moved!r})")


def _file_digest(path: Path) -> str:
    try:
        return sha256_digest(path)
    except OSError:
        return f"unreadable:{path}"


def stage_keys(cfg: Config, fingerprint: list[tuple[str, int, str]], lexicon: dict[str, list[str]]) -> dict[str, str]:
    """The cache key of every stage but save (whose key adds the run summary to evaluate's).

    `fingerprint` is `_docs_fingerprint(cfg)` and `lexicon` the themes the run tags with:
    what `docs` and `themes_file` stand for in STAGE_SETTINGS.
    """
    def value(name: str) -> Any:
        if name == "docs":
            return fingerprint
        if name == "themes_file":
            return lexicon
        if name == "pairs_files":
            return [_file_digest(f) for f in cfg.pairs_files]
        return getattr(cfg, name)

    keys: dict[str, str] = {}
    key = hash_parts(__version__)
    for stage in STAGES[:-1]:
        names = [n for n in STAGE_SETTINGS[stage] if n not in LLM_SETTINGS or cfg.generator in LLM_GENERATORS]
        key = keys[stage] = hash_parts(key, stage, {n: value(n) for n in names})
    return keys


def _check_matryoshka_dims(dims: tuple[int, ...], model: Any) -> None:
    """Raise when a Matryoshka size exceeds the base model's own: the loss would fail deep in training."""
    from .errors import ConfigError

    full = model.get_embedding_dimension()
    too_big = sorted(d for d in dims if full and d > full)
    if too_big:
        raise ConfigError(f"matryoshka_dims must be at most the base model's dimension ({full}), not "
                          f"{', '.join(map(str, too_big))}; lower --matryoshka-dims", "matryoshka_dims")


def _docs_fingerprint(cfg: Config) -> list[tuple[str, int, str]]:
    """Name, size and digest of every file extraction will read, and name, size and
    modification time of those it only lists (unsupported or excluded: a 3 GB video
    is never read); raises ExtractError when the folder has nothing to read, before
    the run directory is made."""
    from .extract import select_documents

    # Unreadable subfolders and bad links are counted by extraction itself; here they only drop out.
    supported, other, excluded = select_documents(cfg.docs, cfg.include, cfg.exclude)
    out, to_read = [], set(supported)
    for p in supported + other + excluded:
        try:
            stat = p.stat()
            seen = sha256_digest(p) if p in to_read else f"mtime:{stat.st_mtime_ns}"
            out.append((p.name, stat.st_size, seen))
        except OSError as e:
            # Extraction skips and counts it; once it can be read, the key changes and extraction reruns.
            out.append((p.name, -1, f"unreadable ({type(e).__name__})"))
    return out


# The figures of metrics.json that the summary, card, report and CLI read.
METRIC_TABLES = ("before", "after", "bm25", "hybrid")


def metrics_problem(path: Path, tables: tuple[str, ...] = METRIC_TABLES,
                    fields: tuple[str, ...] = ("improved", "n_queries")) -> str | None:
    """What is wrong with a run's metrics.json (a sentence starting with its name), or None.

    It must hold a table of figures for each of `tables`, and each of `fields` ("improved" a bool, others ints).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "metrics.json"; _ = p.write_text("{}")
    >>> metrics_problem(p)
    'metrics.json is damaged (no "before" figures)'
    """
    from .records import RunDirError

    try:
        metrics = read_json(path)
    except RunDirError as e:
        return f"{path.name} is damaged ({str(e).removeprefix(f'{path} is ')})"
    if not isinstance(metrics, dict):
        return f"{path.name} is damaged (not a JSON object)"
    for table in tables:
        figures = metrics.get(table)
        if not isinstance(figures, dict) or not figures or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in figures.values()):
            return f"{path.name} is damaged (no \"{table}\" figures)"
    for name in fields:
        value = metrics.get(name)
        if not isinstance(value, bool) if name == "improved" else (not isinstance(value, int) or isinstance(value, bool)):
            return f"{path.name} is damaged (no \"{name}\")"
    return None


class Pipeline:
    """One run of ragtune over a folder of documents."""

    def __init__(self, cfg: Config, reporter: Reporter | None = None, progress: bool = False) -> None:
        """`progress=True` (and no `reporter`) shows a line per stage and progress bars, in a terminal or notebook."""
        self.cfg = cfg
        self.run_dir = cfg.out
        if reporter is None and progress:
            from .progress import ProgressReporter

            reporter = ProgressReporter()
        self.reporter = reporter or SilentReporter()
        self.manifest = Manifest(self.run_dir)
        # What ragtune.stages read and set besides the files: the models loaded so far (the
        # train stage adds "tuned"), their own max_seq_length before the run raised it, the
        # key of the stage now running (training checkpoints carry it), and what the train
        # stage still has to write, as (what, bytes), for a disk-full message.
        self.models: dict[str, Any] = {}
        self.default_lengths: dict[str, int] = {}
        self.key = ""
        self.space: tuple[str, int] | None = None

    # -- what the stages use ---------------------------------------------------------------
    def path(self, name: str) -> Path:
        """A file or folder in the run directory."""
        return self.run_dir / name

    def model(self, which: str) -> Any:
        """The base model or the fine-tuned one, loaded once per run."""
        from .models import load_model, pick_device, resolve_base_model

        if which not in self.models:
            source = resolve_base_model(self.cfg.base_model) if which == "base" else str(self.path("model"))
            self.models[which] = load_model(source, pick_device(self.cfg.device))
            if which == "base":
                _check_matryoshka_dims(self.cfg.matryoshka_dims, self.models[which])
            self.default_lengths[which] = int(self.models[which].max_seq_length)
        model = self.models[which]
        # Once chunking has sized the chunks, every model reads them whole, the
        # same way before and after training.
        seq_length = self.manifest.info("chunk").get("max_seq_length")
        if seq_length:
            model.max_seq_length = seq_length
        return model

    def progress_for(self, stage: str) -> Callable[[int, int], None]:
        """The callback a stage reports its progress through: `progress(done, total)`."""
        return lambda done, total: self.reporter.stage_progress(stage, done, total)

    def note(self, message: str) -> None:
        """One line about something the run repaired or redid (the reporter's `note`, else a logging warning)."""
        note = getattr(self.reporter, "note", None)
        if note is not None:
            note(message)
        else:
            logging.getLogger(__name__).warning("%s", message)

    def _stage(
        self, index: int, name: str, key: str, outputs: list[Path], work: Callable[[], dict[str, Any]],
        edited: tuple[Path, ...] = (), problem: Callable[[], str | None] = lambda: None,
        written: Callable[[], list[Path]] = list,
    ) -> dict[str, Any]:
        """Run `work` unless the manifest's entry for `name` has this `key` and its
        `outputs` are the files it recorded; `edited` outputs (which the user or a
        later command may change, such as the model card) only have to exist, and
        `problem()`, what is wrong with them (None: nothing). `written()`, called after
        `work`, names more files it wrote: their digests are recorded and checked too."""
        self.reporter.stage_start(name, index, len(STAGES))
        # Once a stage has run in this run, every later stage is stale too, even
        # if its key matches (e.g. a deleted model was retrained).
        if not self.timings:
            stale = self.manifest.stale_output(name, key, outputs)
            if stale is None and not all(p.exists() for p in edited):
                stale = f"{next(p for p in edited if not p.exists()).relative_to(self.run_dir).as_posix()} is missing"
            if stale is None:
                stale = problem()
            if stale is None:
                info = self.manifest.info(name)
                self.reporter.stage_end(name, info.get("summary", ""), 0.0, cached=True)
                self._cached.append(name)
                return info
            if stale:
                self.note(f"{stale}; redoing the {name} stage")
        # The old entry is stale: nothing may read it while the stage runs again (e.g. a damaged
        # max_seq_length of the chunk stage, which Pipeline.model reads).
        self.manifest.data["stages"].pop(name, None)
        start = time.perf_counter()
        self.key = key
        try:
            info = work()
        except BaseException:
            abort = getattr(self.reporter, "stage_abort", None)
            if abort is not None:
                abort(name)
            raise
        seconds = time.perf_counter() - start
        self.manifest.record(name, key, seconds, info, outputs + [p for p in written() if p not in outputs])
        self.timings[name] = seconds
        self.reporter.stage_end(name, info.get("summary", ""), seconds, cached=False)
        return info

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run every stage whose inputs changed, holding run.lock; a full disk is a DiskFullError."""
        from .training import distributed

        if distributed.rank() > 0:
            # Under torchrun only rank 0 runs the stages; this rank trains beside it (ragtune.training.distributed).
            return self._follow()
        self.timings: dict[str, float] = {}
        self._cached: list[str] = []
        self.space = None
        # An --out that is not this run's to write, or a mistyped or empty docs folder, fails
        # here, before anything is written.
        check_out_dir(self.run_dir, "run", self.cfg.docs)
        fingerprint = _docs_fingerprint(self.cfg)
        claim_out_dir(self.run_dir, "run", self.cfg.docs)
        lock = RunLock(self.run_dir)
        taken_over = lock.acquire()
        try:
            if taken_over:
                self.note(taken_over)
            # Read again under the lock: a run that held it before may have recorded stages since.
            self.manifest = Manifest(self.run_dir)
            # share: the other torchrun ranks (if any) return the same result.
            return distributed.share(self._run_stages(fingerprint))
        except Exception as e:
            if isinstance(e, DiskFullError) or not self.is_disk_full(e):
                raise
            raise DiskFullError(self._disk_full_message(e)) from None
        finally:
            lock.release()

    def _follow(self) -> RunResult:
        """A torchrun rank other than 0: train each time rank 0 trains, write nothing, return rank 0's result."""
        from .training import distributed
        from .models import load_model, pick_device, resolve_base_model
        from .training.trainer import fine_tune

        while isinstance(job := distributed.share(), dict):
            device = pick_device(self.cfg.device)
            model = load_model(resolve_base_model(self.cfg.base_model), device)
            model.max_seq_length = job.pop("max_seq_length")
            fine_tune(model, cfg=self.cfg, work_dir=self.path("checkpoints"), device=device, **job)
        return job

    def is_disk_full(self, e: Exception) -> bool:
        """Whether `e` means the disk filled up (torch.save says so only in its own words)."""
        if is_disk_full(e):
            return True
        # torch.save says only "unexpected pos …" or "file write failed" when the disk fills up.
        free = free_bytes(self.run_dir)
        return (isinstance(e, RuntimeError) and any(s in str(e) for s in ("inline_container", "PytorchStreamWriter"))
                and self.space is not None and free is not None and free < self.space[1])

    def _disk_full_message(self, e: Exception) -> str:
        filename = getattr(e, "filename", None)
        where = Path(filename).parent if filename else self.run_dir
        free = free_bytes(self.run_dir)
        need = f"{self.space[0]} needs about {megabytes(self.space[1])}, " if self.space else ""
        have = f"{megabytes(free)} is free now" if free is not None else "the disk is full"
        return (f"no space left on the disk of {where}: {need}{have}; free some space (or use --out on a bigger "
                "disk) and rerun the same command, which continues where this one stopped")

    def _run_stages(self, fingerprint: list[tuple[str, int, str]]) -> RunResult:
        from .stages import chunk, evaluate, extract, generate, save, split, theme, train

        cfg = self.cfg
        write_json(self.path("config.json"), cfg.to_dict())
        keys = stage_keys(cfg, fingerprint, self.lexicon())
        done: dict[str, dict[str, Any]] = {}
        done["extract"] = self._stage(1, "extract", keys["extract"], [self.path("pages.jsonl")],
                                      lambda: extract.run_stage(self))
        warn = getattr(self.reporter, "input_skipped", None)
        if warn is not None and done["extract"]["skipped"]["counts"]:
            warn(done["extract"]["skipped"])
        done["chunk"] = self._stage(2, "chunk", keys["chunk"], [self.path("chunks_raw.jsonl")],
                                    lambda: chunk.run_stage(self))
        done["theme"] = self._stage(3, "theme", keys["theme"], [self.path("chunks.jsonl")],
                                    lambda: theme.run_stage(self))
        done["generate"] = self._stage(4, "generate", keys["generate"], [self.path("pairs.jsonl")],
                                       lambda: generate.run_stage(self))
        done["split"] = self._stage(5, "split", keys["split"],
                                    [self.path(f"pairs_{s}.jsonl") for s in ("train", "val", "eval", "lexical")],
                                    lambda: split.run_stage(self))
        model = self.path("model")
        done["train"] = self._stage(6, "train", keys["train"], [model / "config.json", model / "model.safetensors"],
                                    lambda: train.run_stage(self), written=self._model_files)
        # `--eval-dataset` adds to metrics.json after a run: it only has to hold the evaluation's figures.
        # bm25/ is a folder: its digest covers every file in it.
        index = self.path("index")
        self._stage(7, "evaluate", keys["evaluate"],
                    [index / "index.faiss", index / "rows.npy", index / "retriever.json", index / "bm25"],
                    lambda: evaluate.run_stage(self), edited=(self.path("metrics.json"),),
                    problem=lambda: metrics_problem(self.path("metrics.json")))
        metrics = read_json(self.path("metrics.json"))
        summary = save.summary(self, **done)
        # The card may be edited by hand before a push.
        self._stage(8, "save", hash_parts(keys["evaluate"], "save", summary),
                    [self.path("index") / "chunks.jsonl", self.path("card.json"), self.path("report.html"),
                     self.path("plots") / "retrievers.png"],
                    lambda: save.run_stage(self, summary, metrics), edited=(self.path("model") / "README.md",))
        return RunResult(self.run_dir, metrics, summary, self.timings, self._cached)

    def _model_files(self) -> list[Path]:
        """Every file training wrote into model/ (tokenizer, modules, pooling): all but the card, which
        the save stage writes and a user may edit, and onnx/, which `ragtune export --onnx` adds."""
        model = self.path("model")
        return sorted(p for p in model.rglob("*")
                      if p.is_file() and p.relative_to(model).parts[0] not in ("README.md", "onnx"))

    def lexicon(self) -> dict[str, list[str]]:
        """The themes the run tags chunks with: --themes FILE, or the built-in lexicon."""
        from .themes import DEFAULT_LEXICON, load_lexicon

        return load_lexicon(self.cfg.themes_file) if self.cfg.themes_file else DEFAULT_LEXICON
