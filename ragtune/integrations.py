"""A finished run as a LangChain or LlamaIndex retriever: its model, passage index and BM25, as one object.

    from ragtune import Retriever
    retriever = Retriever.load("runs/demo")
    lc = retriever.as_langchain(k=5)          # a langchain_core BaseRetriever
    docs = lc.invoke("How should incidents be escalated?")
    li = retriever.as_llamaindex(k=5)         # a llama_index.core BaseRetriever
    nodes = li.retrieve("How should incidents be escalated?")

Each result carries the chunk's text, and its source file, pages, chunk id and
score as metadata. Both frameworks are optional: each adapter imports its own
and says what to install when it is missing.
"""

from __future__ import annotations

from typing import Any


def _hit_metadata(hit: Any) -> dict[str, Any]:
    # score_kind says what the score is: a cosine, a raw BM25 score, or a hybrid score that ranks within one
    # query only (ragtune.search.SCORE_KINDS); a framework's score cutoff fits the first alone.
    return {
        "source": hit.source,
        "pages": list(hit.pages),
        "chunk_id": hit.chunk_id,
        "score": hit.score,
        "score_kind": hit.kind,
        "rank": hit.rank,
    }


def langchain_retriever(retriever: Any, k: int = 5, mode: str | None = None) -> Any:
    """`retriever` (a ragtune.Retriever) as a langchain_core BaseRetriever returning Documents."""
    try:
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever
    except ImportError:
        raise ImportError("as_langchain needs langchain-core: pip install langchain-core") from None

    class RagtuneRetriever(BaseRetriever):
        """Chunks from a ragtune run: its fine-tuned model and, in hybrid mode, BM25."""

        ragtune: Any
        k: int = 5
        mode: str | None = None

        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Any]:
            return [
                Document(page_content=h.text, metadata=_hit_metadata(h))
                for h in self.ragtune.search(query, self.k, self.mode)
            ]

    return RagtuneRetriever(ragtune=retriever, k=k, mode=mode)


def llamaindex_retriever(retriever: Any, k: int = 5, mode: str | None = None) -> Any:
    """`retriever` (a ragtune.Retriever) as a llama_index.core BaseRetriever returning NodeWithScore."""
    try:
        from llama_index.core.retrievers import BaseRetriever
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    except ImportError:
        raise ImportError("as_llamaindex needs llama-index-core: pip install llama-index-core") from None

    class RagtuneRetriever(BaseRetriever):
        """Chunks from a ragtune run: its fine-tuned model and, in hybrid mode, BM25."""

        def __init__(self) -> None:
            super().__init__()

        def _retrieve(self, query_bundle: QueryBundle) -> list[Any]:
            return [
                NodeWithScore(node=TextNode(text=h.text, id_=h.chunk_id, metadata=_hit_metadata(h)), score=h.score)
                for h in retriever.search(query_bundle.query_str, k, mode)
            ]

    return RagtuneRetriever()
