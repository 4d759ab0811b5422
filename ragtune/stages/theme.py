"""Theme stage: chunks_raw.jsonl -> chunks.jsonl, each chunk tagged by keyword (unthemed ones are kept).

The keywords are the user's --themes FILE, or without one derived from the chunks themselves (recorded in the
manifest, so that a rerun reuses them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..records import Chunk, read_jsonl, write_jsonl
from ..themes import EXAMPLE_THEMES, derive_lexicon, tag_chunks
from .base import OPTIONAL, Run, Stage, StageResult


@dataclass(kw_only=True)
class ThemeResult(StageResult):
    per_theme: dict[str, int]
    unthemed: int
    lexicon: dict[str, list[str]]
    # Where the themes came from (absent in records from before themes were derived).
    themes_from: str | None = field(default=None, metadata=OPTIONAL)
    summary: str


def run_stage(run: Run) -> ThemeResult:
    chunks = read_jsonl(run.files.chunks_raw, Chunk)
    lexicon = run.lexicon()
    source = "from a themes file" if run.cfg.themes_file else EXAMPLE_THEMES
    if not lexicon:
        lexicon, source = derive_lexicon([c.text for c in chunks]), "derived from the corpus (TF-IDF)"
    result = tag_chunks(chunks, lexicon)
    write_jsonl(run.files.chunks, result.chunks, Chunk)
    themed = len(result.chunks) - result.unthemed
    return ThemeResult(
        per_theme=result.per_theme,
        unthemed=result.unthemed,
        lexicon=lexicon,
        themes_from=source,
        summary=f"{themed} themed, {result.unthemed} unthemed (kept); themes {source}",
    )


# themes_file is keyed as the lexicon it loads; without one as {}, the derived themes then follow from the chunks.
STAGE = Stage(
    "theme", ("themes_file",), lambda files: [files.chunks], lambda run, records: run_stage(run), result=ThemeResult
)
