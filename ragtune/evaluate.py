"""Retrieval metrics: hit@k and MRR@10 over a FAISS index of all chunks, and BM25 beside them.

Base and fine-tuned models are scored on the same held-out questions against
the same chunks with the same index settings (inner product over normalised
embeddings, i.e. cosine similarity).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MRR_AT = 10


def rank_metrics(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str] | str], ks: Sequence[int]) -> dict[str, float]:
    """hit@k and MRR@10 from ranked id lists and the relevant id(s) per query.

    >>> rank_metrics([["a", "b"], ["c", "b"]], ["b", "x"], ks=[1, 2])
    {'hit@1': 0.0, 'hit@2': 0.5, 'mrr@10': 0.25}
    """
    if not ranked:
        raise ValueError("no queries to evaluate")
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings but {len(relevant)} relevance sets")
    hits = {k: 0 for k in ks}
    rr = 0.0
    for ids, rel in zip(ranked, relevant):
        rel_set = {rel} if isinstance(rel, str) else rel
        rank = next((i for i, cid in enumerate(ids) if cid in rel_set), None)
        if rank is None:
            continue
        for k in ks:
            hits[k] += rank < k
        if rank < MRR_AT:
            rr += 1.0 / (rank + 1)
    n = len(ranked)
    out = {f"hit@{k}": hits[k] / n for k in ks}
    out[f"mrr@{MRR_AT}"] = rr / n
    return out


def embed(model: Any, texts: list[str], batch_size: int = 64, dim: int | None = None) -> np.ndarray:
    """Normalised embeddings; with `dim`, of the first `dim` dimensions only (Matryoshka)."""
    vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False, truncate_dim=dim)
    return np.ascontiguousarray(vecs, dtype=np.float32)


def build_index(vectors: np.ndarray) -> Any:
    """An exact inner-product FAISS index (cosine similarity on normalised vectors)."""
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def dense_rankings(index: Any, query_vectors: np.ndarray, chunk_ids: list[str], depth: int) -> list[list[str]]:
    _, idx = index.search(query_vectors, min(depth, len(chunk_ids)))
    return [[chunk_ids[i] for i in row if i >= 0] for row in idx]


def bm25_rankings(chunk_texts: list[str], chunk_ids: list[str], queries: list[str], depth: int) -> list[list[str]]:
    """BM25 (bm25s, English stopwords) over the same chunks: the baseline a user would otherwise pick."""
    import bm25s

    # bm25s sets its own logger to DEBUG when imported.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(chunk_texts, stopwords="en", show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, stopwords="en", show_progress=False)
    docs, scores = retriever.retrieve(tokens, k=min(depth, len(chunk_ids)), show_progress=False, n_threads=1)
    # A chunk sharing no term with the query scores 0: BM25 did not find it, whatever its place in the list.
    return [[chunk_ids[i] for i, score in zip(row, row_scores) if score > 0] for row, row_scores in zip(docs, scores)]


def evaluate_model(
    model: Any,
    chunk_texts: list[str],
    chunk_ids: list[str],
    queries: list[str],
    relevant: list[str],
    ks: Sequence[int],
    index_dir: Path | None = None,
    dim: int | None = None,
) -> dict[str, float]:
    """Metrics of `model` on the queries; with `index_dir`, also save the chunk index it built;
    with `dim`, on embeddings cut to that many dimensions."""
    depth = max(max(ks), MRR_AT)
    return rank_metrics(model_rankings(model, chunk_texts, chunk_ids, queries, depth, index_dir, dim), relevant, ks)


def model_rankings(
    model: Any, chunk_texts: list[str], chunk_ids: list[str], queries: list[str], depth: int,
    index_dir: Path | None = None, dim: int | None = None,
) -> list[list[str]]:
    """The top `depth` chunk ids per query from an exact index of `model`'s chunk embeddings."""
    index = build_index(embed(model, chunk_texts, dim=dim))
    if index_dir is not None:
        save_index(index, index_dir)
    return dense_rankings(index, embed(model, queries, dim=dim), chunk_ids, depth)


def rrf(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]], k: int = 60) -> list[list[str]]:
    """Reciprocal-rank fusion of two rankings per query: score 1/(k + rank), summed.

    >>> rrf([["x", "y"]], [["y", "z"]])
    [['y', 'x', 'z']]
    """
    fused = []
    for ra, rb in zip(a, b):
        score: dict[str, float] = {}
        for ranking in (ra, rb):
            for i, cid in enumerate(ranking):
                score[cid] = score.get(cid, 0.0) + 1.0 / (k + i + 1)
        fused.append(sorted(score, key=lambda c: -score[c]))
    return fused


def save_index(index: Any, out_dir: Path) -> None:
    """Write `index.faiss` atomically (the caller writes the chunk JSONL beside it)."""
    import faiss

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    tmp.replace(out_dir / "index.faiss")
