"""Generate stage: chunks.jsonl -> pairs.jsonl, questions written per chunk and filtered (drops are counted)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from ..generators import make_generator
from ..generators.filters import drop_near_duplicates, filter_pairs
from ..models import word_vocabulary
from ..names import question_kind
from ..records import Chunk, Pair, SkipCounter, read_jsonl, write_jsonl
from ..retrieval import embed
from .base import OPTIONAL, Run, Stage, StageResult


@dataclass(kw_only=True)
class GenerateResult(StageResult):
    generator: str | None = field(default=None, metadata=OPTIONAL)
    # An LLM generator's requests, tokens and unusable lines (LLMStats.to_dict() and more); None offline.
    llm: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    n_generated: int
    n_pairs: int
    # Questions kept, by kind (ragtune.names.QUESTION_KINDS).
    per_kind: dict[str, int]
    skipped: dict[str, Any]
    summary: str


def run_stage(run: Run) -> GenerateResult:
    cfg = run.cfg
    chunks = read_jsonl(run.files.chunks, Chunk)
    # LLM generators keep every answer in llm_cache/, so a rerun asks only for what is missing.
    gen = make_generator(
        cfg.generator,
        cfg.questions_per_chunk,
        base_url=cfg.llm_base_url,
        model=cfg.llm_model,
        concurrency=cfg.llm_concurrency,
        timeout=cfg.llm_timeout,
        retries=cfg.llm_retries,
        seed=cfg.seed,
        cache_dir=run.files.llm_cache,
        device=cfg.device,
        vocabulary=word_vocabulary(run.model("base").tokenizer),
    )
    raw = gen.generate(chunks, random.Random(cfg.seed))
    result = filter_pairs(raw, {c.id: c for c in chunks}, across_chunks=gen.name != "template")
    result.pairs = _drop_near_duplicates(run, result.pairs, result.dropped)
    write_jsonl(run.files.pairs, result.pairs, Pair)
    kinds: dict[str, int] = {}
    for p in result.pairs:
        kind = question_kind(p.kind, p.generator)
        kinds[kind] = kinds.get(kind, 0) + 1
    skipped = result.dropped
    summary = f"{len(result.pairs)} questions kept of {len(raw)} ({result.dropped.total()} dropped)"
    # By the kind names pairs.jsonl and the docs use (ragtune.names.QUESTION_KINDS).
    summary += "; " * bool(kinds) + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
    llm = None
    stats = gen.stats  # LLM generators also count requests, tokens and unusable lines
    if stats is not None:
        llm_dropped = gen.dropped
        skipped = SkipCounter({**llm_dropped.counts, **skipped.counts}, {**llm_dropped.examples, **skipped.examples})
        llm = stats.to_dict() | {"model": cfg.llm_model, "unusable_lines": llm_dropped.total()}
        summary += f"; LLM: {llm_dropped.total()} unusable lines, {stats.summary()}"
        if stats.failed_chunks:
            summary += " (to retry the failed chunks, delete pairs.jsonl and rerun)"
    return GenerateResult(
        generator=gen.name,
        llm=llm,
        n_generated=len(raw),
        n_pairs=len(result.pairs),
        per_kind=kinds,
        skipped=skipped.to_dict(),
        summary=summary,
    )


def _drop_near_duplicates(run: Run, pairs: list[Pair], dropped: SkipCounter) -> list[Pair]:
    """The near-duplicate filter (counted in `dropped`). The round-trip filter is not here: it
    runs in the split stage, on the training side only, so that no held-out or validation
    question has first passed BM25 (which the run then compares against)."""
    if run.cfg.near_duplicate < 1.0 and pairs:
        vectors = embed(run.model("base"), [p.query for p in pairs])
        pairs = drop_near_duplicates(pairs, vectors, run.cfg.near_duplicate, dropped)
    return pairs


# The llm_* settings are keyed only with an LLM generator (pipeline.LLM_SETTINGS).
STAGE = Stage(
    "generate",
    (
        "generator",
        "questions_per_chunk",
        "seed",
        "near_duplicate",
        "llm_base_url",
        "llm_model",
        "llm_concurrency",
        "llm_timeout",
        "llm_retries",
    ),
    lambda files: [files.pairs],
    lambda run, records: run_stage(run),
    result=GenerateResult,
)
