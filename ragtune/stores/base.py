"""What every store module shares: the records ragtune writes, the payload keys apps read, the lexical terms.

A record carries its text and metadata in the keys the frameworks' own store classes read by default,
so an app opens the collection with nothing but its name and the tuned model:

    LangChain   text under "page_content" (Qdrant) or the store's document field (Chroma),
                metadata under "metadata" (Qdrant) or the store's metadata field
    LlamaIndex  "_node_content" (the node as JSON), "_node_type", "doc_id", "document_id", "ref_doc_id"
                beside the metadata; LanceDB's and LlamaIndex's "text" column

>>> r = chunk_record(Chunk("c-1", "a.pdf", (2, 3), "Zero trust.", 4))
>>> r.id, r.metadata["pages"], json.loads(r.llamaindex_fields()["_node_content"])["text"]
('c-1', '2,3', 'Zero trust.')
>>> lexical_terms("The incident response team, and the Response plan")
['incident', 'response', 'team', 'response', 'plan']
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..errors import StoreError
from ..records import Chunk

STORES = ("qdrant", "chroma", "lancedb")
# The pip extra and the import each store needs.
PACKAGES = {
    "qdrant": ("qdrant_client", "qdrant-client"),
    "chroma": ("chromadb", "chromadb"),
    "lancedb": ("lancedb", "lancedb"),
}
# Where apps keep a record's text, in the order reindex looks: LangChain (Qdrant), LlamaIndex and LanceDB.
TEXT_KEYS = ("page_content", "text")
# Qdrant point ids must be integers or UUIDs: a chunk id becomes a UUID derived from it (and stays in the payload).
ID_NAMESPACE = uuid.UUID("6f1c3a9e-52d4-4c0b-9a57-2d0f5b1e7c11")
# BM25 as ragtune's own index computes it (bm25s defaults, Lucene's formula).
BM25_K1, BM25_B = 1.5, 0.75
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def require(store: str) -> Any:
    """The store's client module, or a StoreError with the install line."""
    module, package = PACKAGES[store]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise StoreError(f"writing to {store} needs {package}: pip install 'ragtune[{store}]'") from None


@dataclass
class Record:
    """One stored text: its id, text and flat metadata (what the frameworks read back)."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def llamaindex_fields(self) -> dict[str, Any]:
        """The keys LlamaIndex's vector stores read a node back from (`metadata_dict_to_node`)."""
        node = {
            "id_": self.id,
            "embedding": None,
            "metadata": dict(self.metadata),
            "excluded_embed_metadata_keys": [],
            "excluded_llm_metadata_keys": [],
            "relationships": {},
            "text": self.text,
            "mimetype": "text/plain",
            "start_char_idx": None,
            "end_char_idx": None,
            "metadata_template": "{key}: {value}",
            "metadata_seperator": "\n",
            "text_template": "{metadata_str}\n\n{content}",
            "class_name": "TextNode",
        }
        return {
            "_node_content": json.dumps(node, ensure_ascii=False),
            "_node_type": "TextNode",
            "doc_id": self.metadata.get("source", self.id),
            "document_id": self.metadata.get("source", self.id),
            "ref_doc_id": self.metadata.get("source", self.id),
        }


def chunk_record(chunk: Chunk) -> Record:
    # Pages as "2,3": Chroma and LanceDB metadata must be flat scalars, and one form for every store.
    return Record(
        chunk.id, chunk.text, {"source": chunk.source, "pages": ",".join(map(str, chunk.pages)), "chunk_id": chunk.id}
    )


def point_id(record_id: str) -> str:
    """A Qdrant point id for a ragtune chunk id: the same UUID every time.

    >>> point_id("c-1") == point_id("c-1") != point_id("c-2")
    True
    """
    return str(uuid.uuid5(ID_NAMESPACE, record_id))


def lexical_terms(text: str) -> list[str]:
    """The words BM25 counts, as ragtune's BM25 index splits them (bm25s: lower case, 2+ letters, no stopwords)."""
    from bm25s.stopwords import STOPWORDS_EN

    stop = set(STOPWORDS_EN)
    return [t for t in _TOKEN.findall(text.lower()) if t not in stop]


