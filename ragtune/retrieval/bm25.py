"""BM25 (bm25s, English stopwords) over the chunk texts: the baseline a user would otherwise pick."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .ranking import positions_to_ids


class BM25Index:
    """BM25 (bm25s, English stopwords) over the chunk texts: the baseline a user would otherwise pick."""

    def __init__(self, retriever: Any) -> None:
        self.retriever = retriever

    @classmethod
    def build(cls, chunk_texts: Sequence[str]) -> "BM25Index":
        bm25s = _bm25s()
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(list(chunk_texts), stopwords="en", show_progress=False), show_progress=False)
        return cls(retriever)

    def search(self, queries: Sequence[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk positions) of the top `depth` chunks per query. A chunk sharing no
        term with the query scores 0 and is left out (position -1): BM25 did not find it."""
        bm25s = _bm25s()
        n = int(self.retriever.scores["num_docs"])
        depth = min(depth, n)
        tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
        docs, scores = self.retriever.retrieve(tokens, k=depth, show_progress=False, n_threads=1)
        docs = np.where(scores > 0, docs, -1)
        return np.where(docs >= 0, scores, 0.0).astype(np.float32), docs.astype(np.int64)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "BM25Index":
        """The saved index; ValueError when its files do not fit together (bm25s itself checks little)."""
        retriever = _bm25s().BM25.load(str(folder), show_progress=False)
        scores, vocab = retriever.scores, retriever.vocab_dict
        n = scores.get("num_docs") if isinstance(scores, dict) else None
        parts = [scores.get(k) for k in ("data", "indices", "indptr")] if isinstance(scores, dict) else []
        if (
            not isinstance(n, int)
            or n < 1
            or not isinstance(vocab, dict)
            or len(parts) != 3
            or any(getattr(p, "ndim", 0) != 1 for p in parts)
            # indptr has a row per term plus one (bm25s counts an empty "" term in the vocabulary)
            or len(parts[2]) not in (len(vocab), len(vocab) + 1)
            or len(parts[0]) != len(parts[1])
            or parts[2][-1] != len(parts[0])
            or (len(parts[1]) and (parts[1].min() < 0 or parts[1].max() >= n))
        ):
            raise ValueError("its files do not fit together (vocabulary, postings and document count differ)")
        return cls(retriever)


def _bm25s() -> Any:
    import bm25s

    # bm25s sets its own logger to DEBUG when imported.
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def bm25_rankings(chunk_texts: list[str], chunk_ids: list[str], queries: list[str], depth: int) -> list[list[str]]:
    """BM25 (bm25s, English stopwords) over the same chunks: the baseline a user would otherwise pick."""
    _, positions = BM25Index.build(chunk_texts).search(queries, depth)
    return positions_to_ids(positions, chunk_ids)
