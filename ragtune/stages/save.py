"""Save stage: the model card, card.json, report.md / report.html and index/chunks.jsonl."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..card import card_widget, framework_versions, guess_language, model_details, render_card, render_report
from ..fileio import atomic_write_text, read_json, write_json
from ..names import upgrade_metrics
from ..plots import write_report_html
from ..records import Chunk, Pair, read_jsonl, write_jsonl
from ..report import report_extras
from ..rundir import Manifest
from .base import Run, Stage, StageResult
from .chunk import ChunkResult
from .extract import ExtractResult
from .generate import GenerateResult
from .split import SplitResult
from .theme import ThemeResult
from .train import TrainResult

# The stages whose records the summary shows.
RECORDS_SHOWN = ("extract", "chunk", "theme", "generate", "split", "train")


@dataclass
class SaveResult(StageResult):
    summary: str


def summary(
    run: Run,
    extract: ExtractResult,
    chunk: ChunkResult,
    theme: ThemeResult,
    generate: GenerateResult,
    split: SplitResult,
    train: TrainResult,
) -> dict[str, Any]:
    """What the card and the report are made of, from the stages' manifest records."""
    themes = ", ".join(f"{t} ({n})" for t, n in sorted(theme.per_theme.items(), key=lambda x: -x[1]) if n)
    chunks = read_jsonl(run.files.chunks, Chunk)
    return {
        # Folder names only: a card or report never shows where the user keeps their files.
        "config": run.cfg.to_dict()
        | {
            "docs": Path(run.cfg.docs).name,
            "out": Path(run.cfg.out).name,
            "out_as_given": "" if Path(run.cfg.out).is_absolute() else Path(run.cfg.out).as_posix(),
        },
        "language": guess_language([c.text for c in chunks[:200]]),
        "widget": card_widget(chunks, read_jsonl(run.files.split("test"), Pair)),
        "files": extract.files,
        "n_pages": extract.n_pages,
        "n_chunks": chunk.n_chunks,
        # What the saved model reads (apps chunk longer than the run did); the run's own figures read
        # its chunks at the chunk stage's length. Older manifests have only that one.
        "max_seq_length": train.saved_max_seq_length or chunk.max_seq_length,
        "long_windows": train.long_windows or 0,
        **model_details(run.files.model),  # dimensions, similarity, pooling
        "versions": framework_versions(),
        "themes": (themes or "none")
        + f"; {theme.unthemed} chunks unthemed"
        + (f"; {theme.themes_from}" if theme.themes_from is not None else ""),
        "n_pairs": generate.n_pairs,
        "n_train": split.n_train,
        "n_test": split.n_test,
        "n_test_chunks": split.n_test_chunks,
        "train": {
            "steps": train.steps,
            "device": train.device,
            "final_loss": train.final_loss,
            "validation": train.validation,
        },
        "n_val": split.n_val or 0,
        # Which files or pages each extraction skip was, for report.md.
        "skipped_examples": {"extract": extract.skipped.get("examples", {})},
        "skipped": {
            "extract": extract.skipped["counts"],
            "chunk": chunk.skipped["counts"],
            "generate": generate.skipped["counts"],
            # Older manifests have no split skips: the round trip ran in the generate stage then.
            "split": (split.skipped or {}).get("counts", {}),
        },
    }


def run_stage(run: Run, summary: dict[str, Any], metrics: dict[str, Any], seconds: float = 0.0) -> SaveResult:
    atomic_write_text(run.files.model_card, render_card(summary, metrics, run.cfg.push_repo or None))
    # What the card is made of, so that `ragtune push` can render it again with the real repo id.
    write_json(run.files.card_json, {"summary": summary, "metrics": metrics})
    chunks = read_jsonl(run.files.chunks, Chunk)
    write_jsonl(run.files.index_chunks, chunks, Chunk)
    # Facts, samples and a sample search for the report; the search reads index/, complete from here on.
    extras = report_extras(
        run.run_dir, summary, chunks, read_jsonl(run.files.split("test"), Pair), seconds, run.cfg.device
    )
    atomic_write_text(run.files.report_md, render_report(summary, metrics, extras))
    write_report_html(run.run_dir, summary, metrics, extras)
    return SaveResult(f"model, card, index and report in {run.run_dir}")


def stage_seconds(run: Run) -> float:
    """The time the stages before this one took, as the manifest recorded it (reused stages count their first run;
    a stage's record in `records` has no time when it ran in this call)."""
    stages = Manifest(run.run_dir).data["stages"]
    return sum(float(r.get("seconds") or 0) for name, r in stages.items() if name != "save")


# Keyed by the summary of the stages before it, nothing of its own. The card may be edited by hand before a push.
STAGE = Stage(
    "save",
    (),
    lambda files: [files.index_chunks, files.card_json, files.report_html, files.retrievers_plot],
    lambda run, records: run_stage(
        run, records["save"], upgrade_metrics(read_json(run.files.metrics)), stage_seconds(run)
    ),
    edited=lambda files: [files.model_card],
    inputs=lambda run, records: summary(run, **{n: records[n] for n in RECORDS_SHOWN}),
    result=SaveResult,
)