def term_id(term: str) -> int:
    """A stable sparse index for a word, so an app can make the query's sparse vector without a vocabulary."""
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def sparse_query(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a query's sparse vector: how often each word occurs (the store applies IDF).

    >>> sparse_query("public feedback, public groups")[1]
    [2.0, 1.0, 1.0]
    """
    counts: dict[int, float] = {}
    for t in lexical_terms(text):
        # A repeated word counts again, as in ragtune's BM25.
        counts[term_id(t)] = counts.get(term_id(t), 0.0) + 1.0
    ids = sorted(counts)
    return ids, [counts[i] for i in ids]


def sparse_documents(texts: Sequence[str]) -> list[tuple[list[int], list[float]]]:
    """BM25's term-frequency part for each text; with the store's IDF modifier a dot product is its BM25 score."""
    docs = [lexical_terms(t) for t in texts]
    avg = sum(map(len, docs)) / max(len(docs), 1) or 1.0
    out = []
    for terms in docs:
        counts: dict[int, int] = {}
        for t in terms:
            counts[term_id(t)] = counts.get(term_id(t), 0) + 1
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(terms) / avg)
        ids = sorted(counts)
        # Lucene's BM25 as bm25s scores it: tf / (tf + k1 * (1 - b + b * length / average)), no (k1 + 1) factor.
        out.append((ids, [counts[i] / (counts[i] + norm) for i in ids]))
    return out


def batches(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Stored:
    """A record as a store holds it: its id, its text, everything but the vector (`payload`) and any vectors
    that do not come from the model (`keep`: Qdrant's sparse vectors), copied as they are."""

    id: Any
    text: str
    payload: Any
    keep: dict[str, Any] = field(default_factory=dict)


class Store:
    """One store's side of export and reindex; each module (qdrant, chroma, lancedb) fills it in."""

    kind = ""

    def resolve(self, name: str) -> str:
        """The collection a name points at (Qdrant: through an alias)."""
        return name

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def count(self, name: str) -> int:
        raise NotImplementedError

    def dimension(self, name: str) -> int | None:
        raise NotImplementedError

    def about(self, name: str) -> dict[str, Any]:
        """What ragtune noted on a collection it wrote (model digest, source collection); {} for others."""
        raise NotImplementedError

    def scan(self, name: str, text_key: str | None, batch: int = 256, vectors: bool = False) -> Iterable[list[Stored]]:
        raise NotImplementedError

    def ids(self, name: str) -> set[Any]:
        raise NotImplementedError

    def sample_vectors(self, name: str, text_key: str | None, n: int) -> list[tuple[str, list[float]]]:
        """(text, stored vector) of up to `n` records, to tell which model embedded the collection."""
        raise NotImplementedError

    def create_like(self, new: str, old: str, dim: int, about: dict[str, Any]) -> None:
        raise NotImplementedError

    def write(self, name: str, records: Sequence[Stored], vectors: Any) -> None:
        raise NotImplementedError

    def switch(self, name: str, old: str, new: str, drop_old: bool) -> str:
        """Point the app's name at `new` (or say the one line that does); drop `old` only when asked."""
        raise NotImplementedError

    def export(self, name: str, records: Sequence[Record], vectors: Any, about: dict[str, Any]) -> None:
        raise NotImplementedError


def text_of(payload: dict[str, Any], text_key: str | None, record_id: Any, where: str) -> str:
    """A record's text from the keys LangChain and LlamaIndex write (or `text_key`)."""
    keys = (text_key,) if text_key else TEXT_KEYS
    for key in keys:
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    if not text_key and isinstance(payload.get("_node_content"), str):
        try:
            value = json.loads(payload["_node_content"]).get("text")
        except (ValueError, AttributeError):
            value = None
        if isinstance(value, str) and value:
            return value
    tried = text_key or ", ".join(TEXT_KEYS + ("_node_content",))
    raise StoreError(
        f"record {record_id} in {where} has no text under {tried}; pass --text-key with the key "
        "your app stores the text under"
    )
