"""The drop-in side of a run: search its index (the LlamaIndex dataset import/export is in llamaindex_dataset.py).

A finished run directory holds everything a RAG app needs:

    RUN_DIR/model/              the fine-tuned sentence-transformers model
    RUN_DIR/index/index.faiss   IndexFlatIP over its normalised chunk embeddings
    RUN_DIR/index/chunks.jsonl  the chunks, in index order

>>> [h.chunk_id for h in search(Path("runs/latest"), "what is zero trust?", k=2)]  # doctest: +SKIP
['c-1a2b…', 'c-9f8e…']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, TypeVar

from .errors import ModelError, did_you_mean_path
from .fileio import read_json
from .integrations import langchain_retriever, llamaindex_retriever
from .models import FETCH_AGAIN, load_model, pick_device, resolve_base_model
from .records import Chunk, RunDirError, read_jsonl
from .retrieval import (
    BM25Index,
    DenseIndex,
    base_vectors_about,
    dense_index,
    embed,
    fused_scores,
    load_base_vectors,
    read_settings,
)
from .rundir import rerun_command

Which = Literal["tuned", "base"]
T = TypeVar("T")


ScoreKind = Literal["cosine", "bm25", "hybrid"]
# What each kind of score is, for printing beside it.
SCORE_KINDS: dict[str, str] = {
    "cosine": "cosine similarity of query and chunk (dense); comparable across queries",
    "bm25": "raw BM25 score; grows with query length and rare words, comparable only within one query",
    "hybrid": "weighted sum of the dense and BM25 scores, each scaled to [0, 1] within this query's results: "
    "it ranks within one query only (the top hit is near 1), so it takes no fixed cutoff",
}


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. What `score` is depends on `kind` (see SCORE_KINDS): "cosine" (dense search),
    "bm25" (raw BM25 score) or "hybrid" (a score that ranks within one query only). `dense` and `bm25`
    are the raw cosine and BM25 score that went into it, None where that retriever did not return the chunk.

    >>> print(Hit(1, 0.8123, "c-1", "a.pdf", (3, 4), "Zero trust assumes no implicit trust."))
     1. 0.812 cosine  a.pdf pp. 3-4  [c-1]
        Zero trust assumes no implicit trust.
    """

    rank: int
    score: float
    chunk_id: str
    source: str
    pages: tuple[int, ...]
    text: str
    kind: ScoreKind = "cosine"
    dense: float | None = None
    bm25: float | None = None

    def __str__(self) -> str:
        import textwrap

        head = (
            f"{self.rank:>2}. {self.score:.3f} {self.kind}  {self.source} {pages_label(self.pages)}  [{self.chunk_id}]"
        )
        body = textwrap.wrap(" ".join(self.text.split()), width=76, max_lines=2, placeholder=" …")
        return "\n".join([head, *("    " + line for line in body)])

    def __repr__(self) -> str:
        words = " ".join(self.text.split())
        start = words if len(words) <= 40 else words[:40].rstrip() + "…"
        parts = "".join(
            f", {name}={value:.4f}"
            for name, value in (("dense", self.dense), ("bm25", self.bm25))
            if value is not None and self.kind == "hybrid"
        )
        return (
            f"Hit(rank={self.rank}, score={self.score:.4f}, kind={self.kind!r}{parts}, source={self.source!r}, "
            f"pages={self.pages!r}, chunk_id={self.chunk_id!r}, text={start!r})"
        )


def pages_label(pages: Sequence[int]) -> str:
    """Page numbers as a reader would write them.

    >>> pages_label((3,)), pages_label((3, 4, 5)), pages_label(())
    ('p. 3', 'pp. 3-5', '')
    """
    if not pages:
        return ""
    return f"p. {pages[0]}" if len(pages) == 1 else f"pp. {pages[0]}-{pages[-1]}"


Mode = Literal["dense", "hybrid", "bm25"]
MODES = ("dense", "hybrid", "bm25")


