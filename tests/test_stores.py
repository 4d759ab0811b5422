"""Export a run into Qdrant, Chroma and LanceDB, and reindex an app's own collection, with real stores.

Each app below knows only the collection's name and the model folder, and opens it with the
framework's own store class; its top 5 must be ragtune's dense top 5.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragtune.cli import main
from ragtune.records import Chunk, Pair, read_jsonl
from ragtune.search import Retriever, load_retriever
from tests.support.runs import finished_tiny_run
from tests.test_cli import assert_one_error_line
from tests.test_search import write_pdfs

qdrant_client = pytest.importorskip("qdrant_client", reason="pip install 'ragtune[qdrant]'")

K = 5
N_QUESTIONS = 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A finished tiny run with one vector per chunk (passage_words 0), as a store holds it."""
    root = tmp_path_factory.mktemp("stores")
    return finished_tiny_run(root, write_pdfs(root / "docs"), tiny_model_dir, passage_words=0)


@pytest.fixture(scope="module")
def tuned(run_dir: Path) -> Retriever:
    return load_retriever(run_dir, "tuned", device="cpu")


@pytest.fixture(scope="module")
def chunks(run_dir: Path) -> list[Chunk]:
    return read_jsonl(run_dir / "index" / "chunks.jsonl", Chunk)


@pytest.fixture(scope="module")
def questions(run_dir: Path) -> list[str]:
    pairs = read_jsonl(run_dir / "work" / "pairs_test.jsonl", Pair) + read_jsonl(
        run_dir / "work" / "pairs_train.jsonl", Pair
    )
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


