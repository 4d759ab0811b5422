"""Retrieval over chunks: multi-vector dense search, BM25, and their weighted hybrid.

Mean pooling over a 256-token chunk dilutes the one phrase a question is about. A
chunk is therefore also embedded as passages: windows of whole sentences of at least
`min_words` words, one starting at every `stride`-th sentence (stride 0: cut without
overlap), so that a phrase which straddles two sentences is whole in some window. A
chunk scores as its best passage blended with its own vector, (best passage + w *
chunk) / (1 + w): the passage finds the phrase, the chunk vector keeps the context, so
one matching sentence in an off-topic chunk does not win on its own. The dense index
holds one row per unit (chunks first, then passages); `owner[row]` is the position of
the row's chunk.

>>> passages_of("One cat sat. Two dogs ran off fast. Three fish swim. Four birds.", min_words=5)
['One cat sat. Two dogs ran off fast.', 'Two dogs ran off fast.', 'Three fish swim. Four birds.']
>>> passages_of("One cat sat. Two dogs ran off fast. Three fish swim. Four birds.", min_words=5, stride=0)
['One cat sat. Two dogs ran off fast.', 'Three fish swim. Four birds.']
>>> units = retrieval_units(["One two three. Four five six. Seven eight.", "Solo."], min_words=3, stride=0)
>>> units.texts, units.owner.tolist()
(['One two three. Four five six. Seven eight.', 'Solo.', 'One two three.', 'Four five six. Seven eight.'], [0, 1, 0, 0])
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .progress import chunked
from .text import sentences

# Hybrid weights tried on the validation questions: the dense share of the fused score.
HYBRID_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


def passages_of(text: str, min_words: int, stride: int = 1) -> list[str]:
    """Windows of the chunk's whole sentences, each at least `min_words` words, in order.

    A window starts at every `stride`-th sentence, and never past the sentence after the
    previous window, so every sentence is in one; once a window reaches the chunk's end
    no later one is made, and the last is the shortest run of final sentences that is long
    enough. Stride 0 cuts the sentences into runs without overlap (a short tail joins the
    last run). None when that leaves a single window (the chunk vector already covers it)
    or `min_words` is 0.
    """
    if min_words < 1:
        return []
    sents = sentences(text)
    counts = [len(s.split()) for s in sents]
    out: list[str] = []
    start = 0
    while start < len(sents):
        end, total = start, 0
        while end < len(sents) and total < min_words:
            total += counts[end]
            end += 1
        if total < min_words:
            if not out:
                break
            if stride < 1:
                out[-1] += " " + " ".join(sents[start:])
            else:
                # Too few words left from here: the last window reaches back until it has enough.
                while start > 0 and total < min_words:
                    start -= 1
                    total += counts[start]
                out.append(" ".join(sents[start:]))
            break
        out.append(" ".join(sents[start:end]))
        start = end if stride < 1 else min(start + stride, end)
        if end == len(sents):
            break
    return out if len(out) > 1 else []


class DamagedFile(ValueError):
    """A saved index file that cannot be read; `path` names it (the message says why)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(why)
        self.path = path


@dataclass(frozen=True)
class Units:
    """Texts to embed: the chunks first (row i is chunk i), then every chunk's passages."""

    texts: list[str]
    owner: np.ndarray  # int64, row -> chunk position
    n_chunks: int


def retrieval_units(chunk_texts: Sequence[str], min_words: int, stride: int = 1) -> Units:
    """The chunk texts, followed by their passages (`min_words` 0: the chunks alone)."""
    texts, owner = list(chunk_texts), list(range(len(chunk_texts)))
    for i, text in enumerate(chunk_texts):
        for passage in passages_of(text, min_words, stride):
            texts.append(passage)
            owner.append(i)
    return Units(texts, np.asarray(owner, dtype=np.int64), len(chunk_texts))


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


def bm25_rankings(chunk_texts: list[str], chunk_ids: list[str], queries: list[str], depth: int) -> list[list[str]]:
    """BM25 (bm25s, English stopwords) over the same chunks: the baseline a user would otherwise pick."""
    _, positions = BM25Index.build(chunk_texts).search(queries, depth)
    return positions_to_ids(positions, chunk_ids)


def write_settings(folder: Path, settings: dict[str, Any]) -> None:
    from .fileio import write_json

    write_json(folder / "retriever.json", settings)


# What retriever.json holds, and the type each setting must have.
SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "format": (int,),
    "passage_words": (int,),
    "passage_stride": (int,),
    "chunk_weight": (int, float),
    "hybrid_weight": (int, float),
    "mode": (str,),
}


def read_settings(folder: Path) -> dict[str, Any]:
    """retriever.json's settings ({} when there is none); ValueError says what is wrong with a damaged one.

    >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / "retriever.json").write_text('{"chunk_weight": "x"}')
    >>> read_settings(d)
    Traceback (most recent call last):
    ...
    ValueError: "chunk_weight" is 'x', not a number
    """
    path = folder / "retriever.json"
    if not path.exists():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON: {e.msg}, line {e.lineno}") from None
    if not isinstance(settings, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004  (a damaged file, not a wrong argument)
    for name, types in SETTING_TYPES.items():
        value = settings.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise ValueError(f'"{name}" is {value!r}, not {"a number" if float in types else types[0].__name__}')
    return settings


# The base model's index of a run's retrieval units, written by the evaluate stage so that
# `search --compare` (load_retriever(which="base")) does not encode the corpus a second time.
BASE_VECTORS = Path("work") / "embeddings" / "base"  # RunFiles.base_vectors, which also finds a run's from before work/


def save_base_vectors(run_dir: Path, index: DenseIndex, about: dict[str, Any]) -> None:
    """`index` and what it was built from (`about`: base model, max_seq_length, passage settings, texts digest)."""
    from .fileio import write_json

    # about.json goes first and comes back last: a write cut off in between leaves no about.json,
    # so the half-replaced index is never taken for the one it describes.
    (run_dir / BASE_VECTORS / "about.json").unlink(missing_ok=True)
    index.save(run_dir / BASE_VECTORS)
    write_json(run_dir / BASE_VECTORS / "about.json", about)


def base_vectors_about(
    base_model: str, model: Any, texts: Sequence[str], passage_words: int, passage_stride: int
) -> dict[str, Any]:
    """What a base index of `texts` is built from, as saved beside it and compared on reuse: the one key
    for the evaluate stage (which writes the vectors) and `search --compare` (which reads them).

    `model` is the loaded base model with the max_seq_length it encodes with: read from the model itself,
    never from sentence_bert_config.json, which sentence-transformers 6 no longer fills.
    """
    from .models import weights_digest
    from .records import FORMAT_VERSION
    from .rundir import hash_parts

    return {
        "format": FORMAT_VERSION,
        "base_model": base_model,
        "weights": weights_digest(model),
        "max_seq_length": int(model.max_seq_length),
        "passage_words": int(passage_words),
        "passage_stride": int(passage_stride),
        "texts": hash_parts(*texts),
    }


def load_base_vectors(run_dir: Path, about: dict[str, Any], chunk_weight: float) -> DenseIndex | None:
    """The saved base index when it was built from what `about` says, else None (then encode again)."""
    from .runfiles import RunFiles

    folder = RunFiles(run_dir).base_vectors
    try:
        saved = json.loads((folder / "about.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or any(saved.get(k) != v for k, v in about.items()):
        return None
    try:
        return DenseIndex.load(folder, chunk_weight)
    except (OSError, ValueError, RuntimeError):  # faiss raises RuntimeError for a damaged file
        return None