@dataclass
class Retriever:
    """A finished run's model and indexes: load once, then `search` many queries.

        >>> from ragtune import Retriever
        >>> r = Retriever.load("runs/demo")                          # doctest: +SKIP
        >>> [(h.source, h.pages) for h in r.search("How are incidents escalated?", k=3)]  # doctest: +SKIP
        [('nist_sp_800_61r2.pdf', (41, 42)), ...]

    `mode` "dense" ranks chunks by the model alone (a chunk scores its best passage
    blended with its own vector); "hybrid" adds BM25 with the weight the run chose on its
    validation questions; "bm25" is BM25 alone. Without `mode`, `search` uses the
    run's recommendation (`mode`): hybrid where it beat the model alone on the
    held-out questions, dense otherwise.

    Each mode scores on its own scale (`Hit.kind`): dense gives cosines, comparable across queries; bm25 raw
    BM25 scores; hybrid a weighted sum of both lists scaled within one query, which ranks within that query
    only (its top hit is near 1 whatever the match). A fixed score cutoff makes sense for dense cosines only.
    """

    model: Any
    index: Any  # retrieval.DenseIndex
    chunks: list[Chunk]
    bm25: Any = None  # retrieval.BM25Index, when the run saved one
    hybrid_weight: float = 0.5
    mode: Mode = "dense"
    run_dir: Path | None = None
    model_source: str = ""

    def __repr__(self) -> str:
        # Not the dataclass repr: that prints every chunk's text, the model and a FAISS proxy (hundreds of KB).
        run = str(self.run_dir) if self.run_dir is not None else None
        rows = getattr(getattr(self.index, "index", None), "ntotal", None)
        return (
            f"Retriever(run={run!r}, mode={self.mode!r}, chunks={len(self.chunks)}, rows={rows}, "
            f"model={self.model_source or type(self.model).__name__!r})"
        )

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "") -> "Retriever":
        """The tuned model and the indexes of a finished run (its --out folder)."""
        return load_retriever(Path(run_dir), "tuned", device)

    def as_langchain(self, k: int = 5, mode: Mode | None = None) -> Any:
        """This retriever as a LangChain `BaseRetriever` (needs langchain-core)."""
        return langchain_retriever(self, k, mode)

    def as_llamaindex(self, k: int = 5, mode: Mode | None = None) -> Any:
        """This retriever as a LlamaIndex `BaseRetriever` (needs llama-index-core)."""
        return llamaindex_retriever(self, k, mode)

    def search(self, query: str, k: int = 5, mode: Mode | None = None) -> list[Hit]:
        mode = mode or self.mode
        if k < 1:
            raise ValueError(f"k must be >= 1, not {k}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode != "dense" and self.bm25 is None:
            raise RunDirError("this run has no BM25 index (index/bm25/); rerun `ragtune run` to build it")
        k = min(k, len(self.chunks))
        raw: dict[str, dict[int, float]] = {}
        if mode == "bm25":
            lexical = self.bm25.search([query], k)
            raw["bm25"] = _scores_by_position(lexical)
            ranked = list(raw["bm25"].items())
        else:
            dense = self.index.search(embed(self.model, [query]), k if mode == "dense" else max(10 * k, 100))
            raw["dense"] = _scores_by_position(dense)
            if mode == "dense":
                ranked = list(raw["dense"].items())
            else:
                lexical = self.bm25.search([query], max(10 * k, 100))
                raw["bm25"] = _scores_by_position(lexical)
                fused = fused_scores(dense, lexical, self.hybrid_weight)[0]
                ranked = sorted(fused.items(), key=lambda cs: -cs[1])[:k]
        kind: ScoreKind = {"dense": "cosine", "bm25": "bm25", "hybrid": "hybrid"}[mode]  # type: ignore[assignment]
        return [
            Hit(
                rank,
                score,
                self.chunks[c].id,
                self.chunks[c].source,
                tuple(self.chunks[c].pages),
                self.chunks[c].text,
                kind,
                raw.get("dense", {}).get(c),
                raw.get("bm25", {}).get(c),
            )
            for rank, (c, score) in enumerate(ranked, start=1)
        ]


def _scores_by_position(result: tuple[Any, Any]) -> dict[int, float]:
    """{chunk position: score} of the first query of a (scores, positions) search result, best first."""
    return {int(c): float(s) for s, c in zip(result[0][0], result[1][0]) if c >= 0}


# --- search ---------------------------------------------------------------------------


def _require(run_dir: Path, rels: Sequence[str]) -> None:
    """Raise one RunDirError naming everything missing, so the user fixes it in one go."""
    if not run_dir.is_dir():
        raise RunDirError(
            f"{run_dir} does not exist{did_you_mean_path(run_dir)}: pass the --out folder of a finished `ragtune run`"
        )
    missing = [rel for rel in rels if not (run_dir / rel).exists()]
    if missing and _holds_documents(run_dir):
        # Not `ragtune run DOCS --out {run_dir}`: that would write a run into the user's documents.
        raise RunDirError(
            f"{run_dir} holds documents, not a ragtune run: first `ragtune run {run_dir} --out "
            "runs/NAME`, then pass runs/NAME here"
        )
    if missing:
        raise RunDirError(
            f"{run_dir} is not a finished ragtune run (missing {', '.join(missing)}); "
            f"run `ragtune run DOCS --out {run_dir}` to finish it"
        )


# Files a user's documents folder holds, and a run directory never holds at its top.
DOCUMENT_SUFFIXES = frozenset(
    {".pdf", ".txt", ".md", ".docx", ".doc", ".pptx", ".ppt", ".htm", ".html", ".odt", ".rtf", ".epub"}
)


def _holds_documents(folder: Path) -> bool:
    """True for a folder of documents rather than a run (which has manifest.json or config.json)."""
    if any((folder / name).exists() for name in ("work/manifest.json", "manifest.json", "config.json")):
        return False
    try:
        return any(p.suffix.lower() in DOCUMENT_SUFFIXES and p.name != "report.html" for p in folder.iterdir())
    except OSError:
        return False


def base_model_of(run_dir: Path) -> str:
    """The base model a run started from, as something `load_model` accepts."""
    _require(run_dir, ["config.json"])
    cfg = read_json(run_dir / "config.json")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("base_model"), str):
        raise RunDirError(f'{run_dir / "config.json"} has no "base_model"; rerun `ragtune run` into this folder')
    return resolve_base_model(cfg["base_model"])


