"""Extract stage: the folder's documents -> pages.jsonl (text and page numbers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..extract import ExtractError, count_line, describe_skips, extract_folder
from ..records import Page, write_jsonl
from .base import UNRECORDED, Run, Stage, StageResult


@dataclass
class ExtractResult(StageResult):
    files: list[str]
    n_pages: int
    # SkipCounter.to_dict() of the files, pages and lines extraction skipped.
    skipped: dict[str, Any]
    summary: str
    # Size and digest of each document read (Extraction.read), for the stage's key; empty when reused.
    read: dict[Path, tuple[int, str]] = field(default_factory=dict, metadata=UNRECORDED)


def run_stage(run: Run) -> ExtractResult:
    cfg = run.cfg
    result = extract_folder(
        cfg.docs, cfg.extractor, cfg.include, cfg.exclude, progress=run.progress_for("extract"), listing=run.listing
    )
    if not result.pages:
        # Every file was skipped: say why now, not as "too few chunks" three stages later.
        why = "; ".join(describe_skips(result.skipped.to_dict()))
        raise ExtractError(f"no text to train on in {cfg.docs}: {why}")
    write_jsonl(run.files.pages, result.pages, Page)
    skipped = result.skipped.to_dict()
    summary = count_line(len(result.files), len(result.pages), skipped)
    return ExtractResult(result.files, len(result.pages), skipped, summary, result.read)


STAGE = Stage(
    "extract",
    ("docs", "extractor", "include", "exclude"),
    lambda files: [files.pages],
    lambda run, records: run_stage(run),
    input_skips=True,
    result=ExtractResult,
)
