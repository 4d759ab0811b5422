"""Runs the stages in order, keeping all state in the run directory.

Each stage has a key: a hash of the previous stage's key, the stage's own
settings and ragtune's version. A rerun skips a stage whose key matches the
manifest and whose outputs exist; when a setting changes, that stage and
everything after it run again.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from . import __version__
from .config import Config
from .records import (Chunk, Counter, LabelledPair, Page, Pair, RunDirError, read_json, read_jsonl, write_json,
                      write_jsonl)

MANIFEST_VERSION = 1
STAGES = ("extract", "chunk", "theme", "generate", "split", "train", "evaluate", "save")


class Reporter(Protocol):
    """How the pipeline tells the caller what it is doing (the CLI prints; tests may record)."""

    def stage_start(self, name: str, index: int, total: int) -> None: ...
    def stage_progress(self, name: str, done: int, total: int) -> None: ...
    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None: ...


class SilentReporter:
    def stage_start(self, name: str, index: int, total: int) -> None:
        pass

    def stage_progress(self, name: str, done: int, total: int) -> None:
        pass

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        pass


class NotEnoughDataError(Exception):
    """Too little text to train on; the message says how much is needed."""


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


def _docs_fingerprint(docs: Path) -> list[tuple[str, int, str]]:
    from .extract import list_documents

    supported, other = list_documents(docs)
    out = []
    for p in supported + other:
        out.append((p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()[:16]))
    return out


class Manifest:
    """run_dir/manifest.json: format version, ragtune version, and per-stage keys and timings."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "manifest.json"
        self.data: dict[str, Any] = {"ragtune_manifest": MANIFEST_VERSION, "ragtune_version": __version__, "stages": {}}
        if self.path.exists():
            old = read_json(self.path)
            if not isinstance(old, dict) or old.get("ragtune_manifest") != MANIFEST_VERSION:
                raise RunDirError(
                    f"{run_dir} was made by an incompatible ragtune version "
                    f"({old.get('ragtune_version', 'unknown') if isinstance(old, dict) else 'unknown'}); "
                    "use a new --out directory or delete this one"
                )
            self.data["stages"] = old.get("stages", {})

    def is_current(self, stage: str, key: str, outputs: list[Path]) -> bool:
        entry = self.data["stages"].get(stage)
        return bool(entry and entry.get("key") == key and all(p.exists() for p in outputs))

    def record(self, stage: str, key: str, seconds: float, info: dict[str, Any]) -> None:
        self.data["stages"][stage] = {"key": key, "seconds": round(seconds, 3), **info}
        self.data["ragtune_version"] = __version__
        write_json(self.path, self.data)

    def info(self, stage: str) -> dict[str, Any]:
        return self.data["stages"].get(stage, {})


