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
(['One two three. Four five six. Seven eight.', 'Solo.', 'One two three.', 'Four five six. Seven eight.'], [0, 1, 0, 0])"""

from __future__ import annotations

from .bm25 import BM25Index, bm25_rankings
from .dense import (
    APPROX_ROWS,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    DamagedFile,
    DenseIndex,
    build_index,
    chunked,
    dense_index,
    embed,
)
from .ranking import HYBRID_WEIGHTS, fuse, fused_scores, positions_to_ids
from .stored import (
    BASE_VECTORS,
    SETTING_TYPES,
    base_vectors_about,
    load_base_vectors,
    read_settings,
    save_base_vectors,
    write_settings,
)
from .units import Units, passages_of, retrieval_units

__all__ = [
    "APPROX_ROWS",
    "BASE_VECTORS",
    "BM25Index",
    "DamagedFile",
    "DenseIndex",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "HYBRID_WEIGHTS",
    "SETTING_TYPES",
    "Units",
    "base_vectors_about",
    "bm25_rankings",
    "build_index",
    "chunked",
    "dense_index",
    "embed",
    "fuse",
    "fused_scores",
    "load_base_vectors",
    "passages_of",
    "positions_to_ids",
    "read_settings",
    "retrieval_units",
    "save_base_vectors",
    "write_settings",
]