def test_qdrant_export_langchain_app_ranks_like_ragtune(
    run_dir: Path, tuned: Retriever, questions: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from langchain_qdrant import QdrantVectorStore

    export(run_dir, "qdrant", tmp_path / "q")
    assert "langchain-sparse" in capsys.readouterr().out
    # The app: the collection name, the folder and the tuned model, nothing from ragtune.
    app = QdrantVectorStore.from_existing_collection(
        collection_name="docs", path=str(tmp_path / "q"), embedding=lc_embeddings(run_dir / "model")
    )
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


def test_qdrant_export_llamaindex_app_ranks_like_ragtune(
    run_dir: Path, tuned: Retriever, questions: list[str], tmp_path: Path
) -> None:
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    export(run_dir, "qdrant", tmp_path / "q")
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        store = QdrantVectorStore(collection_name="docs", client=client)
        retriever = VectorStoreIndex.from_vector_store(
            store, embed_model=li_embeddings(run_dir / "model")
        ).as_retriever(similarity_top_k=K)
        got = [[n.node.metadata["chunk_id"] for n in retriever.retrieve(q)] for q in questions]
        first = retriever.retrieve(questions[0])[0].node
    finally:
        client.close()
    assert got == dense_top(tuned, questions)
    assert first.get_content() == tuned.search(questions[0], 1, mode="dense")[0].text


def test_chroma_export_langchain_app_ranks_like_ragtune(
    run_dir: Path, tuned: Retriever, questions: list[str], tmp_path: Path
) -> None:
    pytest.importorskip("chromadb", reason="pip install 'ragtune[chroma]'")
    from langchain_chroma import Chroma

    export(run_dir, "chroma", tmp_path / "c")
    app = Chroma(
        collection_name="docs",
        embedding_function=lc_embeddings(run_dir / "model"),
        persist_directory=str(tmp_path / "c"),
    )
    got = [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions]
    assert got == dense_top(tuned, questions)
    hit = tuned.search(questions[1], 1, mode="dense")[0]
    assert app.similarity_search(questions[1], k=1)[0].page_content == hit.text


def test_lancedb_export_llamaindex_app_ranks_like_ragtune(
    run_dir: Path, tuned: Retriever, questions: list[str], tmp_path: Path
) -> None:
    lancedb = pytest.importorskip("lancedb", reason="pip install 'ragtune[lancedb]'")
    from llama_index.core import VectorStoreIndex
    from llama_index.vector_stores.lancedb import LanceDBVectorStore

    export(run_dir, "lancedb", tmp_path / "l")
    store = LanceDBVectorStore(uri=str(tmp_path / "l"), table_name="docs")
    retriever = VectorStoreIndex.from_vector_store(store, embed_model=li_embeddings(run_dir / "model")).as_retriever(
        similarity_top_k=K
    )
    got = [[n.node.metadata["chunk_id"] for n in retriever.retrieve(q)] for q in questions]
    assert got == dense_top(tuned, questions)
    # The full-text index is there: LanceDB's own keyword search finds a chunk by its words.
    table = lancedb.connect(str(tmp_path / "l")).open_table("docs")
    text = tuned.chunks[3].text
    words = " ".join(w for w in text.split() if w.isalpha() and len(w) > 6)[:80]
    found = table.search(words, query_type="fts").limit(K).to_list()
    assert tuned.chunks[3].id in [r["id"] for r in found]


def test_export_refuses_an_existing_collection(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export(run_dir, "qdrant", tmp_path / "q")
    capsys.readouterr()
    assert main(["export", str(run_dir), "--to", "qdrant", str(tmp_path / "q"), "--collection", "docs"]) == 1
    assert_one_error_line(capsys.readouterr().err, "already exists", "ragtune reindex")
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


def test_qdrant_sparse_vector_is_ragtunes_bm25(
    run_dir: Path, tuned: Retriever, questions: list[str], tmp_path: Path
) -> None:
    from qdrant_client import models

    from ragtune.stores.base import sparse_query
    from ragtune.stores.qdrant import SPARSE

    export(run_dir, "qdrant", tmp_path / "q")
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        got, want = [], []
        for q in questions:
            indices, values = sparse_query(q)
            points = client.query_points(
                "docs",
                query=models.SparseVector(indices=indices, values=values),
                using=SPARSE,
                limit=K,
                with_payload=True,
            ).points
            got.append([(p.payload["chunk_id"], round(p.score, 3)) for p in points])
            want.append([(h.chunk_id, round(h.score, 3)) for h in tuned.search(q, K, mode="bm25")])
    finally:
        client.close()
    # Same words, same IDF, same length normalisation: the server's sparse scores are bm25s's own.
    # Chunks with equal scores may come in either order, and a tie at rank K either one.
    for g, w in zip(got, want):
        assert [s for _, s in g] == [s for _, s in w]
        assert {c for c, s in g if s > g[-1][1]} == {c for c, s in w if s > w[-1][1]}


def test_qdrant_server_side_hybrid_ranks_like_ragtunes_hybrid(
    run_dir: Path, tuned: Retriever, questions: list[str], tmp_path: Path
) -> None:
    from ragtune.retrieval import embed
    from ragtune.stores.qdrant import hybrid_search

    export(run_dir, "qdrant", tmp_path / "q")
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        vectors = embed(tuned.model, questions)
        got = {
            fusion: [
                [
                    p.payload["chunk_id"]
                    for p in hybrid_search(client, "docs", v, q, K, tuned.hybrid_weight, fusion=fusion)
                ]
                for q, v in zip(questions, vectors)
            ]
            for fusion in ("rrf", "dbsf")
        }
    finally:
        client.close()
    want = [[h.chunk_id for h in tuned.search(q, K, mode="hybrid")] for q in questions]
    for fusion, ranked in got.items():
        agreement = overlap(ranked, want)
        print(
            f"\nQdrant hybrid ({fusion}, weight {tuned.hybrid_weight}) vs ragtune hybrid: top-{K} overlap "
            f"{agreement:.3f}, same top 1 on {sum(g[0] == w[0] for g, w in zip(ranked, want))}/{len(questions)}"
        )
        # Qdrant's fusions and ragtune's min-max score fusion differ in detail: most of the top 5 must agree.
        assert agreement >= 0.6


# --- reindex --------------------------------------------------------------------------


def app_metadata(c: Chunk) -> dict:
    """What an app might keep beside its text: its own keys, not ragtune's."""
    return {"chunk_id": c.id, "file": c.source, "page": c.pages[0]}


def app_ids(chunks: list[Chunk]) -> list[str]:
    import uuid

    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"app/{c.id}")) for c in chunks]


def qdrant_app_collection(path: Path, name: str, chunks: list[Chunk], model_dir: Path) -> dict:
    """A collection as a LangChain app builds it with the base model; returns {id: payload}."""
    from langchain_qdrant import QdrantVectorStore

    store = QdrantVectorStore.from_texts(
        [c.text for c in chunks],
        lc_embeddings(model_dir),
        metadatas=[app_metadata(c) for c in chunks],
        ids=app_ids(chunks),
        path=str(path),
        collection_name=name,
    )
    store.client.close()
    return qdrant_payloads(path, name)


def qdrant_payloads(path: Path, name: str) -> dict:
    client = qdrant_client.QdrantClient(path=str(path))
    try:
        points, _ = client.scroll(name, limit=10_000, with_payload=True)
        return {str(p.id): p.payload for p in points}
    finally:
        client.close()