class Pipeline:
    """One run of ragtune over a folder of documents."""

    def __init__(self, cfg: Config, reporter: Reporter | None = None) -> None:
        self.cfg = cfg
        self.run_dir = cfg.out
        self.reporter = reporter or SilentReporter()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(self.run_dir)
        self._models: dict[str, Any] = {}

    # -- helpers -------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.run_dir / name

    def _model(self, which: str) -> Any:
        """The base model or the fine-tuned one, loaded once per run."""
        from .models import load_model, pick_device, resolve_base_model

        if which not in self._models:
            source = resolve_base_model(self.cfg.base_model) if which == "base" else str(self.path("model"))
            self._models[which] = load_model(source, pick_device(self.cfg.device))
        return self._models[which]

    def _stage(
        self, index: int, name: str, key: str, outputs: list[Path], work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        self.reporter.stage_start(name, index, len(STAGES))
        # Once a stage has run in this run, every later stage is stale too, even
        # if its key matches (e.g. a deleted model was retrained).
        if not self.timings and self.manifest.is_current(name, key, outputs):
            info = self.manifest.info(name)
            self.reporter.stage_end(name, info.get("summary", ""), 0.0, cached=True)
            self._cached.append(name)
            return info
        start = time.perf_counter()
        info = work()
        seconds = time.perf_counter() - start
        self.manifest.record(name, key, seconds, info)
        self.timings[name] = seconds
        self.reporter.stage_end(name, info.get("summary", ""), seconds, cached=False)
        return info

    # -- the run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        cfg = self.cfg
        self.timings: dict[str, float] = {}
        self._cached: list[str] = []
        write_json(self.path("config.json"), cfg.to_dict())

        key = _hash("extract", __version__, cfg.extractor, _docs_fingerprint(cfg.docs))
        extract = self._stage(1, "extract", key, [self.path("pages.jsonl")], self._extract)
        key = _hash(key, "chunk", cfg.base_model, cfg.chunk_tokens, cfg.chunk_overlap, cfg.min_chunk_tokens)
        chunk = self._stage(2, "chunk", key, [self.path("chunks_raw.jsonl")], self._chunk)
        key = _hash(key, "theme", self._lexicon())
        theme = self._stage(3, "theme", key, [self.path("chunks.jsonl")], self._theme)
        key = _hash(key, "generate", cfg.generator, cfg.questions_per_chunk, cfg.seed)
        generate = self._stage(4, "generate", key, [self.path("pairs.jsonl")], self._generate)
        key = _hash(key, "split", cfg.eval_fraction, cfg.seed)
        split = self._stage(5, "split", key, [self.path("pairs_train.jsonl"), self.path("pairs_eval.jsonl")], self._split)
        train_params = (cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.warmup_ratio, cfg.weight_decay, cfg.max_steps,
                        cfg.hard_negatives, cfg.pairs_loss, [_file_digest(f) for f in cfg.pairs_files])
        key = _hash(key, "train", train_params)
        train = self._stage(6, "train", key, [self.path("model") / "config.json"], self._train)
        key = _hash(key, "evaluate", cfg.ks)
        self._stage(7, "evaluate", key, [self.path("metrics.json"), self.path("index") / "index.faiss"], self._evaluate)
        metrics = read_json(self.path("metrics.json"))
        summary = self._summary(extract, chunk, theme, generate, split, train)
        key = _hash(key, "save", summary)
        self._stage(8, "save", key, [self.path("model") / "README.md", self.path("index") / "chunks.jsonl"],
                    lambda: self._save(summary, metrics))
        return RunResult(self.run_dir, metrics, summary, self.timings, self._cached)

    # -- stages --------------------------------------------------------------------------
    def _extract(self) -> dict[str, Any]:
        from .extract import extract_folder

        result = extract_folder(self.cfg.docs, self.cfg.extractor)
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

        model = self._model("base")
        pages = read_jsonl(self.path("pages.jsonl"), Page)
        # Leave room for the [CLS] and [SEP] tokens the model adds.
        max_tokens = int(model.max_seq_length) - 2
        result = chunk_pages(pages, model.tokenizer, self.cfg.chunk_tokens, self.cfg.chunk_overlap, max_tokens,
                             self.cfg.min_chunk_tokens)
        write_jsonl(self.path("chunks_raw.jsonl"), result.chunks, Chunk)
        lengths = sorted(c.n_tokens for c in result.chunks)
        median = lengths[len(lengths) // 2] if lengths else 0
        return {
            "n_chunks": len(result.chunks),
            "max_seq_length": int(model.max_seq_length),
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
        from .synth import filter_pairs, make_generator

        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        gen = make_generator(self.cfg.generator, self.cfg.questions_per_chunk)
        raw = gen.generate(chunks, random.Random(self.cfg.seed))
        result = filter_pairs(raw, {c.id: c for c in chunks}, across_chunks=gen.name != "template")
        write_jsonl(self.path("pairs.jsonl"), result.pairs, Pair)
        kinds: dict[str, int] = {}
        for p in result.pairs:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        return {
            "generator": gen.name,
            "n_generated": len(raw),
            "n_pairs": len(result.pairs),
            "per_kind": kinds,
            "skipped": result.dropped.to_dict(),
            "summary": f"{len(result.pairs)} questions kept of {len(raw)} ({result.dropped.total()} dropped)",
        }

    def _split(self) -> dict[str, Any]:
        from .synth import split_by_chunk

        pairs = read_jsonl(self.path("pairs.jsonl"), Pair)
        train, held = split_by_chunk(pairs, self.cfg.eval_fraction, self.cfg.seed)
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
        write_jsonl(self.path("pairs_train.jsonl"), train, Pair)
        write_jsonl(self.path("pairs_eval.jsonl"), held, Pair)
        n_eval_chunks = len({p.chunk_id for p in held})
        return {
            "n_train": len(train),
            "n_eval": len(held),
            "n_eval_chunks": n_eval_chunks,
            "summary": f"{len(train)} train / {len(held)} held-out questions ({n_eval_chunks} held-out chunks)",
        }

    def _train(self) -> dict[str, Any]:
        from .models import pick_device
        from .train import fine_tune

        chunks = {c.id: c for c in read_jsonl(self.path("chunks.jsonl"), Chunk)}
        pairs = read_jsonl(self.path("pairs_train.jsonl"), Pair)
        model = self._model("base")
        # Train a copy so the base stays available for the "before" numbers.
        import copy

        tuned = copy.deepcopy(model)
        labelled = self._labelled_split()
        negatives = None
        if self.cfg.hard_negatives:
            from .train import mine_hard_negatives

            # Held-out chunks never enter training, not even as negatives.
            held = {p.chunk_id for p in read_jsonl(self.path("pairs_eval.jsonl"), Pair)}
            negatives = mine_hard_negatives(model, pairs, chunks, set(chunks) - held)
        tmp = self.path("model.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        result = fine_tune(
            tuned, pairs, chunks, self.cfg, self.path("checkpoints"), pick_device(self.cfg.device),
            progress=lambda done, total: self.reporter.stage_progress("train", done, total),
            negatives=negatives,
            labelled=labelled,
        )
        tuned.save(str(tmp), safe_serialization=True)
        shutil.rmtree(self.path("model"), ignore_errors=True)
        tmp.replace(self.path("model"))
        shutil.rmtree(self.path("checkpoints"), ignore_errors=True)
        self._models["tuned"] = tuned
        loss = f", final loss {result.final_loss:.3f}" if result.final_loss is not None else ""
        return {
            "steps": result.steps,
            "seconds": round(result.seconds, 1),
            "device": result.device,
            "final_loss": result.final_loss,
            "summary": f"{result.steps} steps on {result.device}{loss}",
        }

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
        from .evaluate import evaluate_bm25, evaluate_model

        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        held = read_jsonl(self.path("pairs_eval.jsonl"), Pair)
        texts, ids = [c.text for c in chunks], [c.id for c in chunks]
        queries, relevant = [p.query for p in held], [p.chunk_id for p in held]
        ks = self.cfg.ks
        before = evaluate_model(self._model("base"), texts, ids, queries, relevant, ks)
        # The tuned model's chunk index is the one a RAG app will use: keep it.
        after = evaluate_model(self._model("tuned"), texts, ids, queries, relevant, ks, self.path("index"))
        bm25 = evaluate_bm25(texts, ids, queries, relevant, ks)
        metrics = {
            "before": before,
            "after": after,
            "bm25": bm25,
            "improved": is_improved(before, after),
            "n_queries": len(queries),
            "n_chunks": len(chunks),
            "eval_set": "held-out synthetic questions (by chunk)",
        }
        summary = f"hit@5 {before['hit@5']:.3f} -> {after['hit@5']:.3f} (BM25 {bm25['hit@5']:.3f})"
        if self.path("labelled_eval.jsonl").exists():
            from .similarity import evaluate_pairs

            held_pairs = read_jsonl(self.path("labelled_eval.jsonl"), LabelledPair)
            pb, pa = evaluate_pairs(self._model("base"), held_pairs), evaluate_pairs(self._model("tuned"), held_pairs)
            metrics["pairs"] = {"before": pb, "after": pa, "n_pairs": len(held_pairs)}
            # A mixed run must not trade one skill for the other.
            metrics["improved"] = metrics["improved"] and pa["spearman"] > pb["spearman"]
            summary += f"; labelled Spearman {pb['spearman']:.3f} -> {pa['spearman']:.3f}"
        write_json(self.path("metrics.json"), metrics)
        return {"summary": summary}

    def _summary(self, extract: dict, chunk: dict, theme: dict, generate: dict, split: dict, train: dict) -> dict[str, Any]:
        themes = ", ".join(f"{t} ({n})" for t, n in sorted(theme["per_theme"].items(), key=lambda x: -x[1]) if n)
        return {
            "config": self.cfg.to_dict() | {"docs": Path(self.cfg.docs).name, "out": Path(self.cfg.out).name},
            "files": extract["files"],
            "n_pages": extract["n_pages"],
            "n_chunks": chunk["n_chunks"],
            "max_seq_length": chunk["max_seq_length"],
            "themes": (themes or "none") + f"; {theme['unthemed']} chunks unthemed",
            "n_pairs": generate["n_pairs"],
            "n_train": split["n_train"],
            "n_eval": split["n_eval"],
            "n_eval_chunks": split["n_eval_chunks"],
            "train": {k: train[k] for k in ("steps", "device", "final_loss")},
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
        chunks = read_jsonl(self.path("chunks.jsonl"), Chunk)
        write_jsonl(self.path("index") / "chunks.jsonl", chunks, Chunk)
        atomic_write_text(self.path("report.md"), render_report(summary, metrics))
        return {"summary": f"model, card, index and report in {self.run_dir}"}


def is_improved(before: dict[str, float], after: dict[str, float]) -> bool:
    """The tuned model must not lose on hit@5 or MRR@10 and must gain on at least one.

    >>> is_improved({"hit@5": .5, "mrr@10": .4}, {"hit@5": .6, "mrr@10": .4})
    True
    >>> is_improved({"hit@5": .5, "mrr@10": .4}, {"hit@5": .6, "mrr@10": .39})
    False
    """
    keys = ("hit@5", "mrr@10")
    return all(after[k] >= before[k] for k in keys) and any(after[k] > before[k] for k in keys)
