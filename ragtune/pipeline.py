"""Runs the stages in order, keeping all state in the run directory.

Each stage has a key: a hash of the previous stage's key, the stage's own
settings and ragtune's version. A rerun skips a stage whose key matches the
manifest and whose outputs are still the files it wrote (their size and digest
are recorded); when a setting changes, or an output was truncated or replaced,
that stage and everything after it run again.

One run at a time: run.lock in the run directory names the run that holds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from . import __version__
from .config import LLM_GENERATORS, Config
from .errors import NotEnoughDataError
from .records import (FORMAT_VERSION, Chunk, Counter, DiskFullError, LabelledPair, Page, Pair, RunDirError,
                      check_free_space, file_digest, free_bytes, is_disk_full, megabytes, read_json, read_jsonl,
                      write_json, write_jsonl)

# 2: JSONL files without a header line (their format version is recorded here), passage index, BM25 index.
MANIFEST_VERSION = 2
# Chunks a validation check ranks among: enough distractors to tell models apart, few enough to be quick on a CPU.
VALIDATION_CORPUS = 150
STAGES = ("extract", "chunk", "theme", "generate", "split", "train", "evaluate", "save")
# The Config fields each stage's output depends on. A stage's cache key hashes these
# with the key of the stage before it, so a change reruns that stage and every later
# one. Three are hashed through what they name: docs as the digest of every file read,
# themes_file as the lexicon it loads, pairs_files as their digests.
# tests/test_pipeline.py checks that every Config field is here or in UNKEYED.
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "extract": ("docs", "extractor", "include", "exclude"),
    "chunk": ("base_model", "chunk_tokens", "chunk_overlap", "min_chunk_tokens"),
    "theme": ("themes_file",),
    "generate": ("generator", "questions_per_chunk", "seed", "near_duplicate", "round_trip_k",
                 "llm_base_url", "llm_model", "llm_concurrency", "llm_timeout", "llm_retries"),
    "split": ("eval_fraction", "val_fraction", "eval_max_chunks", "val_max_chunks", "lexical_per_chunk",
              "lexical_remove"),
    "train": ("epochs", "batch_size", "learning_rate", "warmup_ratio", "weight_decay", "max_steps", "hard_negatives",
              "same_theme_negatives", "pairs_files", "pairs_loss", "evals", "patience", "wise", "matryoshka_dims",
              "mini_batch_size", "queries_per_row"),
    "evaluate": ("ks", "passage_words", "chunk_weight", "hybrid_weight"),
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
    # skipped, as Counter.to_dict(); called after the extract stage, fresh or reused.
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


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return f"unreadable:{path}"


def _entry_check(entry: dict[str, Any]) -> str:
    """A stage entry's own digest: an entry edited or damaged after it was written no longer matches it."""
    return _hash({k: v for k, v in entry.items() if k != "check"})


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
    key = _hash(__version__)
    for stage in STAGES[:-1]:
        names = [n for n in STAGE_SETTINGS[stage] if n not in LLM_SETTINGS or cfg.generator in LLM_GENERATORS]
        key = keys[stage] = _hash(key, stage, {n: value(n) for n in names})
    return keys


def _docs_fingerprint(cfg: Config) -> list[tuple[str, int, str]]:
    """Name, size and digest of every file extraction will look at; raises ExtractError
    when the folder has nothing to read, before the run directory is made."""
    from .extract import select_documents

    # Unreadable subfolders and bad links are counted by extraction itself; here they only drop out.
    supported, other, excluded = select_documents(cfg.docs, cfg.include, cfg.exclude)
    out = []
    for p in supported + other + excluded:
        try:
            out.append((p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()[:16]))
        except OSError as e:
            # Extraction skips and counts it; once it can be read, the key changes and extraction reruns.
            out.append((p.name, -1, f"unreadable ({type(e).__name__})"))
    return out


