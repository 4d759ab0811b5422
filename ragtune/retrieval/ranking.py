"""Dense and BM25 rankings fused into the weighted hybrid, and positions turned into chunk ids."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# Hybrid weights tried on the validation questions: the dense share of the fused score.
HYBRID_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


def min_max(scores: np.ndarray) -> np.ndarray:
    """A list's scores scaled to [0, 1], its best 1 and its worst 0 (all 1 where they are equal): how
    relative-score fusion, and ragtune's hybrid, put a cosine and a BM25 score on one scale.

    >>> min_max(np.array([8.0, 6.0, 4.0])).tolist(), min_max(np.array([3.0, 3.0])).tolist()
    ([1.0, 0.5, 0.0], [1.0, 1.0])
    """
    lo, hi = float(scores.min()), float(scores.max())
    return (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)


def three_sigma(scores: np.ndarray) -> np.ndarray:
    """A list's scores scaled from its mean - 3 sd (0) to its mean + 3 sd (1): distribution-based score fusion
    (Qdrant's DBSF), which a list with one outstanding score and a flat tail scales less than min-max does.

    >>> three_sigma(np.array([2.0, 1.0, 0.0])).round(3).tolist()
    [0.704, 0.5, 0.296]
    """
    mu, sd = float(scores.mean()), float(scores.std())
    return np.clip((scores - mu + 3 * sd) / (6 * sd), 0.0, 1.0) if sd > 0 else np.ones_like(scores)


def by_top(scores: np.ndarray) -> np.ndarray:
    """A list's scores as shares of its best one (its best 1; all 1 where the best is not above 0).

    >>> by_top(np.array([8.0, 6.0, 4.0])).tolist()
    [1.0, 0.75, 0.5]
    """
    top = float(scores.max())
    return scores / top if top > 0 else np.ones_like(scores)


def fused_scores(
    dense: tuple[np.ndarray, np.ndarray],
    lexical: tuple[np.ndarray, np.ndarray],
    weight: float,
    scale: Callable[[np.ndarray], np.ndarray] = min_max,
) -> list[dict[int, float]]:
    """Weighted score sum of a dense and a BM25 list, per query: `weight` * dense +
    (1 - `weight`) * BM25, each list's scores first put on one scale by `scale` (by default
    min-max over the list, as relative-score fusion does), and 0 where a list did not return the chunk.
    Each argument is (scores, chunk positions) as `search` returns them.
    """
    out = []
    for ds, dc, bs, bc in zip(dense[0], dense[1], lexical[0], lexical[1]):
        score: dict[int, float] = {}
        for scores, chunks, w in ((ds, dc, weight), (bs, bc, 1.0 - weight)):
            ok = chunks >= 0
            if not ok.any():
                continue
            for s, c in zip(scale(scores[ok].astype(np.float64)), chunks[ok]):
                score[int(c)] = score.get(int(c), 0.0) + w * float(s)
        out.append(score)
    return out


def fuse(
    dense: tuple[np.ndarray, np.ndarray],
    lexical: tuple[np.ndarray, np.ndarray],
    weight: float,
    depth: int,
    scale: Callable[[np.ndarray], np.ndarray] = min_max,
) -> list[list[int]]:
    """The top `depth` chunk positions per query by `fused_scores`.

    >>> d = (np.array([[0.9, 0.5, 0.1]]), np.array([[0, 1, 3]]))
    >>> b = (np.array([[8.0, 6.0, 2.0]]), np.array([[2, 1, 0]]))
    >>> fuse(d, b, 0.5, 3), fuse(d, b, 1.0, 2), fuse(d, b, 0.0, 2)
    ([[1, 0, 2]], [[0, 1]], [[2, 1]])
    """
    return [sorted(score, key=lambda c: -score[c])[:depth] for score in fused_scores(dense, lexical, weight, scale)]


def positions_to_ids(positions: np.ndarray | list[list[int]], ids: Sequence[str]) -> list[list[str]]:
    return [[ids[int(i)] for i in row if i >= 0] for row in positions]
