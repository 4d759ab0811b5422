"""Extract stage: the folder's documents -> pages.jsonl (text and page numbers)."""

from __future__ import annotations

from typing import Any

from ..extract import ExtractError, count_line, describe_skips, extract_folder
from ..records import Page, write_jsonl
from .base import Run, Stage


def run_stage(run: Run) -> dict[str, Any]:
    result = extract_folder(
        run.cfg.docs, run.cfg.extractor, run.cfg.include, run.cfg.exclude, progress=run.progress_for("extract")
    )
    if not result.pages:
        # Every file was skipped: say why now, not as "too few chunks" three stages later.
        why = "; ".join(describe_skips(result.skipped.to_dict()))
        raise ExtractError(f"no text to train on in {run.cfg.docs}: {why}")
    write_jsonl(run.files.pages, result.pages, Page)
    return {
        "files": result.files,
        "n_pages": len(result.pages),
        "skipped": result.skipped.to_dict(),
        "summary": count_line(len(result.files), len(result.pages), result.skipped.to_dict()),
    }


STAGE = Stage(
    "extract",
    ("docs", "extractor", "include", "exclude"),
    lambda files: [files.pages],
    lambda run, records: run_stage(run),
    input_skips=True,
)
