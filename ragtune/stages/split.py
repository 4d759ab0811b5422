"""Split stage: pairs.jsonl -> pairs_train / pairs_val / pairs_test / pairs_lexical.jsonl, split by chunk.

The round-trip filter (BM25 must rank a question's chunk in its top K) runs here, on the
training side only. Held-out and validation questions pass no retriever's filter, so the
run's own table can show BM25 losing as well as winning, and so can what validation picks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ..config import LLM_GENERATORS
from ..errors import NotEnoughDataError
from ..generators import OfflineGenerator
from ..generators.filters import drop_round_trip_failures, filter_pairs
from ..generators.lexical import lexical_pairs
from ..names import upgrade_counts
from ..records import Chunk, Pair, SkipCounter, read_jsonl, write_jsonl
from ..runfiles import SPLIT_SIDES
from ..text import unspaced_share
from .base import Run, Stage, StageResult


@dataclass(kw_only=True)
class SplitResult(StageResult):
    n_train: int
    n_val: int
    n_test: int
    n_test_chunks: int
    n_lexical: int
    # Training questions the round trip dropped (absent in records from before it ran here).
    skipped: dict[str, Any]
    summary: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "SplitResult":
        # Records of ragtune 0.3 and earlier name the held-out counts n_eval.
        return super().from_record(upgrade_counts(record))


def run_stage(run: Run) -> SplitResult:
    pairs = read_jsonl(run.files.pairs, Pair)
    chunks = read_jsonl(run.files.chunks, Chunk)
    train, held = split_by_chunk(pairs, run.cfg.eval_fraction, run.cfg.seed, run.cfg.eval_max_chunks)
    _need_training_chunks(run, train, held, pairs, chunks)
    val: list[Pair] = []
    if run.cfg.val_fraction:
        # Validation chunks come out of the training side, never the held-out one.
        rest, val = split_by_chunk(
            train, run.cfg.val_fraction / (1 - run.cfg.eval_fraction), run.cfg.seed + 1, run.cfg.val_max_chunks
        )
        if len({p.chunk_id for p in val}) >= 3 and len({p.chunk_id for p in rest}) >= 8:
            train = rest
            val += other_style_questions(run, {p.chunk_id for p in val})
        else:
            val = []
    dropped = SkipCounter()
    # The template baseline skips the round trip: its questions repeat across chunks by design.
    if run.cfg.round_trip_k and run.cfg.generator != "template":
        train = drop_round_trip_failures(train, chunks, run.cfg.round_trip_k, dropped)
        _need_training_chunks(run, train, held, pairs, chunks)
    # BM25-labelled pseudo-queries, from training chunks only and labelled with training chunks only.
    lexical = lexical_pairs(
        chunks, {p.chunk_id for p in train}, run.cfg.lexical_per_chunk, run.cfg.seed, run.cfg.lexical_remove
    )
    write_jsonl(run.files.split("train"), train, Pair)
    write_jsonl(run.files.split("val"), val, Pair)
    write_jsonl(run.files.split("test"), held, Pair)
    write_jsonl(run.files.split("lexical"), lexical, Pair)
    n_test_chunks = len({p.chunk_id for p in held})
    filtered = f"; {dropped.total()} training questions failed the round trip" if dropped.total() else ""
    return SplitResult(
        n_train=len(train),
        n_val=len(val),
        n_test=len(held),
        n_test_chunks=n_test_chunks,
        n_lexical=len(lexical),
        skipped=dropped.to_dict(),
        summary=f"{len(train)} train / {len(val)} validation / {len(held)} held-out questions "
        f"({n_test_chunks} held-out chunks); {len(lexical)} BM25-labelled spans{filtered}",
    )


def _need_training_chunks(
    run: Run, train: list[Pair], held: list[Pair], pairs: list[Pair], chunks: list[Chunk]
) -> None:
    """Refuse a split that leaves too little to train on or nothing to hold out."""
    if len({p.chunk_id for p in train}) >= 8 and held:
        return
    n_chunks = len(chunks)
    why = (
        f"add documents or lower --chunk-tokens (there are {n_chunks} chunks)"
        if n_chunks < 10
        else f"the question filters left questions for only a few of the {n_chunks} chunks; "
        "see the generate and split stages' drop counts in work/manifest.json"
    )
    share = unspaced_share([c.text for c in chunks])
    if n_chunks >= 10 and run.cfg.generator not in LLM_GENERATORS and share > 0.5:
        why = (
            f"the {run.cfg.generator} generator needs text with spaces between words, and "
            f"{share:.0%} of this text is Chinese, Japanese, Korean or Thai script without them; use "
            "--generator openai with a model that writes questions in the documents' language"
        )
    raise NotEnoughDataError(
        f"only {len({p.chunk_id for p in pairs})} chunks have questions; ragtune needs at least 10 "
        f"(roughly 3,000 words of text) to train and hold some out: {why}"
    )


def other_style_questions(run: Run, chunk_ids: set[str]) -> list[Pair]:
    """For an LLM run, the offline generator's questions on the validation
    chunks: validating on a second style of question keeps the checkpoint and
    the mix from rewarding a model that only learned the LLM's phrasing."""
    if run.cfg.generator not in LLM_GENERATORS:
        return []
    chunks = read_jsonl(run.files.chunks, Chunk)
    made = OfflineGenerator(run.cfg.questions_per_chunk).generate(chunks, random.Random(run.cfg.seed))
    mine = [p for p in made if p.chunk_id in chunk_ids]
    return filter_pairs(mine, {c.id: c for c in chunks}).pairs


def split_by_chunk(
    pairs: list[Pair], eval_fraction: float, seed: int, max_chunks: int | None = None
) -> tuple[list[Pair], list[Pair]]:
    """Hold out all questions of a seeded random subset of chunks: `eval_fraction` of
    them, but never more than `max_chunks`.

    No chunk has questions on both sides, so evaluation never rewards
    memorising a training chunk.
    """
    chunk_ids = sorted({p.chunk_id for p in pairs})
    rng = random.Random(seed)
    rng.shuffle(chunk_ids)
    n_test = max(1, round(len(chunk_ids) * eval_fraction)) if len(chunk_ids) > 1 else 0
    if max_chunks is not None:
        n_test = min(n_test, max_chunks)
    held = set(chunk_ids[:n_test])
    train = [p for p in pairs if p.chunk_id not in held]
    test = [p for p in pairs if p.chunk_id in held]
    return train, test


STAGE = Stage(
    "split",
    (
        "round_trip_k",
        "eval_fraction",
        "val_fraction",
        "eval_max_chunks",
        "val_max_chunks",
        "lexical_per_chunk",
        "lexical_remove",
    ),
    lambda files: [files.split(side) for side in SPLIT_SIDES],
    lambda run, records: run_stage(run),
    result=SplitResult,
)
