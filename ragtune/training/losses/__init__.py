"""Every training loss. Here: the losses for labelled pairs (sentence1, sentence2, label in [0, 1])
and the columns they read; the ranking loss for generated questions is in ranking.py, its
gradient-cached twin in cached_ranking.py.

This face is light on purpose (sentence-transformers is imported only when a loss is made, and
torch only by the ranking modules), so that the CLI can list the choices without loading torch.

>>> sorted(LOSSES)
['angle', 'cosent', 'cosine']
"""

from __future__ import annotations

from typing import Any

from ...config import LOSSES
from ...errors import ConfigError
from ...records import LabelledPair

__all__ = ["LOSSES", "cached_ranking_loss", "labelled_columns", "make_loss"]


def make_loss(name: str, model: Any) -> Any:
    from sentence_transformers.sentence_transformer import losses

    return getattr(losses, LOSSES[name])(model)


def labelled_columns(pairs: list[LabelledPair]) -> dict[str, list[Any]]:
    # A column named "label" is what the Trainer hands to the loss as the target.
    return {
        "sentence1": [p.sentence1 for p in pairs],
        "sentence2": [p.sentence2 for p in pairs],
        "label": [float(p.label) for p in pairs],
    }


def cached_ranking_loss(model: Any, mini_batch_size: int, with_negatives: bool = False) -> Any:
    """MultiQueryRankingLoss with gradient caching (GradCache, as in
    CachedMultipleNegativesRankingLoss): texts are encoded `mini_batch_size` at a
    time, so the batch, and with it the number of in-batch negatives, can grow
    beyond what fits in memory at once. Same loss, same gradients.
    """
    try:
        # Imported here: its base class exists only in sentence-transformers>=6.
        from .cached_ranking import CachedMultiQueryRankingLoss
    except ImportError:
        raise ConfigError(
            "mini_batch_size needs sentence-transformers>=6 (pip install -U sentence-transformers)"
        ) from None
    return CachedMultiQueryRankingLoss(model, mini_batch_size, with_negatives)
