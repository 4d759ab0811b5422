"""LanceDB: a database folder (`lancedb.connect(path)`).

Export writes the table LlamaIndex's LanceDBVectorStore (and LangChain's LanceDB) read: "id",
"doc_id", "vector", "text" and a "metadata" struct (with LlamaIndex's keys), plus a full-text index
on "text" so the app can run LanceDB's hybrid search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import StoreError
from .base import Record, Store, Stored, require

VECTOR = "vector"
ABOUT = b"ragtune:"  # prefix of ragtune's notes in the table schema's metadata


class LanceStore(Store):
    kind = "lancedb"

    def __init__(self, target: str) -> None:
        lancedb = require("lancedb")
        self.db = lancedb.connect(str(Path(target)))
        self.target = target

    def close(self) -> None:
        pass

    def _names(self) -> set[str]:
        """Every table name: list_tables answers a page at a time."""
        names: set[str] = set()
        token = None
        while True:
            listed = self.db.list_tables(page_token=token)
            names.update(listed.tables)
            token = listed.page_token
            if not token:
                return names

    def exists(self, name: str) -> bool:
        return name in self._names()

    def count(self, name: str) -> int:
        return self.db.open_table(name).count_rows()

    def dimension(self, name: str) -> int | None:
        return self.db.open_table(name).schema.field(VECTOR).type.list_size

    def about(self, name: str) -> dict[str, Any]:
        meta = self.db.open_table(name).schema.metadata or {}
        return {k[len(ABOUT) :].decode(): v.decode() for k, v in meta.items() if k.startswith(ABOUT)}

    def _key(self, name: str, text_key: str | None) -> str:
        key = text_key or "text"
        if key not in self.db.open_table(name).schema.names:
            raise StoreError(f"table {name} has no column {key!r}; pass --text-key with the column holding the text")
        return key

    def scan(self, name: str, text_key: str | None, batch: int = 256, vectors: bool = False) -> Iterable[list[Stored]]:
        key = self._key(name, text_key)
        table = self.db.open_table(name)
        columns = [c for c in table.schema.names if c != VECTOR]
        for rb in table.to_lance().to_batches(batch_size=batch, columns=columns):
            rows = rb.to_pylist()
            yield [Stored(r["id"], r[key], r) for r in rows]

    def ids(self, name: str) -> set[Any]:
        return set(self.db.open_table(name).to_lance().to_table(columns=["id"]).column("id").to_pylist())

    def sample_vectors(self, name: str, text_key: str | None, n: int) -> list[tuple[str, list[float]]]:
        key = self._key(name, text_key)
        rows = self.db.open_table(name).to_lance().head(n, columns=[key, VECTOR]).to_pylist()
        return [(r[key], r[VECTOR]) for r in rows]

    def create_like(self, new: str, old: str, dim: int, about: dict[str, Any]) -> None:
        import pyarrow as pa

        schema = self.db.open_table(old).schema
        i = schema.get_field_index(VECTOR)
        schema = schema.set(i, pa.field(VECTOR, pa.list_(pa.float32(), dim)))
        meta = dict(schema.metadata or {})
        meta.update({ABOUT + k.encode(): str(v).encode() for k, v in about.items()})
        self.db.create_table(new, schema=schema.with_metadata(meta))

    def write(self, name: str, records: Sequence[Stored], vectors: Any) -> None:
        import pyarrow as pa

        table = self.db.open_table(name)
        rows = [{**r.payload, VECTOR: v.tolist()} for r, v in zip(records, vectors)]
        table.add(pa.Table.from_pylist(rows, schema=table.schema))

    def switch(self, name: str, old: str, new: str, drop_old: bool) -> str:
        if drop_old:
            self.db.drop_table(old)
        return f'LanceDB has no aliases: open_table("{new}") in your app' + (
            f" (dropped {old})" if drop_old else f" (kept {old})"
        )

    def export(self, name: str, records: Sequence[Record], vectors: Any, about: dict[str, Any]) -> None:
        import pyarrow as pa

        if self.exists(name):
            raise StoreError(
                f"table {name} already exists in {self.target}; pick another --collection, or "
                f"use `ragtune reindex` to re-embed it"
            )
        rows = [
            {
                "id": r.id,
                "doc_id": r.metadata.get("source", r.id),
                VECTOR: v.tolist(),
                "text": r.text,
                "metadata": {**r.metadata, **r.llamaindex_fields()},
            }
            for r, v in zip(records, vectors)
        ]
        table = pa.Table.from_pylist(rows)
        i = table.schema.get_field_index(VECTOR)
        schema = table.schema.set(i, pa.field(VECTOR, pa.list_(pa.float32(), int(vectors.shape[1]))))
        schema = schema.with_metadata({ABOUT + k.encode(): str(v).encode() for k, v in about.items()})
        created = self.db.create_table(name, data=table.cast(schema), schema=schema)
        # The lexical half of LanceDB's hybrid search (query_type="hybrid"), and LlamaIndex's "fts" mode.
        created.create_fts_index("text", replace=True)