def langchain_qdrant_top(path: Path, name: str, model_dir: Path, questions: list[str]) -> list[list[str]]:
    from langchain_qdrant import QdrantVectorStore

    app = QdrantVectorStore.from_existing_collection(
        collection_name=name, path=str(path), embedding=lc_embeddings(model_dir)
    )
    try:
        return [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions]
    finally:
        app.client.close()


def test_qdrant_reindex_keeps_every_record_and_ranks_like_ragtune(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = qdrant_app_collection(tmp_path / "q", "app", chunks, tiny_model_dir)
    old_top = langchain_qdrant_top(tmp_path / "q", "app", tiny_model_dir, questions)
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", "app"]) == 0
    out = capsys.readouterr().out.strip()
    new = out.split('collection_name="')[1].split('"')[0]
    assert out.count("\n") == 0 and new.startswith("app-ragtune-")
    # Every id and payload made it; the old collection is untouched and still answers as before.
    assert qdrant_payloads(tmp_path / "q", new) == before
    assert qdrant_payloads(tmp_path / "q", "app") == before
    assert langchain_qdrant_top(tmp_path / "q", "app", tiny_model_dir, questions) == old_top
    assert langchain_qdrant_top(tmp_path / "q", new, run_dir / "model", questions) == dense_top(tuned, questions)


def test_qdrant_reindex_moves_an_alias_and_drop_old_makes_one(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from qdrant_client import models

    before = qdrant_app_collection(tmp_path / "q", "app_v1", chunks, tiny_model_dir)
    qdrant_app_collection(tmp_path / "q", "other", chunks[:5], tiny_model_dir)
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="app_v1", alias_name="app"))
        ]
    )
    client.close()
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", "app"]) == 0
    assert "alias app now points at app_v1-ragtune-" in capsys.readouterr().out
    # The app's name now answers with the tuned vectors; the old collection is kept.
    assert langchain_qdrant_top(tmp_path / "q", "app", run_dir / "model", questions) == dense_top(tuned, questions)
    assert qdrant_payloads(tmp_path / "q", "app_v1") == before
    # A plain collection name becomes an alias only with --drop-old.
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", "other", "--drop-old"]) == 0
    assert "deleted collection other; other is now an alias of other-ragtune-" in capsys.readouterr().out
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    names = {c.name for c in client.get_collections().collections}
    client.close()
    assert "other" not in names and len(qdrant_payloads(tmp_path / "q", "other")) == 5


