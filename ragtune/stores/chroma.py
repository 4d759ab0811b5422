"""Chroma: an embedded folder (`chromadb.PersistentClient(path=...)`) or a server URL (`chroma run`).

Export writes each chunk's text as the document and its metadata (with LlamaIndex's keys) as the
metadata, in a collection with cosine distance and no embedding function of its own: langchain-chroma's
`Chroma(collection_name=..., embedding_function=..., persist_directory=...)` and LlamaIndex's
ChromaVectorStore read it as they wrote it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlparse

from ..errors import StoreError
from .base import Record, Store, Stored, require, text_of

ABOUT = "ragtune:"  # prefix of ragtune's notes in a collection's metadata


def connect(target: str) -> Any:
    chromadb = require("chroma")
    # Default settings: Chroma refuses a second client on one folder with other settings (the app's).
    if target.startswith(("http://", "https://")):
        url = urlparse(target)
        return chromadb.HttpClient(host=url.hostname, port=url.port or 8000, ssl=url.scheme == "https")
    return chromadb.PersistentClient(path=str(Path(target)))


class ChromaStore(Store):
    kind = "chroma"

    def __init__(self, target: str) -> None:
        self.client = connect(target)
        self.target = target

    def close(self) -> None:
        pass

    def _get(self, name: str) -> Any:
        return self.client.get_collection(name)

    def exists(self, name: str) -> bool:
        return name in {c.name for c in self.client.list_collections()}

    def count(self, name: str) -> int:
        return self._get(name).count()

    def dimension(self, name: str) -> int | None:
        got = self._get(name).get(limit=1, include=["embeddings"])
        return len(got["embeddings"][0]) if len(got["ids"]) else None

    def about(self, name: str) -> dict[str, Any]:
        meta = self._get(name).metadata or {}
        return {k[len(ABOUT) :]: v for k, v in meta.items() if k.startswith(ABOUT)}

    def scan(self, name: str, text_key: str | None, batch: int = 256, vectors: bool = False) -> Iterable[list[Stored]]:
        col = self._get(name)
        for offset in range(0, col.count(), batch):
            got = col.get(limit=batch, offset=offset, include=["documents", "metadatas"])
            out = []
            for i, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                # LangChain and LlamaIndex keep the text as the document; --text-key reads a metadata key instead.
                text = doc if (doc and not text_key) else text_of(meta or {}, text_key, i, f"collection {name}")
                out.append(Stored(i, text, (doc, meta)))
            if out:
                yield out

    def ids(self, name: str) -> set[Any]:
        return set(self._get(name).get(include=[])["ids"])

    def sample_vectors(self, name: str, text_key: str | None, n: int) -> list[tuple[str, list[float]]]:
        got = self._get(name).get(limit=n, include=["documents", "metadatas", "embeddings"])
        return [
            (doc if (doc and not text_key) else text_of(meta or {}, text_key, i, f"collection {name}"), list(v))
            for i, doc, meta, v in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])
        ]

    def create_like(self, new: str, old: str, dim: int, about: dict[str, Any]) -> None:
        meta = dict(self._get(old).metadata or {})
        meta.update({ABOUT + k: v for k, v in about.items()})
        self.client.create_collection(new, metadata=meta, embedding_function=None)

    def write(self, name: str, records: Sequence[Stored], vectors: Any) -> None:
        self._get(name).upsert(
            ids=[r.id for r in records],
            embeddings=vectors,
            documents=[r.payload[0] for r in records],
            metadatas=[r.payload[1] for r in records],
        )

    def switch(self, name: str, old: str, new: str, drop_old: bool) -> str:
        # Chroma has no aliases, and renaming twice would leave a moment without the name.
        if drop_old:
            self.client.delete_collection(old)
        return f'Chroma has no aliases: use collection_name="{new}" in your app' + (
            f" (deleted {old})" if drop_old else f" (kept {old})"
        )

    def export(self, name: str, records: Sequence[Record], vectors: Any, about: dict[str, Any]) -> None:
        if self.exists(name):
            raise StoreError(
                f"collection {name} already exists in {self.target}; pick another --collection, or "
                f"use `ragtune reindex` to re-embed it"
            )
        col = self.client.create_collection(
            name, embedding_function=None, metadata={"hnsw:space": "cosine", **{ABOUT + k: v for k, v in about.items()}}
        )
        for start in range(0, len(records), 1024):
            part = records[start : start + 1024]
            col.add(
                ids=[r.id for r in part],
                embeddings=vectors[start : start + 1024],
                documents=[r.text for r in part],
                metadatas=[{**r.metadata, **r.llamaindex_fields()} for r in part],
            )
