"""Cosine similarity between texts, and how well it agrees with human labels.

`ragtune similarity` prints `cosine_matrix`; `ragtune pairs` scores a model by
the Pearson and Spearman correlation between the cosine similarity of each
pair and its label (what sentence-transformers' EmbeddingSimilarityEvaluator
reports as pearson_cosine and spearman_cosine).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import SimilarityError
from .records import LabelledPair


def _encode(model: Any, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    emb = model.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(emb, dtype=np.float64)


def check_texts(texts: Sequence[str]) -> None:
    """Raise SimilarityError unless there are two or more non-empty texts."""
    if len(texts) < 2:
        raise SimilarityError(f"give at least two texts to compare, not {len(texts)}")
    for i, t in enumerate(texts, start=1):
        if not t.strip():
            raise SimilarityError(f"text {i} is empty")


def cosine_matrix(model: Any, texts: Sequence[str]) -> np.ndarray:
    """n x n cosine similarities of `texts` under `model` (1.0 on the diagonal, up to rounding)."""
    check_texts(texts)
    emb = _encode(model, texts)
    return emb @ emb.T


def paired_cosine(model: Any, pairs: Sequence[LabelledPair], batch_size: int = 32) -> np.ndarray:
    """Cosine similarity of each pair's two texts; each distinct text is encoded once."""
    texts = sorted({p.sentence1 for p in pairs} | {p.sentence2 for p in pairs})
    index = {t: i for i, t in enumerate(texts)}
    emb = _encode(model, texts, batch_size)
    a = emb[[index[p.sentence1] for p in pairs]]
    b = emb[[index[p.sentence2] for p in pairs]]
    return np.sum(a * b, axis=1)


def rank(x: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank.

    >>> rank([10, 20, 20, 5]).tolist()
    [2.0, 3.5, 3.5, 1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    # Give each run of equal values the mean of the ranks it spans.
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; 0.0 when either side is constant (no linear relation to measure).

    >>> pearson([1, 2, 3], [2, 4, 7])
    0.9933992677987828
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) != len(y) or len(x) < 2:
        raise SimilarityError(f"need two equal-length lists of at least 2 values, got {len(x)} and {len(y)}")
    dx, dy = x - x.mean(), y - y.mean()
    denom = float(np.sqrt(np.sum(dx * dx) * np.sum(dy * dy)))
    if denom == 0.0:
        return 0.0
    return float(np.clip(np.sum(dx * dy) / denom, -1.0, 1.0))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman correlation: Pearson of the (tie-averaged) ranks.

    >>> spearman([1, 2, 3, 4], [10, 20, 15, 40])
    0.8
    """
    return pearson(rank(x), rank(y))


def correlations(scores: Sequence[float], labels: Sequence[float]) -> dict[str, float]:
    """{"pearson": …, "spearman": …} of model scores against labels."""
    return {"pearson": pearson(scores, labels), "spearman": spearman(scores, labels)}


def evaluate_pairs(model: Any, pairs: Sequence[LabelledPair]) -> dict[str, float]:
    """How well the model's cosine similarity tracks the labels of `pairs`."""
    return correlations(paired_cosine(model, pairs), [p.label for p in pairs])
