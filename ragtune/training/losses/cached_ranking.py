"""MultiQueryRankingLoss with gradient caching (needs sentence-transformers>=6; see `ranking.cached_ranking_loss`)."""

from __future__ import annotations

from typing import Any, Iterable

import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin

from .ranking import MultiQueryRankingLoss


class CachedMultiQueryRankingLoss(CachedLossMixin, MultiQueryRankingLoss):
    """Texts are encoded `mini_batch_size` at a time and the gradients of the whole batch cached
    (GradCache), so the batch can hold more in-batch negatives than fit in memory at once."""

    def __init__(self, model: Any, mini_batch_size: int, with_negatives: bool = False) -> None:
        MultiQueryRankingLoss.__init__(self, model, with_negatives=with_negatives)
        self.mini_batch_size = mini_batch_size

    def calculate_loss(self, reps: list[list[Any]], labels: Any = None, *, with_backward: bool = False) -> Any:
        loss = self.loss_from_embeddings([torch.cat(column) for column in reps])
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Any = None) -> Any:
        return self.forward_cached(sentence_features, labels)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
