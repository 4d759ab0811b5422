"""A ragtune model folder drops into LangChain and LlamaIndex by path, and retrieves what ragtune's index does.

Each framework must give the same vectors as sentence-transformers (normalised, as in
ragtune's index), so its query vectors can search an index ragtune built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragtune.retrieval import build_index, embed

CHUNKS = [
    "Zero trust architecture assumes no implicit trust is granted to assets based on network location.",
    "Generative AI systems can produce confabulated content that appears factual but is false.",
    "Data centers consume large amounts of electricity and water for cooling their servers.",
    "Red-teaming exercises probe a model for harmful outputs before it is deployed to users.",
    "Provenance metadata records where a piece of content came from and how it was changed.",
]


@pytest.fixture(scope="module")
def expected(tiny_model_dir: Path) -> tuple[np.ndarray, object]:
    """sentence-transformers' normalised chunk vectors and the FAISS index ragtune builds from them."""
    from sentence_transformers import SentenceTransformer

    vecs = embed(SentenceTransformer(str(tiny_model_dir), device="cpu"), CHUNKS)
    return vecs, build_index(vecs)


def check_retrieval(doc_vecs: list[list[float]], query_vecs: list[list[float]], expected: tuple) -> None:
    vecs, index = expected
    np.testing.assert_allclose(np.asarray(doc_vecs, dtype=np.float32), vecs, atol=1e-5)
    # Each chunk's own text, embedded as a query by the framework, finds that chunk first in ragtune's index.
    _, top = index.search(np.asarray(query_vecs, dtype=np.float32), 1)
    assert top[:, 0].tolist() == list(range(len(CHUNKS)))


def test_langchain_huggingface_embeddings(tiny_model_dir: Path, expected: tuple) -> None:
    # langchain-huggingface (every release up to 1.2.3) requires huggingface-hub<2, but ragtune.hub
    # needs huggingface-hub 2 (it catches httpx2 errors), so it cannot go in the `test` extra; install
    # it beside ragtune with `pip install --no-deps langchain-huggingface` to run this test.
    lc = pytest.importorskip("langchain_huggingface", reason="langchain-huggingface is not installed (see comment)")
    emb = lc.HuggingFaceEmbeddings(
        model_name=str(tiny_model_dir),
        model_kwargs={"device": "cpu"},
        # ragtune's index holds normalised vectors (inner product = cosine): normalise here too.
        encode_kwargs={"normalize_embeddings": True},
    )
    check_retrieval(emb.embed_documents(CHUNKS), [emb.embed_query(t) for t in CHUNKS], expected)


def test_llama_index_huggingface_embedding(tiny_model_dir: Path, expected: tuple) -> None:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    emb = HuggingFaceEmbedding(model_name=str(tiny_model_dir), device="cpu")  # normalize=True by default
    check_retrieval(emb.get_text_embedding_batch(CHUNKS), [emb.get_query_embedding(t) for t in CHUNKS], expected)