def load_retriever(run_dir: Path, which: Which = "tuned", device: str = "") -> Retriever:
    """The saved index with the tuned model, or an index built the same way with the run's base model."""
    if which not in ("tuned", "base"):
        raise ValueError(f"which must be 'tuned' or 'base', not {which!r}")
    run_dir = Path(run_dir)
    _require(
        run_dir,
        ["model/config.json", "index/index.faiss", "index/chunks.jsonl"] + (["config.json"] if which == "base" else []),
    )
    index_dir = run_dir / "index"
    try:
        chunks = read_jsonl(index_dir / "chunks.jsonl", Chunk)
    except RunDirError as e:
        raise RunDirError(f"{e}; rerun {rerun_command(run_dir)} to write it again") from None
    settings = _loaded(run_dir, index_dir / "retriever.json", lambda: read_settings(index_dir))
    bm25 = (
        _loaded(run_dir, index_dir / "bm25", lambda: BM25Index.load(index_dir / "bm25"))
        if (index_dir / "bm25").is_dir()
        else None
    )
    weight = float(settings.get("hybrid_weight", 0.5))
    mode = settings.get("mode", "dense") if bm25 is not None else "dense"
    if which == "tuned":
        model = _tuned_model(run_dir, pick_device(device))
        index = _loaded(
            run_dir,
            index_dir / "index.faiss",
            lambda: DenseIndex.load(index_dir, float(settings.get("chunk_weight", 0.5))),
        )
        if index.n_chunks != len(chunks) or index.index.d != model.get_embedding_dimension():
            raise RunDirError(
                f"{run_dir / 'index'} does not match its model or chunks ({index.n_chunks} chunks of "
                f"size {index.index.d} indexed, {len(chunks)} in chunks.jsonl, model size "
                f"{model.get_embedding_dimension()}); delete {run_dir / 'index'} and rerun `ragtune run` to rebuild it"
            )
        return Retriever(model, index, chunks, bm25, weight, mode, run_dir, str(run_dir / "model"))
    # Same settings as the saved index, so the comparison is fair.
    source = base_model_of(run_dir)
    model = load_model(source, pick_device(device))
    # The tuned model reads whole chunks (its max_seq_length was raised to fit them): so does the base here.
    tuned_length = _positive_int(settings.get("max_seq_length")) or _max_seq_length(run_dir / "model")
    if tuned_length:
        model.max_seq_length = tuned_length
    texts = [c.text for c in chunks]
    passage_words, chunk_weight = int(settings.get("passage_words", 0)), float(settings.get("chunk_weight", 0.5))
    # An index written before passages could overlap (no passage_stride) cut them without overlap.
    stride = int(settings.get("passage_stride", 0))
    # The evaluate stage saved the base model's vectors of these units: reuse them, unless anything differs.
    about = base_vectors_about(source, model, texts, passage_words, stride)
    index = load_base_vectors(run_dir, about, chunk_weight)
    if index is None or index.n_chunks != len(chunks) or index.index.d != model.get_embedding_dimension():
        index = dense_index(model, texts, passage_words, chunk_weight, stride=stride)
    return Retriever(model, index, chunks, bm25, weight, mode, run_dir, source)


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# What loading a damaged index file raises: faiss a RuntimeError, numpy and bm25s a ValueError
# (UnicodeDecodeError and JSON errors included), a missing part an OSError, a short .npy an EOFError.
_DAMAGED = (OSError, ValueError, RuntimeError, EOFError, KeyError, TypeError)


