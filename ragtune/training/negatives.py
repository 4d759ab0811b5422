"""Hard negatives: for each chunk with questions, another chunk the base model confuses with it."""

from __future__ import annotations

import random
from typing import Any

from ..records import Chunk, Pair
from ..retrieval import build_index, embed


def mine_hard_negatives(
    model: Any,
    pairs: list[Pair],
    chunks: dict[str, Chunk],
    allowed: set[str],
    margin: float = 0.95,
    max_chunk_similarity: float = 0.9,
    depth: int = 20,
    same_theme: bool = False,
) -> dict[str, str]:
    """For each chunk with questions, the chunk (among `allowed`) the base model ranks highest
    for its questions without being the answer.

    A candidate is skipped as a likely false negative when it scores above
    `margin` times the positive's score, or is a near-duplicate of the positive
    (cosine above `max_chunk_similarity`). With `same_theme`, the highest-ranked
    candidate sharing a theme with the positive is taken when there is one in
    the top `depth`: a negative on the same subject is harder to tell apart.
    """
    ids = sorted(allowed | {p.chunk_id for p in pairs})
    pos_of = {cid: i for i, cid in enumerate(ids)}
    chunk_vecs = embed(model, [chunks[c].text for c in ids])
    query_vecs = embed(model, [p.query for p in pairs])
    scores, idx = build_index(chunk_vecs).search(query_vecs, min(depth, len(ids)))
    votes: dict[str, dict[str, float]] = {}
    for p, q_vec, row_scores, row_idx in zip(pairs, query_vecs, scores, idx):
        positive = pos_of[p.chunk_id]
        pos_score = float(q_vec @ chunk_vecs[positive])
        usable = [
            (float(score), ids[j])
            for score, j in zip(row_scores, row_idx)
            if j != positive
            and ids[j] in allowed
            and score <= margin * pos_score
            and float(chunk_vecs[j] @ chunk_vecs[positive]) <= max_chunk_similarity
        ]
        if same_theme:
            themes = set(chunks[p.chunk_id].themes)
            usable = [u for u in usable if themes & set(chunks[u[1]].themes)] or usable
        if usable:
            score, cid = usable[0]
            tally = votes.setdefault(p.chunk_id, {})
            tally[cid] = tally.get(cid, 0.0) + score
    return {cid: max(t, key=lambda c: t[c]) for cid, t in votes.items() if t} if votes else {}


def fill_negatives(negatives: dict[str, str], pairs: list[Pair], allowed: set[str], seed: int) -> dict[str, str]:
    """Give every chunk with questions a negative: where mining found none (all
    candidates looked like false negatives), a seeded random other chunk of
    `allowed`. Rows need a negative each, and a chunk without one would
    otherwise drop out of training.

    >>> fill_negatives({"a": "b"}, [Pair("q", "a", "g"), Pair("q2", "c", "g")], {"a", "b", "c"}, 0)["a"]
    'b'
    >>> fill_negatives({}, [Pair("q", "c", "g")], {"c", "d"}, 0)
    {'c': 'd'}
    """
    rng = random.Random(seed)
    pool = sorted(allowed)
    out = dict(negatives)
    for cid in sorted({p.chunk_id for p in pairs} - set(negatives)):
        others = [c for c in pool if c != cid]
        if others:
            out[cid] = rng.choice(others)
    return out
