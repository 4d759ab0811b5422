"""Chunk stage: pages.jsonl -> chunks_raw.jsonl, sized in the base model's tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..chunk import chunk_pages
from ..models import max_positions, seq_length_for
from ..records import Chunk, Page, read_jsonl, write_jsonl
from .base import Run, Stage, StageResult


@dataclass(kw_only=True)
class ChunkResult(StageResult):
    n_chunks: int
    # The length every model encodes the chunks with (the base model's own, raised to fit the longest).
    max_seq_length: int
    # Chunks the model's own max_seq_length would have cut short.
    longer_than_default: int
    tokens_median: int
    tokens_max: int
    skipped: dict[str, Any]
    summary: str


def run_stage(run: Run) -> ChunkResult:
    model = run.model("base")
    pages = read_jsonl(run.files.pages, Page)
    # Chunks may use all the model's positions, leaving room for the [CLS]
    # and [SEP] tokens the model adds; max_seq_length is then raised to fit.
    default_length = run.default_length("base")
    max_tokens = max_positions(model) - 2
    result = chunk_pages(
        pages, model.tokenizer, run.cfg.chunk_tokens, run.cfg.chunk_overlap, max_tokens, run.cfg.min_chunk_tokens
    )
    write_jsonl(run.files.chunks_raw, result.chunks, Chunk)
    lengths = sorted(c.n_tokens for c in result.chunks)
    median = lengths[len(lengths) // 2] if lengths else 0
    seq_length = seq_length_for(default_length, max_tokens + 2, lengths[-1] if lengths else 0)
    longest = lengths[-1] if lengths else 0
    return ChunkResult(
        n_chunks=len(result.chunks),
        max_seq_length=seq_length,
        longer_than_default=sum(n + 2 > default_length for n in lengths),
        tokens_median=median,
        tokens_max=longest,
        skipped=result.skipped.to_dict(),
        summary=f"{len(result.chunks)} chunks (median {median} tokens, max {longest})",
    )


STAGE = Stage(
    "chunk",
    ("base_model", "chunk_tokens", "chunk_overlap", "min_chunk_tokens"),
    lambda files: [files.chunks_raw],
    lambda run, records: run_stage(run),
    result=ChunkResult,
)
