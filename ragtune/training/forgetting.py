"""The forgetting guard: base and tuned model on a general retrieval set that ships with ragtune
(ragtune/data/general: everyday questions written by hand, not by ragtune's generators).

The run's own held-out questions come from the same generators as the training questions, so a model
that learned their style and forgot how to retrieve anything else still passes them. The guard ranks
the general passages (and some of the run's chunks as distractors) for every general question; when
the tuned model ranks them clearly worse than the base, it mixes the weights back toward the base
(as WiSE-FT does) until they no longer fall, down to the base itself.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..metrics import MRR_AT, model_rankings, rank_metrics

GENERAL_DIR = Path(__file__).resolve().parents[1] / "data" / "general"
# The largest fall of general hit@5 or MRR@10 that is not counted as forgetting: about nine of the 292
# questions (one moves hit@5 by 0.0034). Measured (docs/benchmarks.md, "Forgetting guard"): the base MiniLM
# scores 0.956 / 0.860; normal runs moved MRR@10 by +0.003 to +0.034; 16 steps on NIST phrase pairs at a
# learning rate of 5e-4 fell by 0.038 / 0.036, which the first 107 questions alone saw as 0.000 / 0.009.
TOLERANCE = 0.03
# Run chunks ranked beside the general passages: a model that pulls every question toward its own
# domain then loses general questions to them.
DISTRACTORS = 100
# Shares of the tuned change tried, in turn, when the tuned model falls (0.0 is the base).
SHARES = (0.5, 0.25, 0.0)


@dataclass(frozen=True)
class GeneralSet:
    """Questions, the passage that answers each, and the passages (and distractors) they rank among."""

    queries: list[str]
    relevant: list[str]
    ids: list[str]
    texts: list[str]

    def with_distractors(self, texts: list[str], n: int = DISTRACTORS, seed: int = 0) -> GeneralSet:
        """The same set with up to `n` of `texts` (a seeded sample) added as passages no question asks for."""
        picked = sorted(random.Random(seed).sample(range(len(texts)), min(n, len(texts))))
        return GeneralSet(
            self.queries,
            self.relevant,
            self.ids + [f"distractor-{i}" for i in picked],
            self.texts + [texts[i] for i in picked],
        )


def load_general_set(folder: Path = GENERAL_DIR) -> GeneralSet:
    """The general retrieval set that ships in the package."""

    def rows(name: str) -> list[dict[str, str]]:
        return [json.loads(line) for line in (folder / name).read_text(encoding="utf-8").splitlines() if line]

    passages, questions = rows("passages.jsonl"), rows("questions.jsonl")
    return GeneralSet(
        [q["query"] for q in questions],
        [q["passage"] for q in questions],
        [p["id"] for p in passages],
        [p["text"] for p in passages],
    )


def general_figures(model: Any, general: GeneralSet) -> dict[str, float]:
    """hit@5 and MRR@10 of `model` on the general questions."""
    ranked = model_rankings(model, general.texts, general.ids, general.queries, MRR_AT)
    return {k: round(v, 4) for k, v in rank_metrics(ranked, general.relevant, ks=(5,)).items()}


def falls(base: dict[str, float], tuned: dict[str, float], tolerance: float) -> bool:
    """Whether `tuned` is worse than `base` by more than `tolerance` on hit@5 or MRR@10.

    >>> falls({"hit@5": .80, "mrr@10": .70}, {"hit@5": .78, "mrr@10": .68}, tolerance=.03)
    False
    >>> falls({"hit@5": .80, "mrr@10": .70}, {"hit@5": .80, "mrr@10": .60}, tolerance=.03)
    True
    """
    return any(base[k] - tuned[k] > tolerance + 1e-9 for k in ("hit@5", f"mrr@{MRR_AT}"))


def guard(
    tuned: Any,
    base: Any,
    general: GeneralSet,
    act: bool = True,
    tolerance: float | None = None,
    shares: tuple[float, ...] = SHARES,
) -> dict[str, Any]:
    """Measure `base` and `tuned` on `general`; when the tuned model falls and `act`, mix its weights
    (in place) back toward the base through `shares` until they no longer fall, 0.0 being the base.

    Returns what metrics.json records as "general": the figures of the base ("base"), of the model
    as trained ("trained"), and of the weights shipped ("fine_tuned", as the metrics.json rows are named), whether the guard fired, and the share
    of the tuned change it kept ("kept": 1.0 when it did not act).
    """
    from .validation import mix_with_base, weights  # imports torch: only a guard that acts pays for it

    tolerance = TOLERANCE if tolerance is None else tolerance
    before, trained = general_figures(base, general), general_figures(tuned, general)
    record: dict[str, Any] = {
        "n_questions": len(general.queries),
        "n_passages": len(general.texts),
        "tolerance": tolerance,
        "base": before,
        "trained": trained,
        "fine_tuned": trained,
        "fired": falls(before, trained, tolerance),
        "acted": False,
        "kept": 1.0,
        "tried": {},
    }
    if not (record["fired"] and act):
        return record
    base_state, tuned_state = weights(base), weights(tuned)
    for share in shares:
        mix_with_base(tuned, base_state, tuned_state, share)
        after = general_figures(tuned, general) if share else before
        record["tried"][str(share)] = after
        if not falls(before, after, tolerance):
            break
    record |= {"fine_tuned": after, "acted": True, "kept": share}
    return record


def guard_line(general: dict[str, Any]) -> str:
    """One line on what the guard saw and did, for the console and the report."""
    n = general["n_questions"]
    b, t, a = general["base"], general["trained"], general["fine_tuned"]
    seen = f"general retrieval ({n} everyday questions) MRR@10 {b['mrr@10']:.3f} -> {t['mrr@10']:.3f}"
    if not general["fired"]:
        return f"Forgetting guard: {seen}, within {general['tolerance']:.2f} of the base."
    if not general["acted"]:
        return f"FORGETTING: {seen}; shipped as trained (--no-wise)."
    if general["kept"] == 0.0:
        return f"FORGETTING: {seen}; the tuned weights are not shipped, model/ holds the base model."
    return f"FORGETTING: {seen}; shipped {general['kept']:.0%} of the tuned change (MRR@10 {a['mrr@10']:.3f}) instead."