class Manifest:
    """run_dir/manifest.json: format version, ragtune version, and per-stage keys and timings."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "manifest.json"
        self.run_dir = run_dir
        self.data: dict[str, Any] = {"ragtune_manifest": MANIFEST_VERSION, "ragtune_version": __version__,
                                     "jsonl_format": FORMAT_VERSION, "stages": {}}
        if self.path.exists():
            try:
                old = read_json(self.path)
            except RunDirError as e:
                raise RunDirError(f"{e}; use a new --out directory or delete this one") from None
            if not isinstance(old, dict) or old.get("ragtune_manifest") != MANIFEST_VERSION:
                version = old.get("ragtune_version", "unknown") if isinstance(old, dict) else "unknown"
                raise RunDirError(f"{run_dir} was made by an incompatible ragtune version ({version}); "
                                  "use a new --out directory or delete this one")
            stages = old.get("stages", {})
            if not isinstance(stages, dict) or not all(
                    isinstance(e, dict) and isinstance(e.get("key"), str) and isinstance(e.get("outputs", {}), dict)
                    for e in stages.values()):
                raise RunDirError(f"{self.path} is damaged (a stage entry is not what ragtune writes); "
                                  "use a new --out directory or delete this one")
            self.data["stages"] = stages

    def stale_output(self, stage: str, key: str, outputs: list[Path]) -> str | None:
        """Why the recorded `stage` cannot be reused ("" when it never ran or its
        settings changed; a sentence when an output went missing or changed), or None."""
        entry = self.data["stages"].get(stage)
        if not entry or entry.get("key") != key:
            return ""
        digests = entry.get("outputs", {})  # absent in manifests from before digests were recorded
        if entry.get("check", _entry_check(entry)) != _entry_check(entry):
            return f"its entry in {self.path.name} was changed since it was written"
        for p in outputs:
            rel = p.relative_to(self.run_dir).as_posix()
            if not p.exists():
                return f"{rel} is missing"
            if rel in digests:
                try:
                    same = file_digest(p) == digests[rel]
                except OSError as e:
                    return f"{rel} cannot be read ({e.strerror or e})"
                if not same:
                    return f"{rel} changed since the {stage} stage wrote it"
        return None

    def record(self, stage: str, key: str, seconds: float, info: dict[str, Any], outputs: list[Path]) -> None:
        digests = {p.relative_to(self.run_dir).as_posix(): file_digest(p) for p in outputs if p.is_file()}
        entry = {"key": key, "seconds": round(seconds, 3), **info, "outputs": digests}
        self.data["stages"][stage] = entry | {"check": _entry_check(entry)}
        self.data["ragtune_version"] = __version__
        write_json(self.path, self.data)

    def info(self, stage: str) -> dict[str, Any]:
        return self.data["stages"].get(stage, {})


class RunLock:
    """run_dir/run.lock: one ragtune run at a time in a run directory.

    The file names its holder (pid, host, start time); the lock itself is an
    flock on it, which the system drops however the holder ends, kill -9
    included. A lock file left behind by a run that is gone is stale: the
    next run takes it over and says so.

    >>> import tempfile; lock = RunLock(Path(tempfile.mkdtemp()))
    >>> lock.acquire(), lock.path.exists(), lock.release(), lock.path.exists()
    (None, True, None, False)
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "run.lock"
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock, or raise RunDirError naming the run that holds it; returns a
        note when it took over a stale lock file, else None."""
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
            except OSError:
                # No flock on this file system: the holder counts as alive while its pid runs on this host.
                held = _holder_alive(_read_fd(fd))
            if held:
                # The holder writes its name just after it takes the lock: give it a moment.
                for _ in range(50):
                    if _read_fd(fd).strip():
                        break
                    time.sleep(0.02)
                holder = self._describe(_read_fd(fd))
                os.close(fd)
                raise RunDirError(f"{self.run_dir} is in use by another ragtune run ({holder}); wait for it to "
                                  "finish or use another --out directory")
            # The holder before us removes the file as it lets go: lock the file that is there now.
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        left = _read_fd(fd)
        mine = json.dumps({"pid": os.getpid(), "host": _host(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode() + b"\n", 0)
        self._fd = fd
        if not left.strip():
            return None
        return (f"took over a stale {self.path.name} left by a run that ended without releasing it "
                f"({self._describe(left)})")

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file while still holding it, so that a waiting run sees it gone and retries.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _describe(self, text: str) -> str:
        try:
            holder = json.loads(text)
            return f"pid {int(holder['pid'])} on {holder['host']}, since {holder['started']}"
        except (ValueError, KeyError, TypeError):
            return f"see {self.path}"


def _host() -> str:
    import socket

    return socket.gethostname()


def _holder_alive(text: str) -> bool:
    """Whether the lock file `text` names a process running on this host (not this one)."""
    try:
        holder = json.loads(text)
        pid, host = int(holder["pid"]), holder["host"]
    except (ValueError, KeyError, TypeError):
        return False
    if host != _host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    return True


def _read_fd(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")


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
        self._models: dict[str, Any] = {}
        self._default_lengths: dict[str, int] = {}

    # -- helpers -------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.run_dir / name

    def _model(self, which: str) -> Any:
        """The base model or the fine-tuned one, loaded once per run."""
        from .models import load_model, pick_device, resolve_base_model

        if which not in self._models:
            source = resolve_base_model(self.cfg.base_model) if which == "base" else str(self.path("model"))
            self._models[which] = load_model(source, pick_device(self.cfg.device))
            self._default_lengths[which] = int(self._models[which].max_seq_length)
        model = self._models[which]
        # Once chunking has sized the chunks, every model reads them whole, the
        # same way before and after training.
        seq_length = self.manifest.info("chunk").get("max_seq_length")
        if seq_length:
            model.max_seq_length = seq_length
        return model

    def _progress(self, stage: str) -> Callable[[int, int], None]:
        """The callback a stage reports its progress through: `progress(done, total)`."""
        return lambda done, total: self.reporter.stage_progress(stage, done, total)

    def _note(self, message: str) -> None:
        note = getattr(self.reporter, "note", None)
        if note is not None:
            note(message)
        else:
            logging.getLogger(__name__).warning("%s", message)

    def _stage(
        self, index: int, name: str, key: str, outputs: list[Path], work: Callable[[], dict[str, Any]],
        edited: tuple[Path, ...] = (),
    ) -> dict[str, Any]:
        """Run `work` unless the manifest's entry for `name` has this `key` and its
        `outputs` are the files it recorded; `edited` outputs (which the user or a
        later command may change, such as the model card) only have to exist."""
        self.reporter.stage_start(name, index, len(STAGES))
        # Once a stage has run in this run, every later stage is stale too, even
        # if its key matches (e.g. a deleted model was retrained).
        if not self.timings:
            stale = self.manifest.stale_output(name, key, outputs)
            if stale is None and not all(p.exists() for p in edited):
                stale = f"{next(p for p in edited if not p.exists()).relative_to(self.run_dir).as_posix()} is missing"
            if stale is None:
                info = self.manifest.info(name)
                self.reporter.stage_end(name, info.get("summary", ""), 0.0, cached=True)
                self._cached.append(name)
                return info
            if stale:
                self._note(f"{stale}; redoing the {name} stage")
        start = time.perf_counter()
        self._key = key
        try:
            info = work()
        except BaseException:
            abort = getattr(self.reporter, "stage_abort", None)
            if abort is not None:
                abort(name)
            raise
        seconds = time.perf_counter() - start
        self.manifest.record(name, key, seconds, info, outputs)
        self.timings[name] = seconds
        self.reporter.stage_end(name, info.get("summary", ""), seconds, cached=False)
        return info

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run every stage whose inputs changed, holding run.lock; a full disk is a DiskFullError."""
        from . import distributed

        if distributed.rank() > 0:
            # Under torchrun only rank 0 runs the stages; this rank trains beside it (ragtune.distributed).
            return self._follow()
        self.timings: dict[str, float] = {}
        self._cached: list[str] = []
        # What the train stage still has to write, once it knows: (what, bytes), for a disk-full message.
        self._space: tuple[str, int] | None = None
        # A mistyped or empty docs folder fails here, before anything is written.
        fingerprint = _docs_fingerprint(self.cfg)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.run_dir)
        taken_over = lock.acquire()
        try:
            if taken_over:
                self._note(taken_over)
            # Read again under the lock: a run that held it before may have recorded stages since.
            self.manifest = Manifest(self.run_dir)
            # share: the other torchrun ranks (if any) return the same result.
            return distributed.share(self._run_stages(fingerprint))
        except Exception as e:
            if isinstance(e, DiskFullError) or not self._is_disk_full(e):
                raise
            raise DiskFullError(self._disk_full_message(e)) from None
        finally:
            lock.release()

    def _follow(self) -> RunResult:
        """A torchrun rank other than 0: train each time rank 0 trains, write nothing, return rank 0's result."""
        from . import distributed
        from .models import load_model, pick_device, resolve_base_model
        from .train import fine_tune

        while isinstance(job := distributed.share(), dict):
            device = pick_device(self.cfg.device)
            model = load_model(resolve_base_model(self.cfg.base_model), device)
            model.max_seq_length = job.pop("max_seq_length")
            fine_tune(model, cfg=self.cfg, work_dir=self.path("checkpoints"), device=device, **job)
        return job

    def _is_disk_full(self, e: Exception) -> bool:
        if is_disk_full(e):
            return True
        # torch.save says only "unexpected pos …" or "file write failed" when the disk fills up.
        free = free_bytes(self.run_dir)
        return (isinstance(e, RuntimeError) and any(s in str(e) for s in ("inline_container", "PytorchStreamWriter"))
                and self._space is not None and free is not None and free < self._space[1])

    def _disk_full_message(self, e: Exception) -> str:
        filename = getattr(e, "filename", None)
        where = Path(filename).parent if filename else self.run_dir
        free = free_bytes(self.run_dir)
        need = f"{self._space[0]} needs about {megabytes(self._space[1])}, " if self._space else ""
        have = f"{megabytes(free)} is free now" if free is not None else "the disk is full"
        return (f"no space left on the disk of {where}: {need}{have}; free some space (or use --out on a bigger "
                "disk) and rerun the same command, which continues where this one stopped")

    def _run_stages(self, fingerprint: list[tuple[str, int, str]]) -> RunResult:
        cfg = self.cfg
        write_json(self.path("config.json"), cfg.to_dict())

        keys = stage_keys(cfg, fingerprint, self._lexicon())
        extract = self._stage(1, "extract", keys["extract"], [self.path("pages.jsonl")], self._extract)
        warn = getattr(self.reporter, "input_skipped", None)
        if warn is not None and extract["skipped"]["counts"]:
            warn(extract["skipped"])
        chunk = self._stage(2, "chunk", keys["chunk"], [self.path("chunks_raw.jsonl")], self._chunk)
        theme = self._stage(3, "theme", keys["theme"], [self.path("chunks.jsonl")], self._theme)
        generate = self._stage(4, "generate", keys["generate"], [self.path("pairs.jsonl")], self._generate)
        split = self._stage(5, "split", keys["split"],
                            [self.path(f"pairs_{s}.jsonl") for s in ("train", "val", "eval", "lexical")], self._split)
        model = self.path("model")
        train = self._stage(6, "train", keys["train"], [model / "config.json", model / "model.safetensors"],
                            self._train)
        # `--eval-dataset` adds to metrics.json after a run: it only has to exist.
        self._stage(7, "evaluate", keys["evaluate"], [self.path("index") / "index.faiss"], self._evaluate,
                    edited=(self.path("metrics.json"),))
        metrics = read_json(self.path("metrics.json"))
        summary = self._summary(extract, chunk, theme, generate, split, train)
        key = _hash(keys["evaluate"], "save", summary)
        # The card may be edited by hand before a push.
        self._stage(8, "save", key, [self.path("index") / "chunks.jsonl", self.path("card.json"),
                                     self.path("report.html"), self.path("plots") / "retrievers.png"],
                    lambda: self._save(summary, metrics),
                    edited=(self.path("model") / "README.md",))
        return RunResult(self.run_dir, metrics, summary, self.timings, self._cached)

    # -- stages --------------------------------------------------------------------------
    def _extract(self) -> dict[str, Any]:
        from .extract import ExtractError, describe_skips, extract_folder

        result = extract_folder(self.cfg.docs, self.cfg.extractor, self.cfg.include, self.cfg.exclude,
                                progress=self._progress("extract"))
        if not result.pages:
            # Every file was skipped: say why now, not as "too few chunks" three stages later.
            why = "; ".join(describe_skips(result.skipped.to_dict()))
            raise ExtractError(f"no text to train on in {self.cfg.docs}: {why}")
        write_jsonl(self.path("pages.jsonl"), result.pages, Page)
        return {
            "files": result.files,
            "n_pages": len(result.pages),
            "skipped": result.skipped.to_dict(),
            "summary": f"{len(result.files)} files, {len(result.pages)} pages with text"
            + (f", {result.skipped.total()} skipped" if result.skipped.total() else ""),
        }

    def _chunk(self) -> dict[str, Any]:
        from .chunk import chunk_pages
        from .models import max_positions, seq_length_for

        model = self._model("base")
        pages = read_jsonl(self.path("pages.jsonl"), Page)
        # Chunks may use all the model's positions, leaving room for the [CLS]
        # and [SEP] tokens the model adds; max_seq_length is then raised to fit.
        default_length = self._default_lengths["base"]
        max_tokens = max_positions(model) - 2
        result = chunk_pages(pages, model.tokenizer, self.cfg.chunk_tokens, self.cfg.chunk_overlap, max_tokens,
                             self.cfg.min_chunk_tokens)
        write_jsonl(self.path("chunks_raw.jsonl"), result.chunks, Chunk)
        lengths = sorted(c.n_tokens for c in result.chunks)
        median = lengths[len(lengths) // 2] if lengths else 0
        seq_length = seq_length_for(default_length, max_tokens + 2, lengths[-1] if lengths else 0)
        return {
            "n_chunks": len(result.chunks),
            "max_seq_length": seq_length,
            # Chunks the model's own max_seq_length would have cut short.
            "longer_than_default": sum(n + 2 > default_length for n in lengths),
            "tokens_median": median,
            "tokens_max": lengths[-1] if lengths else 0,
            "skipped": result.skipped.to_dict(),
            "summary": f"{len(result.chunks)} chunks (median {median} tokens, max {lengths[-1] if lengths else 0})",
        }

    def _lexicon(self) -> dict[str, list[str]]:
        from .themes import DEFAULT_LEXICON, load_lexicon

        return load_lexicon(self.cfg.themes_file) if self.cfg.themes_file else DEFAULT_LEXICON

    def _theme(self) -> dict[str, Any]:
        from .themes import tag_chunks

        result = tag_chunks(read_jsonl(self.path("chunks_raw.jsonl"), Chunk), self._lexicon())
        write_jsonl(self.path("chunks.jsonl"), result.chunks, Chunk)
        return {
            "per_theme": result.per_theme,
            "unthemed": result.unthemed,
            "summary": f"{len(result.chunks) - result.unthemed} themed, {result.unthemed} unthemed (kept)",
        }

    def _generate(self) -> dict[str, Any]:
        from .models import word_vocabulary
        from .synth import filter_pairs, make_generator

        cfg = self.cfg
        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        # LLM generators keep every answer in llm_cache/, so a rerun asks only for what is missing.
        gen = make_generator(cfg.generator, cfg.questions_per_chunk, base_url=cfg.llm_base_url, model=cfg.llm_model,
                             concurrency=cfg.llm_concurrency, timeout=cfg.llm_timeout, retries=cfg.llm_retries,
                             seed=cfg.seed, cache_dir=self.path("llm_cache"), device=cfg.device,
                             vocabulary=word_vocabulary(self._model("base").tokenizer))
        raw = gen.generate(chunks, random.Random(cfg.seed))
        result = filter_pairs(raw, {c.id: c for c in chunks}, across_chunks=gen.name != "template")
        result.pairs = self._filter_more(result.pairs, chunks, result.dropped, baseline=gen.name == "template")
        write_jsonl(self.path("pairs.jsonl"), result.pairs, Pair)
        kinds: dict[str, int] = {}
        for p in result.pairs:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        skipped = result.dropped
        summary = f"{len(result.pairs)} questions kept of {len(raw)} ({result.dropped.total()} dropped)"
        info: dict[str, Any] = {"generator": gen.name}
        stats = gen.stats  # LLM generators also count requests, tokens and unusable lines
        if stats is not None:
            llm_dropped = gen.dropped
            skipped = Counter({**llm_dropped.counts, **skipped.counts}, {**llm_dropped.examples, **skipped.examples})
            info["llm"] = stats.to_dict() | {"model": cfg.llm_model, "unusable_lines": llm_dropped.total()}
            summary += f"; LLM: {llm_dropped.total()} unusable lines, {stats.summary()}"
            if stats.failed_chunks:
                summary += " (to retry the failed chunks, delete pairs.jsonl and rerun)"
        return info | {
            "n_generated": len(raw),
            "n_pairs": len(result.pairs),
            "per_kind": kinds,
            "skipped": skipped.to_dict(),
            "summary": summary,
        }

    def _filter_more(self, pairs: list[Pair], chunks: list[Chunk], dropped: Counter, baseline: bool) -> list[Pair]:
        """Near-duplicate and round-trip filters (counted in `dropped`); the template
        baseline skips round trip, as its questions repeat across chunks by design."""
        from .filters import drop_near_duplicates, drop_round_trip_failures
        from .retrieval import embed

        if self.cfg.near_duplicate < 1.0 and pairs:
            vectors = embed(self._model("base"), [p.query for p in pairs])
            pairs = drop_near_duplicates(pairs, vectors, self.cfg.near_duplicate, dropped)
        if self.cfg.round_trip_k and not baseline:
            pairs = drop_round_trip_failures(pairs, chunks, self.cfg.round_trip_k, dropped)
        return pairs

    def _split(self) -> dict[str, Any]:
        from .synth import split_by_chunk

        pairs = read_jsonl(self.path("pairs.jsonl"), Pair)
        train, held = split_by_chunk(pairs, self.cfg.eval_fraction, self.cfg.seed, self.cfg.eval_max_chunks)
        n_train_chunks = len({p.chunk_id for p in train})
        if n_train_chunks < 8 or not held:
            n_chunks = len(read_jsonl(self.path("chunks.jsonl"), Chunk))
            why = (f"add documents or lower --chunk-tokens (there are {n_chunks} chunks)" if n_chunks < 10 else
                   f"the question filters left questions for only a few of the {n_chunks} chunks; "
                   "see the generate stage's drop counts in manifest.json")
            raise NotEnoughDataError(
                f"only {len({p.chunk_id for p in pairs})} chunks have questions; ragtune needs at least 10 "
                f"(roughly 3,000 words of text) to train and hold some out: {why}"
            )
        val: list[Pair] = []
        if self.cfg.val_fraction:
            # Validation chunks come out of the training side, never the held-out one.
            rest, val = split_by_chunk(train, self.cfg.val_fraction / (1 - self.cfg.eval_fraction), self.cfg.seed + 1,
                                       self.cfg.val_max_chunks)
            if len({p.chunk_id for p in val}) >= 3 and len({p.chunk_id for p in rest}) >= 8:
                train = rest
                val += self._other_style_questions({p.chunk_id for p in val})
            else:
                val = []
        from .lexical import lexical_pairs

        # BM25-labelled pseudo-queries, from training chunks only and labelled with training chunks only.
        lexical = lexical_pairs(read_jsonl(self.path("chunks.jsonl"), Chunk), {p.chunk_id for p in train},
                                self.cfg.lexical_per_chunk, self.cfg.seed, self.cfg.lexical_remove)
        write_jsonl(self.path("pairs_train.jsonl"), train, Pair)
        write_jsonl(self.path("pairs_val.jsonl"), val, Pair)
        write_jsonl(self.path("pairs_eval.jsonl"), held, Pair)
        write_jsonl(self.path("pairs_lexical.jsonl"), lexical, Pair)
        n_eval_chunks = len({p.chunk_id for p in held})
        return {
            "n_train": len(train),
            "n_val": len(val),
            "n_eval": len(held),
            "n_eval_chunks": n_eval_chunks,
            "n_lexical": len(lexical),
            "summary": f"{len(train)} train / {len(val)} validation / {len(held)} held-out questions "
                       f"({n_eval_chunks} held-out chunks); {len(lexical)} BM25-labelled spans",
        }

    def _other_style_questions(self, chunk_ids: set[str]) -> list[Pair]:
        """For an LLM run, the offline generator's questions on the validation
        chunks: validating on a second style of question keeps the checkpoint and
        the mix from rewarding a model that only learned the LLM's phrasing."""
        if self.cfg.generator not in LLM_GENERATORS:
            return []
        from .synth import OfflineGenerator, filter_pairs

        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        made = OfflineGenerator(self.cfg.questions_per_chunk).generate(chunks, random.Random(self.cfg.seed))
        mine = [p for p in made if p.chunk_id in chunk_ids]
        return filter_pairs(mine, {c.id: c for c in chunks}).pairs

    def _train(self) -> dict[str, Any]:
        from .models import pick_device
        from .train import checkpoint_step, fine_tune, scan_checkpoints

        chunks = {c.id: c for c in read_jsonl(self.path("chunks.jsonl"), Chunk)}
        pairs = read_jsonl(self.path("pairs_train.jsonl"), Pair)
        lexical_path = self.path("pairs_lexical.jsonl")
        pairs += read_jsonl(lexical_path, Pair) if lexical_path.exists() else []
        model = self._model("base")
        # Train a copy so the base stays available for the "before" numbers.
        import copy

        tuned = copy.deepcopy(model)
        labelled = self._labelled_split()
        held = {p.chunk_id for p in read_jsonl(self.path("pairs_eval.jsonl"), Pair)}
        val_pairs = read_jsonl(self.path("pairs_val.jsonl"), Pair)
        negatives = None
        if self.cfg.hard_negatives:
            from .train import fill_negatives, mine_hard_negatives

            # Held-out and validation chunks never enter training, not even as negatives.
            allowed = set(chunks) - held - {p.chunk_id for p in val_pairs}
            mined = mine_hard_negatives(model, pairs, chunks, allowed, same_theme=self.cfg.same_theme_negatives)
            negatives = fill_negatives(mined, pairs, allowed, self.cfg.seed)
        validation = None
        if val_pairs:
            from .train import Validation

            # Validation ranks among chunks that are not held out (those stay unseen
            # until the end): its own and, to keep each check quick, at most
            # VALIDATION_CORPUS in all, the others a seeded sample.
            own = {p.chunk_id for p in val_pairs}
            others = sorted(cid for cid in chunks if cid not in held and cid not in own)
            random.Random(self.cfg.seed).shuffle(others)
            keep = own | set(others[: max(0, VALIDATION_CORPUS - len(own))])
            corpus = [c for cid, c in chunks.items() if cid in keep]
            validation = Validation([p.query for p in val_pairs], [p.kind or p.generator for p in val_pairs],
                                    [p.chunk_id for p in val_pairs], [c.id for c in corpus], [c.text for c in corpus])
        tmp = self.path("model.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        resume = self._checkpoints_to_resume()
        resumed = checkpoint_step(str(resume)) if resume is not None else None
        self._check_training_space(tuned)
        try:
            from . import distributed

            job = {"pairs": pairs, "chunks": chunks, "negatives": negatives, "labelled": labelled,
                   "validation": validation, "resume": resume}
            # Under torchrun the other ranks train beside this one on the same rows (ragtune.distributed).
            distributed.share(job | {"max_seq_length": tuned.max_seq_length})
            result = fine_tune(tuned, cfg=self.cfg, work_dir=self.path("checkpoints"),
                               device=pick_device(self.cfg.device), progress=self._progress("train"), **job)
            tuned.save(str(tmp), safe_serialization=True)
        except Exception as e:
            if self._is_disk_full(e):
                # What was half written gives its space back now; complete checkpoints stay to resume from.
                shutil.rmtree(tmp, ignore_errors=True)
                for path, _ in scan_checkpoints(self.path("checkpoints"))[1]:
                    shutil.rmtree(path, ignore_errors=True)
            raise
        shutil.rmtree(self.path("model"), ignore_errors=True)
        tmp.replace(self.path("model"))
        shutil.rmtree(self.path("checkpoints"), ignore_errors=True)
        self._models["tuned"] = tuned
        summary = f"{result.steps} steps on {result.device}"
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

    def _checkpoints_to_resume(self) -> Path | None:
        """The newest complete checkpoint left by an interrupted run of this same
        training stage, or None (and a clean checkpoint folder) otherwise.

        A checkpoint cut off mid-write, or left half deleted, is removed with a
        note: the previous complete one is resumed from, or training starts again.
        """
        from .records import atomic_write_text
        from .train import scan_checkpoints

        folder = self.path("checkpoints")
        marker = folder / "ragtune_stage_key"
        if marker.is_file() and marker.read_text(encoding="utf-8", errors="replace") == self._key:
            newest, broken = scan_checkpoints(folder)
            for path, problem in broken:
                shutil.rmtree(path, ignore_errors=True)
                then = f"resuming from {newest.name}" if newest is not None else "training starts again"
                self._note(f"{path.name} cannot be resumed from: {problem}; {then}")
            if newest is not None:
                return newest
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        atomic_write_text(marker, self._key)
        return None

    def _check_training_space(self, model: Any) -> None:
        """Stop before training when the disk cannot hold its checkpoints and the model (estimated from the weights)."""
        weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        try:
            extra = 2 * len(model.tokenizer.backend_tokenizer.to_str()) + 1_000_000  # tokenizer and config files
        except AttributeError:
            extra = 4_000_000
        # A checkpoint holds the weights and AdamW's two moments; three exist while one is written.
        checkpoint = 3 * weights + extra
        held = len(list(self.path("checkpoints").glob("checkpoint-*")))
        need = max(1, 3 - held) * checkpoint + weights + extra
        what = (f"training (checkpoints of about {megabytes(checkpoint)}, up to 3 at a time, "
                f"and the {megabytes(weights + extra)} model)")
        self._space = (what, need)
        check_free_space(self.run_dir, need, what)

    def _labelled_split(self) -> list[LabelledPair] | None:
        """Read --pairs files, split them (seeded), write both sides; the training side is returned."""
        if not self.cfg.pairs_files:
            for name in ("labelled_train.jsonl", "labelled_eval.jsonl"):
                self.path(name).unlink(missing_ok=True)
            return None
        from .pairs import dedupe, load_pairs_file, split_pairs

        skipped = Counter()
        pairs = dedupe([p for f in self.cfg.pairs_files for p in load_pairs_file(f)], skipped)
        train, held = split_pairs(pairs, self.cfg.eval_fraction, self.cfg.seed)
        if len(held) < 5:
            raise NotEnoughDataError(f"only {len(held)} labelled pairs held out for evaluation; give at least 25 pairs")
        write_jsonl(self.path("labelled_train.jsonl"), train, LabelledPair)
        write_jsonl(self.path("labelled_eval.jsonl"), held, LabelledPair)
        return train

    def _evaluate(self) -> dict[str, Any]:
        from .evaluate import MRR_AT, evaluate_model, is_improved, per_theme_hits, rank_metrics, similarity_shift
        from .progress import Parts
        from .retrieval import BM25Index, DenseIndex, embed, fuse, positions_to_ids, retrieval_units

        cfg = self.cfg
        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        held = read_jsonl(self.path("pairs_eval.jsonl"), Pair)
        texts, ids = [c.text for c in chunks], [c.id for c in chunks]
        queries, relevant = [p.query for p in held], [p.chunk_id for p in held]
        ks = cfg.ks
        depth = max(max(ks), MRR_AT)
        # Fusion looks deeper than the metrics so that both lists can contribute.
        pool = 10 * depth
        units = retrieval_units(texts, cfg.passage_words)
        n = len(chunks)
        metrics: dict[str, Any] = {}
        dense: dict[str, DenseIndex] = {}
        parts = Parts(self._progress("evaluate"), 2 * (len(units.texts) + len(queries)))
        top1: dict[str, Any] = {}
        ranked: dict[str, list[list[str]]] = {}
        for which, key in (("base", "before"), ("tuned", "after")):
            model = self._model(which)
            # The chunk vectors are the first rows of the units: one encoding serves both retrievers.
            vectors = embed(model, units.texts, progress=parts.part())
            one = DenseIndex.from_vectors(vectors[:n], units.owner[:n])
            q = embed(model, queries, progress=parts.part())
            top, positions = one.search(q, depth)
            metrics[key] = rank_metrics(positions_to_ids(positions, ids), relevant, ks)
            # What a RAG app's score cutoff sees: the cosine of each question's best chunk.
            top1[key] = top[:, 0]
            if cfg.passage_words:
                dense[which] = DenseIndex.from_vectors(vectors, units.owner, cfg.chunk_weight)
                ranked[key] = positions_to_ids(dense[which].search(q, depth)[1], ids)
                metrics[f"{key}_passages"] = rank_metrics(ranked[key], relevant, ks)
            else:
                dense[which] = one
                ranked[key] = positions_to_ids(positions, ids)
        bm25 = BM25Index.build(texts)
        metrics["bm25"] = rank_metrics(positions_to_ids(bm25.search(queries, depth)[1], ids), relevant, ks)
        # The validation questions' view of the hybrid weight is recorded, not followed (see Config.hybrid_weight).
        tuned = self._model("tuned")
        weight = cfg.hybrid_weight
        weight_scores = self._hybrid_weight_scores(tuned, dense["tuned"], bm25, ids, pool)
        fused = fuse(dense["tuned"].search(embed(tuned, queries), pool), bm25.search(queries, pool), weight, depth)
        metrics["hybrid"] = rank_metrics(positions_to_ids(fused, ids), relevant, ks)
        metrics |= {
            "hybrid_weight": weight,
            "hybrid_weight_validation": weight_scores,
            "passage_words": cfg.passage_words,
            "improved": is_improved(metrics["before"], metrics["after"]),
            "n_queries": len(queries),
            "n_chunks": n,
            "eval_set": "held-out synthetic questions (by chunk)",
            "similarity": similarity_shift(top1["before"], top1["after"]),
            "per_theme": per_theme_hits(ranked, relevant, {c.id: c.themes for c in chunks}),
        }
        # A RAG app serves the tuned model's index: every unit row, and BM25 beside it for the hybrid.
        dense["tuned"].save(self.path("index"))
        bm25.save(self.path("index") / "bm25")
        from .retrieval import save_base_vectors, write_settings

        save_base_vectors(self.run_dir, dense["base"], self._base_vectors_about(texts))

        dense_key = "after_passages" if cfg.passage_words else "after"
        mode = "hybrid" if is_improved(metrics[dense_key], metrics["hybrid"]) else "dense"
        metrics["recommended_mode"] = mode
        write_settings(self.path("index"), {"format": FORMAT_VERSION, "passage_words": cfg.passage_words,
                                            "chunk_weight": cfg.chunk_weight, "hybrid_weight": weight, "mode": mode})
        if cfg.matryoshka_dims:
            metrics["dims"] = {
                str(d): {which: evaluate_model(self._model(model), texts, ids, queries, relevant, ks, dim=d)
                         for which, model in (("before", "base"), ("after", "tuned"))}
                for d in sorted(cfg.matryoshka_dims, reverse=True)
            }
        summary = f"hit@5 {metrics['before']['hit@5']:.3f} -> {metrics['after']['hit@5']:.3f}"
        if cfg.passage_words:
            summary += f" ({metrics['after_passages']['hit@5']:.3f} with passages)"
        summary += f", BM25 {metrics['bm25']['hit@5']:.3f}, hybrid {metrics['hybrid']['hit@5']:.3f}"
        if self.path("labelled_eval.jsonl").exists():
            from .similarity import evaluate_pairs

            held_pairs = read_jsonl(self.path("labelled_eval.jsonl"), LabelledPair)
            pb, pa = evaluate_pairs(self._model("base"), held_pairs), evaluate_pairs(tuned, held_pairs)
            metrics["pairs"] = {"before": pb, "after": pa, "n_pairs": len(held_pairs)}
            # A mixed run must not trade one skill for the other.
            metrics["improved"] = metrics["improved"] and pa["spearman"] > pb["spearman"]
            summary += f"; labelled Spearman {pb['spearman']:.3f} -> {pa['spearman']:.3f}"
        write_json(self.path("metrics.json"), metrics)
        return {"summary": summary}

    def _base_vectors_about(self, texts: list[str]) -> dict[str, Any]:
        """What the saved base index was built from; search.load_retriever rebuilds it when any of it differs."""
        from .models import resolve_base_model
        from .retrieval import texts_digest

        return {"format": FORMAT_VERSION, "base_model": resolve_base_model(self.cfg.base_model),
                "max_seq_length": int(self._model("base").max_seq_length), "passage_words": self.cfg.passage_words,
                "texts": texts_digest(texts)}

    def _hybrid_weight_scores(self, model: Any, dense: Any, bm25: Any, ids: list[str], pool: int) -> dict[str, float]:
        """MRR@10 of the validation questions over all chunks at each dense share of the
        hybrid score: what they would choose, for the record (they favour BM25)."""
        from .evaluate import MRR_AT, rank_metrics
        from .retrieval import HYBRID_WEIGHTS, embed, fuse, positions_to_ids

        val = read_jsonl(self.path("pairs_val.jsonl"), Pair)
        if not val:
            return {}
        queries = [p.query for p in val]
        d, b = dense.search(embed(model, queries), pool), bm25.search(queries, pool)
        return {str(w): round(rank_metrics(positions_to_ids(fuse(d, b, w, MRR_AT), ids), [p.chunk_id for p in val],
                                           (5,))[f"mrr@{MRR_AT}"], 4) for w in HYBRID_WEIGHTS}

    def _summary(self, extract: dict, chunk: dict, theme: dict, generate: dict, split: dict, train: dict) -> dict[str, Any]:
        from .card import card_widget, guess_language

        themes = ", ".join(f"{t} ({n})" for t, n in sorted(theme["per_theme"].items(), key=lambda x: -x[1]) if n)
        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        return {
            # Folder names only: a card or report never shows where the user keeps their files.
            "config": self.cfg.to_dict() | {"docs": Path(self.cfg.docs).name, "out": Path(self.cfg.out).name,
                                            "out_as_given": "" if Path(self.cfg.out).is_absolute() else
                                            Path(self.cfg.out).as_posix()},
            "language": guess_language([c.text for c in chunks[:200]]),
            "widget": card_widget(chunks, read_jsonl(self.path("pairs_eval.jsonl"), Pair)),
            "files": extract["files"],
            "n_pages": extract["n_pages"],
            "n_chunks": chunk["n_chunks"],
            "max_seq_length": chunk["max_seq_length"],
            "themes": (themes or "none") + f"; {theme['unthemed']} chunks unthemed",
            "n_pairs": generate["n_pairs"],
            "n_train": split["n_train"],
            "n_eval": split["n_eval"],
            "n_eval_chunks": split["n_eval_chunks"],
            "train": {k: train.get(k) for k in ("steps", "device", "final_loss", "validation")},
            "n_val": split.get("n_val", 0),
            # Which files or pages each extraction skip was, for report.md.
            "skipped_examples": {"extract": extract["skipped"].get("examples", {})},
            "skipped": {
                "extract": extract["skipped"]["counts"],
                "chunk": chunk["skipped"]["counts"],
                "generate": generate["skipped"]["counts"],
            },
        }

    def _save(self, summary: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
        from .card import render_card, render_report
        from .records import atomic_write_text

        model_dir = self.path("model")
        atomic_write_text(model_dir / "README.md", render_card(summary, metrics, self.cfg.push_repo or None))
        # What the card is made of, so that `ragtune push` can render it again with the real repo id.
        write_json(self.path("card.json"), {"summary": summary, "metrics": metrics})
        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        write_jsonl(self.path("index") / "chunks.jsonl", chunks, Chunk)
        atomic_write_text(self.path("report.md"), render_report(summary, metrics))
        from .plots import write_report_html

        write_report_html(self.run_dir, summary, metrics)
        return {"summary": f"model, card, index and report in {self.run_dir}"}

