"""Dense search: the FAISS index over chunks and passages, encoding texts into it, and reading it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .units import retrieval_units


class DamagedFile(ValueError):
    """A saved index file that cannot be read; `path` names it (the message says why)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(why)
        self.path = path


# Above this many rows build_index makes an approximate (HNSW) index: exact search
# reads every row for every query, 7.4 ms a query at 100k rows of 384 dimensions
# against 0.6 ms for HNSW at recall@10 0.997, for a 40 s build (bench/index_scale.py).
APPROX_ROWS = 100_000
# HNSW graph: neighbours per node (M) and the candidate lists when building and searching.
# The graph costs about 2 * M * 4 bytes a row on top of the vectors (256 B against 1.5 kB).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128


def build_index(vectors: np.ndarray, approx_rows: int | None = APPROX_ROWS) -> Any:
    """An inner-product FAISS index (cosine similarity on normalised vectors): exact
    (IndexFlatIP) up to `approx_rows` rows, HNSW (IndexHNSWFlat) above; None: always exact.

    Both keep the vectors, so `reconstruct_batch` (DenseIndex's exact rescoring) works on
    either. Float32 rows (a memory-mapped .npy too) are added in one call without a copy:
    adding in blocks grows FAISS's storage step by step and kept 1.5x the memory at 20k rows.

    >>> rows = np.eye(4, dtype=np.float32)
    >>> type(build_index(rows)).__name__, type(build_index(rows, approx_rows=3)).__name__
    ('IndexFlatIP', 'IndexHNSWFlat')
    >>> build_index(rows, approx_rows=3).search(rows[2:3], 1)[1].tolist()
    [[2]]
    """
    import faiss

    n, dim = vectors.shape
    if approx_rows is not None and n > approx_rows:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH  # saved with the index by faiss.write_index
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


