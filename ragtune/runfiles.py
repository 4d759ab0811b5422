"""The files of a `ragtune run` directory, each named once, and the check of metrics.json that others read.

The stages, the runner and the commands that read a run (push, search, export) find its files here, so a
renamed file is renamed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fileio import read_json
from .names import BASE, FINE_TUNED, upgrade_metrics
from .records import RunDirError


@dataclass(frozen=True)
class RunFiles:
    """Where each file of a run directory is, in the order the stages write them."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def pages(self) -> Path:
        return self.root / "pages.jsonl"

    @property
    def chunks_raw(self) -> Path:
        return self.root / "chunks_raw.jsonl"

    @property
    def chunks(self) -> Path:
        return self.root / "chunks.jsonl"

    @property
    def llm_cache(self) -> Path:
        return self.root / "llm_cache"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs.jsonl"

    def split(self, side: str) -> Path:
        """The questions of one side of the split: "train", "val", "eval" or "lexical"."""
        return self.root / f"pairs_{side}.jsonl"

    def labelled(self, side: str) -> Path:
        """One side of the --pairs files' split: "train" or "eval"."""
        return self.root / f"labelled_{side}.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def model_tmp(self) -> Path:
        return self.root / "model.tmp"

    @property
    def model_card(self) -> Path:
        return self.model / "README.md"

    @property
    def index(self) -> Path:
        return self.root / "index"

    @property
    def index_chunks(self) -> Path:
        return self.index / "chunks.jsonl"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def card_json(self) -> Path:
        return self.root / "card.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def retrievers_plot(self) -> Path:
        return self.root / "plots" / "retrievers.png"


SPLIT_SIDES = ("train", "val", "eval", "lexical")

# The figures of metrics.json that the summary, card, report and CLI read.
METRIC_TABLES = (BASE, FINE_TUNED, "bm25", "hybrid")


def metrics_problem(
    path: Path, tables: tuple[str, ...] = METRIC_TABLES, fields: tuple[str, ...] = ("improved", "n_queries")
) -> str | None:
    """What is wrong with a run's metrics.json (a sentence starting with its name), or None.

    It must hold a table of figures for each of `tables`, and each of `fields` ("improved" a bool, others ints);
    the names of an older ragtune (`before`/`after`) count as the new ones.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "metrics.json"; _ = p.write_text("{}")
    >>> metrics_problem(p)
    'metrics.json is damaged (no "base" figures)'
    """
    try:
        metrics = read_json(path)
    except RunDirError as e:
        return f"{path.name} is damaged ({str(e).removeprefix(f'{path} is ')})"
    if not isinstance(metrics, dict):
        return f"{path.name} is damaged (not a JSON object)"
    metrics = upgrade_metrics(metrics)
    for table in tables:
        figures = metrics.get(table)
        if (
            not isinstance(figures, dict)
            or not figures
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in figures.values())
        ):
            return f'{path.name} is damaged (no "{table}" figures)'
    for name in fields:
        value = metrics.get(name)
        if (
            not isinstance(value, bool)
            if name == "improved"
            else (not isinstance(value, int) or isinstance(value, bool))
        ):
            return f'{path.name} is damaged (no "{name}")'
    return None
