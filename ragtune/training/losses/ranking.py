"""The ranking loss for generated questions: MultipleNegativesRankingLoss with several questions per chunk
(its gradient-cached twin is in cached_ranking.py)."""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn


class MultiQueryRankingLoss(nn.Module):
    """MultipleNegativesRankingLoss for several questions sharing one positive chunk.

    Columns are (query_0, …, query_{n-1}, chunk[, hard_negative]). Every question is scored
    against all chunks in the batch; the other chunks are its negatives. Each
    chunk is encoded once per step for all of its questions, so an epoch costs
    about 1/n of plain MNRL over (question, chunk) rows, where chunks dominate
    the compute.
    """

    def __init__(self, model: Any, scale: float = 20.0, with_negatives: bool = False) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.with_negatives = int(with_negatives)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Any = None) -> Any:
        return self.loss_from_embeddings([self.model(f)["sentence_embedding"] for f in sentence_features])

    def loss_from_embeddings(self, embeddings: list[Any]) -> Any:
        # Columns: questions…, chunk[, hard_negative]. Hard negatives join the
        # candidate chunks; the targets stay the first len(positives) rows.
        n_queries = len(embeddings) - 1 - self.with_negatives
        queries, positives = embeddings[:n_queries], embeddings[n_queries]
        candidates = torch.cat(embeddings[n_queries:]) if self.with_negatives else positives
        candidates = F.normalize(candidates, dim=-1)
        target = torch.arange(len(positives), device=positives.device)
        losses = [F.cross_entropy(self.scale * F.normalize(q, dim=-1) @ candidates.T, target) for q in queries]
        return torch.stack(losses).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The settings sentence-transformers writes into the model card's training section."""
        return {"scale": self.scale, "with_negatives": bool(self.with_negatives)}

    @property
    def citation(self) -> str:
        return ""
