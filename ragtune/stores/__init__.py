"""Put a run's tuned model into the vector store an app already uses: Qdrant, Chroma or LanceDB.

    ragtune export RUN --to qdrant ./qdrant_data --collection docs     # the run's chunks, tuned vectors
    ragtune reindex RUN --qdrant ./qdrant_data --collection docs       # re-embed the app's own records

`export_run` writes a run's chunks; `reindex` re-embeds an existing collection into a new one beside
it and switches the app's name over where the store can. Each store's client is an optional extra
(`pip install 'ragtune[qdrant]'`, `[chroma]`, `[lancedb]`). See docs/vector-stores.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..models import load_model, pick_device, weights_digest
from ..records import Chunk, read_jsonl
from ..retrieval import embed
from ..search import _require
from .base import STORES, Store, chunk_record, require
from .chroma import ChromaStore
from .lancedb import LanceStore
from .qdrant import QdrantStore
from .reindex import ReindexResult, reindex

__all__ = ["STORES", "ExportResult", "ReindexResult", "export_run", "open_store", "reindex"]


def open_store(kind: str, target: str | Path) -> Store:
    """The store of `kind` at `target`: a folder (embedded) or, for Qdrant and Chroma, an http(s) URL."""
    if kind not in STORES:
        raise ValueError(f"kind must be one of {', '.join(STORES)}, not {kind!r}")
    require(kind)  # the install hint before anything else
    if kind == "qdrant":
        return QdrantStore(str(target))
    if kind == "chroma":
        return ChromaStore(str(target))
    return LanceStore(str(target))


@dataclass(frozen=True)
class ExportResult:
    kind: str
    target: str
    collection: str
    n_records: int
    dim: int


def export_run(
    run_dir: str | Path, kind: str, target: str | Path, collection: str = "ragtune", device: str = ""
) -> ExportResult:
    """Write a finished run's chunks, embedded by its tuned model, into a new collection of the store."""
    run_dir = Path(run_dir)
    store = open_store(kind, target)
    try:
        _require(run_dir, ["model/config.json", "index/chunks.jsonl"])
        if store.exists(store.resolve(collection)):
            raise_exists(kind, target, collection)
        records = [chunk_record(c) for c in read_jsonl(run_dir / "index" / "chunks.jsonl", Chunk)]
        model = load_model(str(run_dir / "model"), pick_device(device))
        vectors = embed(model, [r.text for r in records])
        store.export(collection, records, vectors, {"model": weights_digest(model)[:16], "run": str(run_dir)})
        return ExportResult(kind, str(target), collection, len(records), int(vectors.shape[1]))
    finally:
        close(store)


def raise_exists(kind: str, target: Any, collection: str) -> None:
    raise StoreError(
        f"collection {collection} already exists in {target}; pick another --collection, or use "
        f"`ragtune reindex RUN --{kind} {target} --collection {collection}` to re-embed it"
    )


def close(store: Store) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        closer()
