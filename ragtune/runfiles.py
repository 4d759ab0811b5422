"""The files of a `ragtune run` directory, each named once, and the check of metrics.json that others read.

The stages, the runner and the commands that read a run (push, search, export) find its files here, so a
renamed file is renamed in one place.

The top of a run folder holds what a user opens (model/, index/, the reports, metrics.json, config.json,
plots/); everything the stages keep for themselves lies under work/. A run folder from before work/ has
those files at its top: each path falls back to that old place while the new one is missing, so such a
folder still loads, and `move_to_work` (run by the next `ragtune run` into it) moves them once. The same
holds for the held-out test questions, which a run folder of ragtune 0.3 and earlier names *_eval.jsonl
(`OLD_NAMES`): read there while the new name is missing, renamed once by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fileio import read_json
from .names import BASE, FINE_TUNED, upgrade_metrics
from .records import RunDirError

# The folder of a run that holds what the stages keep for themselves.
WORK = "work"
# What lay at the top of a run folder before work/ (the names under work/ are the same): a file or folder
# named so, or (the split and --pairs sides) starting so and ending in .jsonl.
OLD_TOP_NAMES = (
    "manifest.json",
    "run.lock",
    "pages.jsonl",
    "chunks_raw.jsonl",
    "chunks.jsonl",
    "llm_cache",
    "pairs.jsonl",
    "checkpoints",
    "model.tmp",
    "card.json",
    "embeddings",
)
OLD_TOP_PREFIXES = ("pairs_", "labelled_")
# Files under work/ that an older ragtune named otherwise: new name -> old name.
OLD_NAMES = {"pairs_test.jsonl": "pairs_eval.jsonl", "labelled_test.jsonl": "labelled_eval.jsonl"}


def is_old_top_name(name: str) -> bool:
    """Whether `name` at the top of a run folder is a file that now lies under work/.

    >>> is_old_top_name("pairs_eval.jsonl"), is_old_top_name("metrics.json")
    (True, False)
    """
    return name in OLD_TOP_NAMES or (name.startswith(OLD_TOP_PREFIXES) and name.endswith(".jsonl"))


@dataclass(frozen=True)
class RunFiles:
    """Where each file of a run directory is, in the order the stages write them."""

    root: Path

    def _work(self, name: str) -> Path:
        """work/NAME, or while it is missing the first that exists of NAME at the top of a run folder from
        before work/ and the old name of NAME (`OLD_NAMES`) in either place."""
        names = (name, OLD_NAMES[name]) if name in OLD_NAMES else (name,)
        for path in (self.root / folder / n for n in names for folder in (WORK, ".")):
            if path.exists() or path.is_symlink():
                return path
        return self.root / WORK / name

    @property
    def work(self) -> Path:
        return self.root / WORK

    @property
    def manifest(self) -> Path:
        return self._work("manifest.json")

    @property
    def lock(self) -> Path:
        return self.root / WORK / "run.lock"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def plan(self) -> Path:
        """The run's plan (budget.Plan), reused by a rerun with the same chunks and settings."""
        return self.root / WORK / "plan.json"

    @property
    def pages(self) -> Path:
        return self._work("pages.jsonl")

    @property
    def chunks_raw(self) -> Path:
        return self._work("chunks_raw.jsonl")

    @property
    def chunks(self) -> Path:
        return self._work("chunks.jsonl")

    @property
    def llm_cache(self) -> Path:
        return self._work("llm_cache")

    @property
    def pairs(self) -> Path:
        return self._work("pairs.jsonl")

    def split(self, side: str) -> Path:
        """The questions of one side of the split: "train", "val", "test" (held out) or "lexical"."""
        return self._work(f"pairs_{side}.jsonl")

    def labelled(self, side: str) -> Path:
        """One side of the --pairs files' split: "train" or "test" (held out)."""
        return self._work(f"labelled_{side}.jsonl")

    @property
    def checkpoints(self) -> Path:
        return self._work("checkpoints")

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def model_tmp(self) -> Path:
        return self._work("model.tmp")

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
        return self._work("card.json")

    @property
    def base_vectors(self) -> Path:
        """The base model's index of the evaluated units, for `search --compare`."""
        return self._work("embeddings") / "base"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def retrievers_plot(self) -> Path:
        return self.root / "plots" / "retrievers.png"


SPLIT_SIDES = ("train", "val", "test", "lexical")

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