def test_qdrant_reindex_with_a_second_model_starts_again_from_the_original(
    run_dir: Path, chunks: list[Chunk], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from ragtune.models import load_model, weights_digest
    from ragtune.stores import close, open_store, reindex

    before = qdrant_app_collection(tmp_path / "q", "app", chunks, tiny_model_dir)
    tuned_model, base_model = load_model(str(run_dir / "model"), "cpu"), load_model(str(tiny_model_dir), "cpu")
    store = open_store("qdrant", tmp_path / "q")
    try:
        first = reindex(store, "app", tuned_model, weights_digest(tuned_model), drop_old=True)
        # "app" is now an alias of the first reindex and the original is gone: a second model re-embeds
        # the first reindex, named after the original, not "app-ragtune-a-ragtune-b".
        second = reindex(store, "app", base_model, "b" * 20, base_model=base_model)
        assert store.resolve("app") == second.new == "app-ragtune-bbbbbbbbbbbb"
        assert second.old == first.new and second.n_encoded == len(chunks)
    finally:
        close(store)
    assert qdrant_payloads(tmp_path / "q", "app") == before


def test_reindex_interrupted_halfway_resumes_without_duplicates(
    run_dir: Path, tuned: Retriever, chunks: list[Chunk], questions: list[str], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from ragtune.models import load_model, weights_digest
    from ragtune.stores import close, open_store, reindex

    before = qdrant_app_collection(tmp_path / "q", "app", chunks, tiny_model_dir)
    model = load_model(str(run_dir / "model"), "cpu")
    digest = weights_digest(model)

    def stop_halfway(done: int, total: int) -> None:
        if done >= total // 2:
            raise KeyboardInterrupt

    store = open_store("qdrant", tmp_path / "q")
    try:
        with pytest.raises(KeyboardInterrupt):
            reindex(store, "app", model, digest, batch_size=8, progress=stop_halfway)
        partial = store.count(f"app-ragtune-{digest[:12]}")
        assert 0 < partial < len(chunks)
        result = reindex(store, "app", model, digest, batch_size=8)
    finally:
        close(store)
    assert result.n_encoded == len(chunks) - partial  # the finished records were not encoded again
    after = qdrant_payloads(tmp_path / "q", result.new)
    assert after == before and len(after) == len(chunks)
    assert langchain_qdrant_top(tmp_path / "q", result.new, run_dir / "model", questions) == dense_top(tuned, questions)


def test_reindex_refuses_a_collection_the_base_model_did_not_embed(
    run_dir: Path, chunks: list[Chunk], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from qdrant_client import models

    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    rng = np.random.default_rng(0)
    for name, dim in (("small", 8), ("other_model", 32)):
        client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
        client.upsert(
            name,
            points=[
                models.PointStruct(id=i, vector=rng.normal(size=dim).tolist(), payload={"page_content": c.text})
                for i, c in enumerate(chunks[:20])
            ],
        )
    client.close()
    for name, says in (
        ("small", "holds vectors of size 8, the tuned model makes 32"),
        ("other_model", "was not embedded by this run's base model"),
    ):
        assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", name]) == 1
        assert_one_error_line(capsys.readouterr().err, says)
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    assert sorted(c.name for c in client.get_collections().collections) == ["other_model", "small"]
    client.close()


def test_chroma_reindex_keeps_every_record_and_ranks_like_ragtune(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chromadb = pytest.importorskip("chromadb", reason="pip install 'ragtune[chroma]'")
    from langchain_chroma import Chroma

    Chroma.from_texts(
        [c.text for c in chunks],
        lc_embeddings(tiny_model_dir),
        metadatas=[app_metadata(c) for c in chunks],
        ids=app_ids(chunks),
        persist_directory=str(tmp_path / "c"),
        collection_name="app",
    )
    before = chromadb.PersistentClient(path=str(tmp_path / "c")).get_collection("app").get()
    assert main(["reindex", str(run_dir), "--chroma", str(tmp_path / "c"), "--collection", "app"]) == 0
    new = capsys.readouterr().out.split('collection_name="')[1].split('"')[0]
    client = chromadb.PersistentClient(path=str(tmp_path / "c"))
    for name in ("app", new):
        got = client.get_collection(name).get()
        assert {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])} == {
            i: (d, m) for i, d, m in zip(before["ids"], before["documents"], before["metadatas"])
        }
    app = Chroma(
        collection_name=new, embedding_function=lc_embeddings(run_dir / "model"), persist_directory=str(tmp_path / "c")
    )
    assert [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions] == dense_top(
        tuned, questions
    )


def test_lancedb_reindex_keeps_every_record_and_ranks_like_ragtune(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lancedb = pytest.importorskip("lancedb", reason="pip install 'ragtune[lancedb]'")
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.lancedb import LanceDBVectorStore

    # The app: a LlamaIndex index of its own nodes in LanceDB, embedded by the base model.
    nodes = [TextNode(text=c.text, id_=i, metadata=app_metadata(c)) for c, i in zip(chunks, app_ids(chunks))]
    store = LanceDBVectorStore(uri=str(tmp_path / "l"), table_name="app")
    VectorStoreIndex(
        nodes,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=li_embeddings(tiny_model_dir),
    )
    db = lancedb.connect(str(tmp_path / "l"))
    before = db.open_table("app").to_arrow().drop_columns(["vector"]).to_pylist()
    assert main(["reindex", str(run_dir), "--lancedb", str(tmp_path / "l"), "--collection", "app"]) == 0
    new = capsys.readouterr().out.split('open_table("')[1].split('"')[0]
    for name in ("app", new):
        rows = db.open_table(name).to_arrow().drop_columns(["vector"]).to_pylist()
        assert sorted(rows, key=lambda r: r["id"]) == sorted(before, key=lambda r: r["id"])
    retriever = VectorStoreIndex.from_vector_store(
        LanceDBVectorStore(uri=str(tmp_path / "l"), table_name=new), embed_model=li_embeddings(run_dir / "model")
    ).as_retriever(similarity_top_k=K)
    assert [[n.node.metadata["chunk_id"] for n in retriever.retrieve(q)] for q in questions] == dense_top(
        tuned, questions
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """`chroma run` on a loopback port, as an app's Chroma server; its URL."""
    pytest.importorskip("chromadb", reason="pip install 'ragtune[chroma]'")
    import urllib.request

    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.skip("the chromadb package installed no `chroma` command")
    port = free_port()
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"chroma run exited with {proc.returncode}")
                time.sleep(0.1)
        else:
            pytest.fail("chroma run did not answer within 30 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chroma_server_export_and_reindex_over_http(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    chroma_server: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import chromadb
    from langchain_chroma import Chroma

    port = int(chroma_server.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    export(run_dir, "chroma", chroma_server)
    app = Chroma(collection_name="docs", embedding_function=lc_embeddings(run_dir / "model"), client=client)
    assert [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions] == dense_top(
        tuned, questions
    )
    # An app's own collection on the server, embedded by the base model, re-embedded over HTTP.
    Chroma.from_texts(
        [c.text for c in chunks],
        lc_embeddings(tiny_model_dir),
        ids=app_ids(chunks),
        metadatas=[app_metadata(c) for c in chunks],
        client=client,
        collection_name="app",
    )
    capsys.readouterr()
    assert main(["reindex", str(run_dir), "--chroma", chroma_server, "--collection", "app"]) == 0
    new = capsys.readouterr().out.split('collection_name="')[1].split('"')[0]
    assert sorted(client.get_collection(new).get(include=[])["ids"]) == sorted(app_ids(chunks))
    app = Chroma(collection_name=new, embedding_function=lc_embeddings(run_dir / "model"), client=client)
    assert [[d.metadata["chunk_id"] for d in app.similarity_search(q, k=K)] for q in questions] == dense_top(
        tuned, questions
    )


def test_reindex_refuses_a_missing_store_or_collection_without_creating_either(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "nowhere"), "--collection", "app"]) == 1
    assert_one_error_line(capsys.readouterr().err, "nowhere does not exist")
    assert not (tmp_path / "nowhere").exists()
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    client.close()
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", "app"]) == 1
    assert_one_error_line(capsys.readouterr().err, "has no collection app")


def test_qdrant_reindex_of_a_llamaindex_collection(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    # LlamaIndex keeps the text inside "_node_content", and its own keys beside the metadata.
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    nodes = [TextNode(text=c.text, id_=i, metadata=app_metadata(c)) for c, i in zip(chunks, app_ids(chunks))]
    VectorStoreIndex(
        nodes,
        storage_context=StorageContext.from_defaults(
            vector_store=QdrantVectorStore(collection_name="app", client=client)
        ),
        embed_model=li_embeddings(tiny_model_dir),
    )
    client.close()
    before = qdrant_payloads(tmp_path / "q", "app")
    assert "page_content" not in next(iter(before.values()))
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", "app"]) == 0
    new = capsys.readouterr().out.split('collection_name="')[1].split('"')[0]
    assert qdrant_payloads(tmp_path / "q", new) == before
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        retriever = VectorStoreIndex.from_vector_store(
            QdrantVectorStore(collection_name=new, client=client), embed_model=li_embeddings(run_dir / "model")
        ).as_retriever(similarity_top_k=K)
        got = [[n.node.metadata["chunk_id"] for n in retriever.retrieve(q)] for q in questions]
    finally:
        client.close()
    assert got == dense_top(tuned, questions)


def test_qdrant_reindex_writes_a_named_dense_vector_and_keeps_sparse_ones(
    run_dir: Path,
    tuned: Retriever,
    chunks: list[Chunk],
    questions: list[str],
    tiny_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from qdrant_client import models

    from ragtune.models import load_model
    from ragtune.retrieval import embed

    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "app",
        vectors_config={"dense": models.VectorParams(size=32, distance=models.Distance.COSINE)},
        sparse_vectors_config={"words": models.SparseVectorParams()},
    )
    base = embed(load_model(str(tiny_model_dir), "cpu"), [c.text for c in chunks])
    client.upsert(
        "app",
        points=[
            models.PointStruct(
                id=i,
                vector={"dense": v.tolist(), "words": models.SparseVector(indices=[i, 1000 + i], values=[1.0, 0.5])},
                payload={"text": c.text, "chunk_id": c.id},
            )
            for i, (c, v) in enumerate(zip(chunks, base))
        ],
    )
    client.close()
    assert main(["reindex", str(run_dir), "--qdrant", str(tmp_path / "q"), "--collection", "app"]) == 0
    new = capsys.readouterr().out.split('collection_name="')[1].split('"')[0]
    client = qdrant_client.QdrantClient(path=str(tmp_path / "q"))
    try:
        points, _ = client.scroll(new, limit=10_000, with_vectors=True)
        assert sorted(p.id for p in points) == list(range(len(chunks)))
        assert all(p.vector["words"].indices == [p.id, 1000 + p.id] for p in points)
        vectors = embed(tuned.model, questions)
        got = [
            [p.payload["chunk_id"] for p in client.query_points(new, query=v.tolist(), using="dense", limit=K).points]
            for v in vectors
        ]
    finally:
        client.close()
    assert got == dense_top(tuned, questions)
