"""Export a run into Qdrant, Chroma and LanceDB, and reindex an app's own collection, with real stores.

Each app below knows only the collection's name and the model folder, and opens it with the
framework's own store class; its top 5 must be ragtune's dense top 5.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragtune import Config, Pipeline
from ragtune.cli import main
from ragtune.records import Chunk, Pair, read_jsonl
from ragtune.search import Retriever, load_retriever
from tests.test_search import write_pdfs

qdrant_client = pytest.importorskip("qdrant_client", reason="pip install 'ragtune[qdrant]'")

K = 5
N_QUESTIONS = 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Path]:
    """A finished tiny run with one vector per chunk (passage_words 0), as a store holds it."""
    root = tmp_path_factory.mktemp("stores")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        cfg = Config(docs=write_pdfs(root / "docs"), out=root / "run", base_model=str(tiny_model_dir), max_steps=2,
                     batch_size=4, chunk_tokens=64, chunk_overlap=8, device="cpu", val_fraction=0, passage_words=0)
        Pipeline(cfg).run()
        yield cfg.out


@pytest.fixture(scope="module")
def tuned(run_dir: Path) -> Retriever:
    return load_retriever(run_dir, "tuned", device="cpu")


@pytest.fixture(scope="module")
def chunks(run_dir: Path) -> list[Chunk]:
    return read_jsonl(run_dir / "index" / "chunks.jsonl", Chunk)


@pytest.fixture(scope="module")
def questions(run_dir: Path) -> list[str]:
    pairs = read_jsonl(run_dir / "pairs_eval.jsonl", Pair) + read_jsonl(run_dir / "pairs_train.jsonl", Pair)
    out = list(dict.fromkeys(p.query for p in pairs))[:N_QUESTIONS]
    assert len(out) == N_QUESTIONS
    return out


def dense_top(tuned: Retriever, questions: list[str]) -> list[list[str]]:
    return [[h.chunk_id for h in tuned.search(q, K, mode="dense")] for q in questions]


def lc_embeddings(model_dir: Path):
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(model_name=str(model_dir), model_kwargs={"device": "cpu"})


def li_embeddings(model_dir: Path):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=str(model_dir), device="cpu")


def export(run_dir: Path, kind: str, target: Path, collection: str = "docs") -> None:
    assert main(["export", str(run_dir), "--to", kind, str(target), "--collection", collection]) == 0


# --- export ---------------------------------------------------------------------------


def test_qdrant_export_langchain_app_ranks_like_ragtune(run_dir: Path, tuned: Retriever, questions: list[str],
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from langchain_qdrant import QdrantVectorStore

    export(run_dir, "qdrant", tmp_path / "q")
    assert "langchain-sparse" in capsys.readouterr().out
    # The app: the collection name, the folder and the tuned model, nothing from ragtune.
    app = QdrantVectorStore.from_existing_collection(collection_name="docs", path=str(tmp_path / "q"),
                                                     embedding=lc_embeddings(run_dir / "model"))
    try:
        got = [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions]
        docs = app.similarity_search(questions[0], k=1)
    finally:
        app.client.close()
    assert got == dense_top(tuned, questions)
    hit = tuned.search(questions[0], 1, mode="dense")[0]
    assert docs[0].page_content == hit.text
    want = {"source": hit.source, "pages": ",".join(map(str, hit.pages)), "chunk_id": hit.chunk_id}
    assert {k: docs[0].metadata[k] for k in want} == want


def test_qdrant_export_llamaindex_app_ranks_like_ragtune(run_dir: Path, tuned: Retriever, questions: list[str],
                                                        tmp_path: Path) -> None:
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    export(run_dir, "qdrant", tmp_path / "q")
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        store = QdrantVectorStore(collection_name="docs", client=client)
        retriever = VectorStoreIndex.from_vector_store(store, embed_model=li_embeddings(run_dir / "model")) \
            .as_retriever(similarity_top_k=K)
        got = [[n.node.metadata["chunk_id"] for n in retriever.retrieve(q)] for q in questions]
        first = retriever.retrieve(questions[0])[0].node
    finally:
        client.close()
    assert got == dense_top(tuned, questions)
    assert first.get_content() == tuned.search(questions[0], 1, mode="dense")[0].text


def test_chroma_export_langchain_app_ranks_like_ragtune(run_dir: Path, tuned: Retriever, questions: list[str],
                                                       tmp_path: Path) -> None:
    pytest.importorskip("chromadb", reason="pip install 'ragtune[chroma]'")
    from langchain_chroma import Chroma

    export(run_dir, "chroma", tmp_path / "c")
    app = Chroma(collection_name="docs", embedding_function=lc_embeddings(run_dir / "model"),
                 persist_directory=str(tmp_path / "c"))
    got = [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions]
    assert got == dense_top(tuned, questions)
    hit = tuned.search(questions[1], 1, mode="dense")[0]
    assert app.similarity_search(questions[1], k=1)[0].page_content == hit.text


def test_lancedb_export_llamaindex_app_ranks_like_ragtune(run_dir: Path, tuned: Retriever, questions: list[str],
                                                         tmp_path: Path) -> None:
    lancedb = pytest.importorskip("lancedb", reason="pip install 'ragtune[lancedb]'")
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.lancedb import LanceDBVectorStore

    export(run_dir, "lancedb", tmp_path / "l")
    store = LanceDBVectorStore(uri=str(tmp_path / "l"), table_name="docs")
    retriever = VectorStoreIndex.from_vector_store(store, embed_model=li_embeddings(run_dir / "model")) \
        .as_retriever(similarity_top_k=K)
    got = [[n.node.metadata["chunk_id"] for n in retriever.retrieve(q)] for q in questions]
    assert got == dense_top(tuned, questions)
    # The full-text index is there: LanceDB's own keyword search finds a chunk by its words.
    table = lancedb.connect(str(tmp_path / "l")).open_table("docs")
    text = tuned.chunks[3].text
    words = " ".join(w for w in text.split() if w.isalpha() and len(w) > 6)[:80]
    found = table.search(words, query_type="fts").limit(K).to_list()
    assert tuned.chunks[3].id in [r["id"] for r in found]


def test_export_refuses_an_existing_collection(run_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    export(run_dir, "qdrant", tmp_path / "q")
    capsys.readouterr()
    assert main(["export", str(run_dir), "--to", "qdrant", str(tmp_path / "q"), "--collection", "docs"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "ragtune reindex" in err
    assert main(["export", str(run_dir), "--to", "pinecone", str(tmp_path / "p")]) == 1
    assert "qdrant, chroma or lancedb" in capsys.readouterr().err


def test_a_missing_store_client_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from ragtune.errors import StoreError
    from ragtune.stores import open_store

    monkeypatch.setitem(sys.modules, "lancedb", None)  # as if it were not installed
    with pytest.raises(StoreError, match=r"pip install 'ragtune\[lancedb\]'"):
        open_store("lancedb", "anywhere")


# --- hybrid in Qdrant -----------------------------------------------------------------


def overlap(a: list[list[str]], b: list[list[str]]) -> float:
    """Mean share of one list's top K found in the other's."""
    return float(np.mean([len(set(x) & set(y)) / max(len(x), 1) for x, y in zip(a, b)]))


def test_qdrant_sparse_vector_is_ragtunes_bm25(run_dir: Path, tuned: Retriever, questions: list[str],
                                               tmp_path: Path) -> None:
    from qdrant_client import models

    from ragtune.stores.base import sparse_query
    from ragtune.stores.qdrant import SPARSE

    export(run_dir, "qdrant", tmp_path / "q")
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        got, want = [], []
        for q in questions:
            indices, values = sparse_query(q)
            points = client.query_points("docs", query=models.SparseVector(indices=indices, values=values),
                                         using=SPARSE, limit=K, with_payload=True).points
            got.append([(p.payload["chunk_id"], round(p.score, 3)) for p in points])
            want.append([(h.chunk_id, round(h.score, 3)) for h in tuned.search(q, K, mode="bm25")])
    finally:
        client.close()
    # Same words, same IDF, same length normalisation: the server's sparse scores are bm25s's own.
    # Chunks with equal scores may come in either order, and a tie at rank K either one.
    for g, w in zip(got, want):
        assert [s for _, s in g] == [s for _, s in w]
        assert {c for c, s in g if s > g[-1][1]} == {c for c, s in w if s > w[-1][1]}


def test_qdrant_server_side_hybrid_ranks_like_ragtunes_hybrid(run_dir: Path, tuned: Retriever, questions: list[str],
                                                             tmp_path: Path) -> None:
    from ragtune.retrieval import embed
    from ragtune.stores.qdrant import hybrid_search

    export(run_dir, "qdrant", tmp_path / "q")
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        vectors = embed(tuned.model, questions)
        got = {fusion: [[p.payload["chunk_id"] for p in hybrid_search(client, "docs", v, q, K, tuned.hybrid_weight,
                                                                     fusion=fusion)]
                        for q, v in zip(questions, vectors)] for fusion in ("rrf", "dbsf")}
    finally:
        client.close()
    want = [[h.chunk_id for h in tuned.search(q, K, mode="hybrid")] for q in questions]
    for fusion, ranked in got.items():
        agreement = overlap(ranked, want)
        print(f"\nQdrant hybrid ({fusion}, weight {tuned.hybrid_weight}) vs ragtune hybrid: top-{K} overlap "
              f"{agreement:.3f}, same top 1 on {sum(g[0] == w[0] for g, w in zip(ranked, want))}/{len(questions)}")
        # Qdrant's fusions and ragtune's min-max score fusion differ in detail: most of the top 5 must agree.
        assert agreement >= 0.6
