"""Validation while training: the score of a model on held-back questions, the Trainer's evaluator
that takes it at each checkpoint, and the WiSE-FT mix of the tuned weights with the base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

try:
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
except ImportError:  # sentence-transformers 5.x
    from sentence_transformers.evaluation import SentenceEvaluator

from ..metrics import MRR_AT, model_rankings, rank_metrics
from ..models import encoding_in


@dataclass
class Validation:
    """Validation questions and the corpus they are ranked against.

    The score is the mean over question kinds of MRR@10, so that every
    question style counts the same and a model that only learned one shape
    of question cannot win the checkpoint or the mix.
    """

    queries: list[str]
    kinds: list[str]
    relevant: list[str]
    corpus_ids: list[str]
    corpus_texts: list[str]

    def scores(self, model: Any) -> dict[str, float]:
        ranked = model_rankings(model, self.corpus_texts, self.corpus_ids, self.queries, MRR_AT)
        out: dict[str, float] = {}
        for kind in sorted(set(self.kinds)):
            sel = [i for i, k in enumerate(self.kinds) if k == kind]
            out[f"mrr@{MRR_AT}_{kind}"] = rank_metrics(
                [ranked[i] for i in sel], [self.relevant[i] for i in sel], ks=(5,)
            )[f"mrr@{MRR_AT}"]
        out["score"] = sum(out.values()) / len(out)
        return out


class ValidationEvaluator(SentenceEvaluator):
    """Scores each checkpoint on `validation` (as "val_score"), in the precision training runs in."""

    def __init__(self, validation: Validation, precision: str, device: str) -> None:
        super().__init__()
        self.primary_metric = "score"
        self.validation = validation
        self.precision = precision
        self.device = device

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> Any:
        with encoding_in(self.precision, self.device):
            return self.prefix_name_to_metrics(self.validation.scores(model), "val")


def weights(model: Any) -> dict[str, Any]:
    """A copy of the model's weights, safe from later training or mixing."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def mix_with_base(model: Any, base_state: dict[str, Any], tuned: dict[str, Any], alpha: float) -> None:
    """Set `model`'s weights to base + alpha * (tuned - base), in place (WiSE-FT)."""
    import torch

    with torch.no_grad():
        mixed = {
            k: torch.lerp(base_state[k].to(v.device, v.dtype), v, alpha) if v.is_floating_point() else v
            for k, v in tuned.items()
        }
    model.load_state_dict(mixed)


def choose_mix(
    model: Any,
    base_state: dict[str, Any],
    validation: Validation,
    base_score: float,
    tuned_score: float | None = None,
    alphas: tuple[float, ...] = (0.75, 0.5),
    cap: float = 1.0,
) -> tuple[float, dict[float, float]]:
    """Try shares of the tuned weights on the validation questions and leave the
    model at the best one no larger than `cap`: the base itself (alpha 0) if nothing beats it.

    Shares are tried from `cap` (1.0, all of the change, is scored as `tuned_score`
    when known) down through the `alphas` below it, stopping at the first that
    scores lower than the one before: validation scores along the path from base
    to tuned rarely rise again once they fall, and each check costs a pass over
    the validation corpus. Ties go to the larger share, the one training chose.
    A known `tuned_score` is recorded even when `cap` rules all of the change out.
    """
    tuned = weights(model)
    scores = {0.0: base_score}
    if tuned_score is not None:
        scores[1.0] = tuned_score
    previous = None
    for a in (cap, *(a for a in alphas if a < cap)):
        if a not in scores:
            if a < 1.0:  # the model holds all of the change until the first mix
                mix_with_base(model, base_state, tuned, a)
            scores[a] = validation.scores(model)["score"]
        if previous is not None and scores[a] < previous:
            break
        previous = scores[a]
    best = max((a for a in scores if a <= cap), key=lambda a: (round(scores[a], 6), a))
    mix_with_base(model, base_state, tuned, best)
    return best, scores
