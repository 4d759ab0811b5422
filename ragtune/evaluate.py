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


def embed(model: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
    vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
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
    docs, _ = retriever.retrieve(tokens, k=min(depth, len(chunk_ids)), show_progress=False, n_threads=1)
    return [[chunk_ids[i] for i in row] for row in docs]


def evaluate_model(
    model: Any,
    chunk_texts: list[str],
    chunk_ids: list[str],
    queries: list[str],
    relevant: list[str],
    ks: Sequence[int],
    index_dir: Path | None = None,
) -> dict[str, float]:
    """Metrics of `model` on the queries; with `index_dir`, also save the chunk index it built."""
    index = build_index(embed(model, chunk_texts))
    if index_dir is not None:
        save_index(index, index_dir)
    depth = max(max(ks), MRR_AT)
    return rank_metrics(dense_rankings(index, embed(model, queries), chunk_ids, depth), relevant, ks)


def evaluate_bm25(
    chunk_texts: list[str], chunk_ids: list[str], queries: list[str], relevant: list[str], ks: Sequence[int]
) -> dict[str, float]:
    depth = max(max(ks), MRR_AT)
    return rank_metrics(bm25_rankings(chunk_texts, chunk_ids, queries, depth), relevant, ks)


def save_index(index: Any, out_dir: Path) -> None:
    """Write `index.faiss` atomically (the caller writes the chunk JSONL beside it)."""
    import faiss

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".index.faiss.tmp"
    faiss.write_index(index, str(tmp))
    tmp.replace(out_dir / "index.faiss")
