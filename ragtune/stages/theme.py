"""Theme stage: chunks_raw.jsonl -> chunks.jsonl, each chunk tagged by keyword (unthemed ones are kept)."""

from __future__ import annotations

from typing import Any

from ..records import Chunk, read_jsonl, write_jsonl
from ..themes import tag_chunks
from .base import Run, Stage


def run_stage(run: Run) -> dict[str, Any]:
    result = tag_chunks(read_jsonl(run.files.chunks_raw, Chunk), run.lexicon())
    write_jsonl(run.files.chunks, result.chunks, Chunk)
    return {
        "per_theme": result.per_theme,
        "unthemed": result.unthemed,
        "summary": f"{len(result.chunks) - result.unthemed} themed, {result.unthemed} unthemed (kept)",
    }


STAGE = Stage("theme", ("themes_file",), lambda files: [files.chunks], lambda run, records: run_stage(run))
