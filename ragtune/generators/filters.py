"""Question filters: the rules on a question's own text (`filter_pairs`), and those that need
more: near-duplicates (by embedding) and round-trip consistency (by BM25 over all chunks).

Each filter returns the pairs it keeps and counts what it drops, per rule.
"""

from __future__ import annotations

import numpy as np

from ..records import Chunk, Pair, SkipCounter
from ..retrieval import bm25_rankings
from ..text import normalise
from . import Generation


def filter_pairs(
    pairs: list[Pair], chunks: dict[str, Chunk], min_words: int = 3, max_words: int = 64, across_chunks: bool = True
) -> Generation:
    """Drop unusable questions, counting each rule.

    A question whose text was already asked (of any chunk, or with
    `across_chunks=False` of the same chunk) is a duplicate. The template
    baseline turns cross-chunk deduplication off, to reproduce the original
    recipe where one question text points at many chunks.

    >>> ch = {"c": Chunk("c", "a", (1,), "Zero trust assumes no implicit trust.", 7)}
    >>> g = filter_pairs([Pair("What is zero trust?", "c", "x"), Pair("what is zero  TRUST", "c", "x"), Pair("Hi", "c", "x")], ch)
    >>> len(g.pairs), g.dropped.counts
    (1, {'duplicate question': 1, 'too short': 1})
    """
    out = Generation(pairs=[])
    seen: set[str | tuple[str, str]] = set()
    for p in pairs:
        norm = normalise(p.query)
        key = norm if across_chunks else (norm, p.chunk_id)
        n = len(norm.split())
        if n < min_words:
            out.dropped.add("too short", p.query)
        elif n > max_words:
            out.dropped.add("too long", p.query[:60])
        elif key in seen:
            out.dropped.add("duplicate question", p.query)
        elif p.chunk_id in chunks and norm == normalise(chunks[p.chunk_id].text):
            out.dropped.add("copies the whole chunk", p.query[:60])
        else:
            seen.add(key)
            out.pairs.append(p)
    return out


def drop_near_duplicates(pairs: list[Pair], vectors: np.ndarray, threshold: float, dropped: SkipCounter) -> list[Pair]:
    """Keep a question unless an earlier kept question of the same chunk has
    cosine similarity of at least `threshold` with it (`vectors`: one
    normalised row per pair). Near-copies teach the same thing twice and take a
    question slot from a different one.

    >>> v = np.array([[1, 0], [0.999, 0.045], [0, 1]], dtype=np.float32)
    >>> v /= np.linalg.norm(v, axis=1, keepdims=True)
    >>> d = SkipCounter()
    >>> [p.query for p in drop_near_duplicates([Pair("a", "c", "g"), Pair("b", "c", "g"), Pair("z", "c", "g")], v, 0.95, d)]
    ['a', 'z']
    >>> d.counts
    {'near-duplicate question': 1}
    """
    kept: list[Pair] = []
    kept_rows: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        rows = kept_rows.setdefault(p.chunk_id, [])
        if rows and float(np.max(vectors[rows] @ vectors[i])) >= threshold:
            dropped.add("near-duplicate question", p.query)
            continue
        rows.append(i)
        kept.append(p)
    return kept


def drop_round_trip_failures(pairs: list[Pair], chunks: list[Chunk], k: int, dropped: SkipCounter) -> list[Pair]:
    """Keep a question only if BM25 over all chunks ranks its own chunk in the top `k`.

    A question that lexical search cannot tie to its chunk at all is usually
    too generic to have one answer in the collection. BM25 rather than the base
    model, so that the filter does not keep only what the base model already
    gets right.
    """
    if not pairs:
        return []
    ids = [c.id for c in chunks]
    ranked = bm25_rankings([c.text for c in chunks], ids, [p.query for p in pairs], k)
    kept = []
    for p, top in zip(pairs, ranked):
        if p.chunk_id in top:
            kept.append(p)
        else:
            dropped.add(f"round trip: own chunk not in BM25 top {k}", p.query)
    return kept
