"""Dense and BM25 rankings fused into the weighted hybrid, and positions turned into chunk ids."""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Hybrid weights tried on the validation questions: the dense share of the fused score.
HYBRID_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


def fused_scores(
    dense: tuple[np.ndarray, np.ndarray], lexical: tuple[np.ndarray, np.ndarray], weight: float
) -> list[dict[int, float]]:
    """Weighted score sum of a dense and a BM25 list, per query: `weight` * dense +
    (1 - `weight`) * BM25, each list's scores first scaled to [0, 1] (min-max over the
    list, as relative-score fusion does), and 0 where a list did not return the chunk.
    Each argument is (scores, chunk positions) as `search` returns them.
    """
    out = []
    for ds, dc, bs, bc in zip(dense[0], dense[1], lexical[0], lexical[1]):
        score: dict[int, float] = {}
        for scores, chunks, w in ((ds, dc, weight), (bs, bc, 1.0 - weight)):
            ok = chunks >= 0
            if not ok.any():
                continue
            lo, hi = float(scores[ok].min()), float(scores[ok].max())
            for s, c in zip(scores[ok], chunks[ok]):
                scaled = (float(s) - lo) / (hi - lo) if hi > lo else 1.0
                score[int(c)] = score.get(int(c), 0.0) + w * scaled
        out.append(score)
    return out


def fuse(
    dense: tuple[np.ndarray, np.ndarray], lexical: tuple[np.ndarray, np.ndarray], weight: float, depth: int
) -> list[list[int]]:
    """The top `depth` chunk positions per query by `fused_scores`.

    >>> d = (np.array([[0.9, 0.5, 0.1]]), np.array([[0, 1, 3]]))
    >>> b = (np.array([[8.0, 6.0, 2.0]]), np.array([[2, 1, 0]]))
    >>> fuse(d, b, 0.5, 3), fuse(d, b, 1.0, 2), fuse(d, b, 0.0, 2)
    ([[1, 0, 2]], [[0, 1]], [[2, 1]])
    """
    return [sorted(score, key=lambda c: -score[c])[:depth] for score in fused_scores(dense, lexical, weight)]


def positions_to_ids(positions: np.ndarray | list[list[int]], ids: Sequence[str]) -> list[list[str]]:
    return [[ids[int(i)] for i in row if i >= 0] for row in positions]