@dataclass
class DenseIndex:
    """A FAISS index of unit vectors and the chunk each row belongs to.

    A chunk with passages scores (best passage + w * chunk vector) / (1 + w), with
    `chunk_weight` w; a chunk without passages scores its own vector.

    >>> rows = np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32)   # chunk 0, chunk 1, a passage of chunk 0
    >>> idx = DenseIndex(build_index(rows), np.array([0, 1, 0]), chunk_weight=1.0)
    >>> s, c = idx.search(np.array([[0, 1]], np.float32), 2)
    >>> c.tolist(), [round(float(x), 2) for x in s[0]]
    ([[1, 0]], [1.0, 0.4])
    """

    index: Any
    owner: np.ndarray
    chunk_weight: float = 0.5
    # Rows of each chunk's passages (filled in from `owner`).
    _passages: list[np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.owner = np.asarray(self.owner, dtype=np.int64)
        n = self.n_chunks
        rows = np.arange(n, len(self.owner))
        order = np.argsort(self.owner[n:], kind="stable")
        bounds = np.searchsorted(self.owner[n:][order], np.arange(n + 1))
        self._passages = [rows[order[bounds[j] : bounds[j + 1]]] for j in range(n)]

    @classmethod
    def from_vectors(
        cls, vectors: np.ndarray, owner: np.ndarray, chunk_weight: float = 0.5, approx_rows: int | None = APPROX_ROWS
    ) -> "DenseIndex":
        return cls(build_index(vectors, approx_rows), np.asarray(owner, dtype=np.int64), chunk_weight)

    @property
    def n_chunks(self) -> int:
        return int(self.owner.max()) + 1 if len(self.owner) else 0

    @property
    def has_passages(self) -> bool:
        return len(self.owner) > self.n_chunks

    def _chunk_scores(self, q: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        """The blended score of each of `chunks` for one query vector `q`, computed exactly."""
        rows = np.concatenate([chunks] + [self._passages[c] for c in chunks])
        vecs = self.index.reconstruct_batch(rows)
        by_row = dict(zip(rows.tolist(), (vecs @ q).tolist()))
        out = np.empty(len(chunks), dtype=np.float32)
        w = self.chunk_weight
        for i, c in enumerate(chunks.tolist()):
            own = by_row[c]
            passages = self._passages[c]
            out[i] = (max(by_row[r] for r in passages.tolist()) + w * own) / (1 + w) if len(passages) else own
        return out

    def search(self, query_vectors: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """The best `depth` chunks per query: (scores, chunk positions), best first.

        Candidates are the chunks of the best rows FAISS returns; each is then scored
        exactly. A blended score never exceeds the chunk's best row, so once the
        last row fetched scores below the `depth`-th best candidate, no chunk left
        out can rank higher; until then the search widens. Places left empty hold
        -1 (score -inf).
        """
        query_vectors = np.ascontiguousarray(query_vectors, dtype=np.float32)
        n_rows, depth = self.index.ntotal, min(depth, self.n_chunks)
        out_c = np.full((len(query_vectors), depth), -1, dtype=np.int64)
        out_s = np.full((len(query_vectors), depth), -np.inf, dtype=np.float32)
        if not depth:
            return out_s, out_c
        if not self.has_passages:
            scores, rows = self.index.search(query_vectors, depth)
            return np.where(rows >= 0, scores, -np.inf).astype(np.float32), rows.astype(np.int64)
        pending = np.arange(len(query_vectors))
        k = min(n_rows, depth * 8)
        while len(pending):
            scores, rows = self.index.search(query_vectors[pending], k)
            retry = []
            for qi, srow, rrow in zip(pending, scores, rows):
                valid = rrow >= 0
                cands = np.unique(self.owner[rrow[valid]])
                blended = self._chunk_scores(query_vectors[qi], cands)
                order = np.argsort(-blended, kind="stable")[:depth]
                complete = k >= n_rows or (len(order) == depth and srow[valid][-1] <= blended[order[-1]])
                if not complete:
                    retry.append(qi)
                    continue
                out_c[qi, : len(order)] = cands[order]
                out_s[qi, : len(order)] = blended[order]
            pending = np.asarray(retry, dtype=np.int64)
            k = min(n_rows, k * 4)
        return out_s, out_c

    def save(self, folder: Path) -> None:
        """`index.faiss` and `rows.npy` (row -> chunk position), each written atomically."""
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".index.faiss.tmp"
        faiss.write_index(self.index, str(tmp))
        tmp.replace(folder / "index.faiss")
        tmp = folder / ".rows.npy.tmp"
        with open(tmp, "wb") as f:
            np.save(f, self.owner.astype(np.int64))
        tmp.replace(folder / "rows.npy")

    @classmethod
    def load(cls, folder: Path, chunk_weight: float = 0.5) -> "DenseIndex":
        import faiss

        try:
            index = faiss.read_index(str(folder / "index.faiss"))
        except RuntimeError as e:  # faiss's only error, with a C++ trace in the message
            raise DamagedFile(folder / "index.faiss", str(e).split("failed:")[-1].strip()) from None
        rows = folder / "rows.npy"
        # An index without rows.npy (ragtune 0.2) has one row per chunk.
        try:
            owner = np.load(rows, allow_pickle=False) if rows.exists() else np.arange(index.ntotal, dtype=np.int64)
        except (OSError, ValueError, EOFError) as e:
            raise DamagedFile(rows, str(e)) from None
        # A damaged rows.npy may still parse: it must name a chunk for every row, chunks first.
        if (
            owner.ndim != 1
            or owner.dtype.kind not in "iu"
            or len(owner) != index.ntotal
            or (
                len(owner)
                and (owner.min() < 0 or not np.array_equal(owner[: owner.max() + 1], np.arange(owner.max() + 1)))
            )
        ):
            raise DamagedFile(rows, f"it does not list the chunk of each of the {index.ntotal} index rows")
        return cls(index, owner, chunk_weight)


def chunked(total: int, progress: Callable[[int, int], None] | None, step: int) -> list[tuple[int, int]]:
    """(start, end) slices of `total` items, `step` at a time; reports 0/total first.

    >>> chunked(5, None, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    if progress is not None:
        progress(0, total)
    return [(i, min(i + step, total)) for i in range(0, total, step)]


def embed(
    model: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    dim: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    block: int = 2048,
) -> np.ndarray:
    """Normalised embeddings; with `dim`, of the first `dim` dimensions only (Matryoshka).

    With `progress`, the texts are encoded `block` at a time and `progress(done, total)` is called after each.
    """
    texts = list(texts)
    if progress is None or len(texts) <= block:
        parts = [
            model.encode(
                texts,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                truncate_dim=dim,
            )
        ]
        if progress is not None:
            progress(len(texts), len(texts))
    else:
        parts = []
        for start, end in chunked(len(texts), progress, block):
            parts.append(
                model.encode(
                    texts[start:end],
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                    truncate_dim=dim,
                )
            )
            progress(end, len(texts))
    return np.ascontiguousarray(np.concatenate(parts) if len(parts) > 1 else parts[0], dtype=np.float32)


def dense_index(
    model: Any,
    chunk_texts: Sequence[str],
    min_words: int,
    chunk_weight: float = 0.5,
    dim: int | None = None,
    stride: int = 1,
) -> DenseIndex:
    """Embed the chunks (and with `min_words`, their passages) and index them."""
    units = retrieval_units(chunk_texts, min_words, stride)
    return DenseIndex.from_vectors(embed(model, units.texts, dim=dim), units.owner, chunk_weight)
