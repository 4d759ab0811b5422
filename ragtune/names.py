"""One name per idea: the metrics.json keys this version writes, and how the names of older versions map to them.

metrics.json names each retriever's figures like the row of the table the user reads (base, fine-tuned, with
passages, BM25, hybrid; `served` is what the app gets). ragtune 0.3 and earlier wrote `before`/`after`, and
`eval_dataset` for the figures on an external evaluation set and `eval_set` for what the
held-out test questions are; `upgrade_metrics` reads those files as new ones.
"""

from __future__ import annotations

from typing import Any

BASE = "base"
BASE_PASSAGES = "base_passages"
FINE_TUNED = "fine_tuned"
FINE_TUNED_PASSAGES = "fine_tuned_passages"
# The external evaluation set's entry (a LlamaIndex dataset the user brings; never the held-out test questions).
EVALUATION_SET = "evaluation_set"

# Old key -> new key, for the figures of one model (at the top level and inside the entries below).
OLD_FIGURE_KEYS = {
    "before": BASE,
    "after": FINE_TUNED,
    "before_passages": BASE_PASSAGES,
    "after_passages": FINE_TUNED_PASSAGES,
}
OLD_ENTRY_KEYS = {"eval_dataset": EVALUATION_SET, "eval_set": "test_set"}
# Old key -> new key, for the counts of the split stage's manifest record and the save stage's summary (card.json).
OLD_COUNT_KEYS = {"n_eval": "n_test", "n_eval_chunks": "n_test_chunks"}
# Entries that hold one base and one fine-tuned part, and those that hold one such entry per theme or size.
_PAIRED = ("similarity", "pairs", EVALUATION_SET, "general")
_PAIRED_PER = ("per_theme", "dims")


def _renamed(entry: dict[str, Any], old: dict[str, str]) -> dict[str, Any]:
    """`entry` with its old keys renamed; a key this version also wrote wins over its old spelling."""
    return {old.get(k, k): v for k, v in entry.items() if k not in old or old[k] not in entry}


def _per_row(row: Any) -> Any:
    """One row of per_theme or dims with this version's names, also where the figures sit one level down under
    the metric's name ({"n", "hit@5": {"base", "fine_tuned"}})."""
    if not isinstance(row, dict):
        return row
    row = _renamed(row, OLD_FIGURE_KEYS)
    return {k: _renamed(v, OLD_FIGURE_KEYS) if isinstance(v, dict) else v for k, v in row.items()}


def upgrade_metrics(metrics: Any) -> Any:
    """A run's metrics.json (or card.json's copy) with this version's names, whichever version wrote it.

    >>> upgrade_metrics({"before": {"hit@5": .5}, "after": {"hit@5": .6}, "similarity": {"before": {}, "after": {}}})
    {'base': {'hit@5': 0.5}, 'fine_tuned': {'hit@5': 0.6}, 'similarity': {'base': {}, 'fine_tuned': {}}}
    """
    if not isinstance(metrics, dict):
        return metrics  # the damage checks (runfiles.metrics_problem) name what is wrong with it
    out = _renamed(metrics, {**OLD_FIGURE_KEYS, **OLD_ENTRY_KEYS})
    for name in _PAIRED:
        if isinstance(out.get(name), dict):
            out[name] = _renamed(out[name], OLD_FIGURE_KEYS)
    for name in _PAIRED_PER:
        if isinstance(out.get(name), dict):
            out[name] = {k: _per_row(v) for k, v in out[name].items()}
    return out


def upgrade_counts(record: dict[str, Any]) -> dict[str, Any]:
    """A split record or a run summary with this version's count names (ragtune 0.3 and earlier: n_eval).

    >>> upgrade_counts({"n_train": 9, "n_eval": 3, "n_eval_chunks": 1})
    {'n_train': 9, 'n_test': 3, 'n_test_chunks': 1}
    """
    return _renamed(record, OLD_COUNT_KEYS)


# The kinds of question, as pairs files (`Pair.kind`), the generate stage's counts, the validation's per-kind scores
# and the docs name them. These are the names every pairs file has held since kinds were recorded, so no file needs
# rewriting; a record written before kinds were (kind "") counts under its generator's name.
QUESTION_KINDS = {
    "keyphrase": "a question about one of the chunk's distinctive key phrases (TF-IDF), e.g. 'What is zero trust?'",
    "sentence": "one of the chunk's salient sentences turned into a question, cut to its main clause",
    "cloze": "one of the chunk's salient sentences used as the query itself (inverse cloze)",
    "figure": "a row of one of the chunk's tables of figures, asked for as an analyst would, "
    "e.g. 'What were the total net sales in 2022?'",
    "lexical": "a span of a training chunk's sentence, labelled with the chunk BM25 ranks first (training only)",
    "llm": "a question an LLM wrote from the chunk (--generator openai or local)",
    "template": "a fixed question about one of the chunk's themes (--generator template)",
}


def question_kind(kind: str, generator: str) -> str:
    """The kind a pairs record counts under: its own, or for a record older than kinds, its generator's name.

    >>> question_kind("cloze", "offline"), question_kind("", "offline")
    ('cloze', 'offline')
    """
    return kind or generator
