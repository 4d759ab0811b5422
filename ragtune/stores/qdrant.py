"""Qdrant: an embedded folder (`QdrantClient(path=...)`) or a server URL.

Export writes the dense vector unnamed (what langchain-qdrant and LlamaIndex's QdrantVectorStore
open by default), the LangChain payload ("page_content", "metadata") beside LlamaIndex's keys, and a
BM25 sparse vector "langchain-sparse" with Qdrant's IDF modifier, so the server can fuse the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import StoreError
from .base import Record, Store, Stored, point_id, require, sparse_documents, sparse_query, text_of

SPARSE = "langchain-sparse"  # langchain-qdrant's default sparse vector name
ABOUT = "ragtune"  # key of ragtune's note in a collection's metadata


def connect(target: str) -> Any:
    """A client for a URL (http://host:6333) or an embedded folder."""
    qdrant_client = require("qdrant")
    if target.startswith(("http://", "https://")):
        return qdrant_client.QdrantClient(url=target)
    return qdrant_client.QdrantClient(path=str(Path(target)))


class QdrantStore(Store):
    kind = "qdrant"

    def __init__(self, target: str) -> None:
        self.client = connect(target)
        self.target = target

    def close(self) -> None:
        self.client.close()

    def _aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def resolve(self, name: str) -> str:
        return self._aliases().get(name, name)

    def exists(self, name: str) -> bool:
        """A collection by that name (collection_exists also answers True for an alias)."""
        return name in {c.name for c in self.client.get_collections().collections}

    def count(self, name: str) -> int:
        return self.client.count(name, exact=True).count

    def _dense(self, name: str) -> tuple[str, Any]:
        """(vector name, params) of the collection's one dense vector; "" when it is unnamed."""
        vectors = self.client.get_collection(name).config.params.vectors
        if isinstance(vectors, dict):
            if len(vectors) != 1:
                raise StoreError(
                    f"collection {name} has {len(vectors)} dense vectors ({', '.join(vectors)}); "
                    "ragtune reindexes collections with one"
                )
            return next(iter(vectors.items()))
        return "", vectors

    def dimension(self, name: str) -> int | None:
        return int(self._dense(name)[1].size)

    def about(self, name: str) -> dict[str, Any]:
        meta = self.client.get_collection(name).config.metadata or {}
        return dict(meta.get(ABOUT) or {})

    def scan(self, name: str, text_key: str | None, batch: int = 256, vectors: bool = False) -> Iterable[list[Stored]]:
        dense, _ = self._dense(name)
        offset = None
        while True:
            points, offset = self.client.scroll(name, limit=batch, offset=offset, with_payload=True, with_vectors=True)
            out = []
            for p in points:
                keep = {k: v for k, v in p.vector.items() if k != dense} if isinstance(p.vector, dict) else {}
                out.append(
                    Stored(p.id, text_of(p.payload or {}, text_key, p.id, f"collection {name}"), p.payload or {}, keep)
                )
            if out:
                yield out
            if offset is None:
                return

    def ids(self, name: str) -> set[Any]:
        found, offset = set(), None
        while True:
            points, offset = self.client.scroll(name, limit=1024, offset=offset, with_payload=False, with_vectors=False)
            found.update(p.id for p in points)
            if offset is None:
                return found

    def sample_vectors(self, name: str, text_key: str | None, n: int) -> list[tuple[str, list[float]]]:
        dense, _ = self._dense(name)
        points, _ = self.client.scroll(name, limit=n, with_payload=True, with_vectors=True)
        return [
            (
                text_of(p.payload or {}, text_key, p.id, f"collection {name}"),
                p.vector[dense] if isinstance(p.vector, dict) else p.vector,
            )
            for p in points
        ]

    def create_like(self, new: str, old: str, dim: int, about: dict[str, Any]) -> None:
        dense, params = self._dense(old)
        params = params.model_copy(update={"size": dim})
        info = self.client.get_collection(old).config
        self.client.create_collection(
            new,
            vectors_config={dense: params} if dense else params,
            sparse_vectors_config=info.params.sparse_vectors,
            metadata={ABOUT: about},
        )

    def write(self, name: str, records: Sequence[Stored], vectors: Any) -> None:
        from qdrant_client import models

        dense, _ = self._dense(name)
        points = []
        for r, v in zip(records, vectors):
            vec: Any = {dense: v.tolist(), **r.keep} if (dense or r.keep) else v.tolist()
            points.append(models.PointStruct(id=r.id, vector=vec, payload=r.payload))
        self.client.upsert(name, points=points, wait=True)

    def switch(self, name: str, old: str, new: str, drop_old: bool) -> str:
        from qdrant_client import models

        aliases = self._aliases()
        if name in aliases:
            # One request: the app's name moves from the old collection to the new one with no gap.
            self.client.update_collection_aliases(
                change_aliases_operations=[
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name)),
                    models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=new, alias_name=name)),
                ]
            )
            if drop_old:
                self.client.delete_collection(old)
            return f"alias {name} now points at {new}" + (f"; deleted {old}" if drop_old else f" (kept {old})")
        if drop_old:
            # The name is a collection, not an alias: it can become an alias only once the collection is gone.
            self.client.delete_collection(old)
            self.client.update_collection_aliases(
                change_aliases_operations=[
                    models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=new, alias_name=name))
                ]
            )
            return f"deleted collection {old}; {name} is now an alias of {new}"
        return (
            f'{name} is a collection, not an alias, so nothing was switched: use collection_name="{new}" in '
            f"your app, or rerun with --drop-old to delete {old} and make {name} an alias of {new}"
        )

    def export(self, name: str, records: Sequence[Record], vectors: Any, about: dict[str, Any]) -> None:
        from qdrant_client import models

        if self.exists(name) or name in self._aliases():
            raise StoreError(
                f"collection {name} already exists in {self.target}; pick another --collection, or "
                f"use `ragtune reindex` to re-embed it"
            )
        self.client.create_collection(
            name,
            vectors_config=models.VectorParams(size=int(vectors.shape[1]), distance=models.Distance.COSINE),
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={ABOUT: about},
        )
        sparse = sparse_documents([r.text for r in records])
        for start in range(0, len(records), 256):
            points = [
                models.PointStruct(
                    id=point_id(r.id),
                    vector={"": v.tolist(), SPARSE: models.SparseVector(indices=s[0], values=s[1])},
                    payload={"page_content": r.text, "metadata": r.metadata, **r.metadata, **r.llamaindex_fields()},
                )
                for r, v, s in zip(
                    records[start : start + 256], vectors[start : start + 256], sparse[start : start + 256]
                )
            ]
            self.client.upsert(name, points=points, wait=True)


def hybrid_search(
    client: Any,
    collection: str,
    query_vector: Sequence[float],
    query_text: str,
    k: int = 5,
    weight: float = 0.5,
    depth: int = 100,
    fusion: str = "rrf",
) -> list[Any]:
    """The server-side hybrid: the dense and the BM25 sparse lists, fused by Qdrant.

    `fusion` "rrf": reciprocal rank fusion weighted `weight` : 1 - `weight` (the run's hybrid weight);
    "dbsf": Qdrant's distribution-based score fusion, unweighted, closer to ragtune's own score fusion at rank 1.
    """
    from qdrant_client import models

    indices, values = sparse_query(query_text)
    return client.query_points(
        collection,
        prefetch=[
            models.Prefetch(query=list(query_vector), limit=depth),
            models.Prefetch(query=models.SparseVector(indices=indices, values=values), using=SPARSE, limit=depth),
        ],
        query=models.RrfQuery(rrf=models.Rrf(weights=[weight, 1.0 - weight]))
        if fusion == "rrf"
        else models.FusionQuery(fusion=models.Fusion.DBSF),
        limit=k,
        with_payload=True,
    ).points