def _loaded(run_dir: Path, path: Path, load: Callable[[], T]) -> T:
    """`load()`, or a RunDirError naming `path` and the rerun that rebuilds it when the file is damaged."""
    try:
        return load()
    except _DAMAGED as e:
        why = " ".join(str(e).split())[:160] or type(e).__name__
        if "pickled" in why:  # numpy's words for a .npy file that holds something else
            why = "not a NumPy array file"
        # Deleting index/ makes the rerun rebuild it even for a run that recorded no digest of this file.
        # A DenseIndex names which of its two files is damaged.
        raise RunDirError(
            f"{getattr(e, 'path', path)} is damaged ({why}); delete {run_dir / 'index'} and rerun "
            f"{rerun_command(run_dir)} to rebuild it"
        ) from None


def _tuned_model(run_dir: Path, device: str) -> Any:
    """The run's fine-tuned model; a damaged model/ folder says which rerun trains it again."""
    try:
        return load_model(str(run_dir / "model"), device)
    except ModelError as e:
        raise ModelError(
            f"{str(e).removesuffix(FETCH_AGAIN)}; rerun {rerun_command(run_dir)} to train it again"
        ) from None


def _max_seq_length(model_dir: Path) -> int | None:
    """The length a saved model encodes with, for runs whose index did not record it: sentence-transformers 5
    wrote it to sentence_bert_config.json, 6 leaves it to the tokenizer's model_max_length."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        try:
            value = json.loads((model_dir / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if _positive_int(value):
            return value
    return None


def search(
    run_dir: Path, query: str, k: int = 5, which: Which = "tuned", device: str = "", mode: Mode | None = None
) -> list[Hit]:
    """The `k` chunks closest to `query`, best first, from the tuned (or base) model's index."""
    return load_retriever(Path(run_dir), which, device).search(query, k, mode)
