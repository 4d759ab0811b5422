"""Retrieval on third-party questions: base vs fine-tuned vs BM25 vs hybrid, one vector per chunk and with passages.

    python -m bench.shared_bench RUN_DIR [--bench ../shared/bench/nist_ragas_test100.csv]
                                    [--chunking run|chars1000|both] [--model MODEL_DIR] [--json OUT.json]
                                    [--passage-words N] [--passage-stride S] [--chunk-weight 0.5] [--hybrid-weight W[,W]]
                                    [--quick] [--no-base]
                                    [--base-only]

The questions (RAGAS, written outside this project) come with the source
passages ("contexts") they were written from. A chunk counts as relevant to a
question when, for one of its contexts, the chunk holds at least half of the
context's word 5-grams, or shares a run of at least 30 consecutive words with
it (about 200 characters). Words are NFKC-normalised, lowercased runs of
letters and digits. The questions are only ever used for measurement.

Two chunkings are scored: the run's own chunks (`run`), and a fixed chunking
that does not depend on ragtune's settings (`chars1000`: the run's extracted
pages, per document, through LangChain's RecursiveCharacterTextSplitter at
1000 characters with 100 of overlap), as an outside harness would chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from bench.common import (
    DEFAULT_BENCH,
    MIN_RUN,
    SHINGLE,
    chars1000_chunks,
    dense_row,
    hybrid_row,
    load_bench,
    relevant_sets,
)
from ragtune.metrics import MRR_AT, rank_metrics, rrf
from ragtune.models import load_model, resolve_base_model
from ragtune.records import Chunk, Page, read_jsonl
from ragtune.retrieval import BM25Index, dense_index, embed, fuse, positions_to_ids

KS = (1, 3, 5, 10)
DEPTH = 100


def dense(
    model: Any,
    texts: list[str],
    ids: list[str],
    questions: list[str],
    passage_words: int,
    chunk_weight: float = 0.5,
    stride: int = 1,
) -> tuple[list[list[str]], Any]:
    """Rankings of `model` over the chunks, one vector each (`passage_words` 0) or with passages, and the
    (scores, positions) search result they come from."""
    found = dense_index(model, texts, passage_words, chunk_weight, stride=stride).search(embed(model, questions), DEPTH)
    return positions_to_ids(found[1], ids), found


def score_bench(
    chunks: list[Chunk],
    bench: list[tuple[str, list[str]]],
    models: dict[str, Any],
    passage_words: int,
    chunk_weight: float = 0.5,
    hybrid_weight: float | Sequence[float] = 0.6,
    stride: int = 1,
    misses: dict[str, int] | None = None,
) -> tuple[dict[str, dict[str, float]], int]:
    """Metrics per retriever (`passage_words` 0: no passage rows). The hybrid rows are ragtune's
    own (weighted score sum, a row for each of the model's shares in `hybrid_weight`) and reciprocal-rank fusion.
    `misses`, where given, is filled with `missed_at_5` of the single vector of the hybrid's model (the fine-tuned
    one, or the base where only the base is scored)."""
    rel = relevant_sets(chunks, bench)
    keep = [i for i, r in enumerate(rel) if r]
    questions = [bench[i][0] for i in keep]
    relevant = [rel[i] for i in keep]
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    depth = max(max(KS), MRR_AT)
    lexical = BM25Index.build(texts).search(questions, DEPTH)
    rankings = {"BM25": positions_to_ids(lexical[1], ids)}
    found = {}
    for label, model in models.items():
        t = time.perf_counter()
        rankings[label], found[label] = dense(model, texts, ids, questions, 0)
        if passage_words:
            row = dense_row(label, passage_words)
            rankings[row], found[row] = dense(model, texts, ids, questions, passage_words, chunk_weight, stride)
        print(f"# {label}: {time.perf_counter() - t:.0f}s", file=sys.stderr)
    # The hybrid's dense side: the fine-tuned model, or the base where only the base is scored (--base-only).
    dense_side = "fine-tuned" if "fine-tuned" in models else "base" if "base" in models else ""
    if dense_side:
        best = dense_row(dense_side, passage_words)
        for w in [hybrid_weight] if isinstance(hybrid_weight, (int, float)) else hybrid_weight:
            rankings[hybrid_row(best, w)] = positions_to_ids(fuse(found[best], lexical, w, DEPTH), ids)
        rankings[f"hybrid ({best} + BM25, RRF)"] = rrf(rankings[best], rankings["BM25"])
    if misses is not None and dense_side:
        misses.update(missed_at_5(rankings, relevant, dense_side))
    return {name: rank_metrics([r[:depth] for r in rk], relevant, KS) for name, rk in rankings.items()}, len(keep)


def missed_at_5(rankings: dict[str, list[list[str]]], relevant: list[set[str]], row: str) -> dict[str, int]:
    """Of the questions `row` does not find in its top 5: how many, how many each other retriever finds there,
    and how many at least one of them finds ("any").

    >>> missed_at_5({"a": [["x"], ["y"]], "b": [["y"], ["x"]], "c": [["y"], ["y"]]}, [{"x"}, {"x"}], "a")
    {'missed': 1, 'b': 1, 'c': 0, 'any': 1}
    """
    missed = [i for i, (rk, rel) in enumerate(zip(rankings[row], relevant)) if not rel & set(rk[:5])]
    others = {name: rk for name, rk in rankings.items() if name != row}
    found = {name: sum(bool(relevant[i] & set(rk[i][:5])) for i in missed) for name, rk in others.items()}
    anyone = sum(any(relevant[i] & set(rk[i][:5]) for rk in others.values()) for i in missed)
    return {"missed": len(missed), **found, "any": anyone}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--chunking", choices=("run", "chars1000", "both"), default="both")
    ap.add_argument("--model", type=Path, help="score this model folder as the fine-tuned one (default: RUN_DIR/model)")
    ap.add_argument(
        "--passage-words",
        type=int,
        default=None,
        help="passages of whole sentences, at least this many words; 0: none (default: the run's own setting)",
    )
    ap.add_argument(
        "--passage-stride",
        type=int,
        default=None,
        help="a passage starts at every S-th sentence; 0: no overlap (default: the run's own setting)",
    )
    ap.add_argument(
        "--chunk-weight", type=float, default=0.5, help="a chunk scores (best passage + W * chunk) / (1 + W)"
    )
    ap.add_argument(
        "--hybrid-weight",
        type=lambda text: [float(w) for w in text.split(",")],
        default=None,
        help="the model's share of the hybrid score, or several (0.2,0.6): a row each (default: the run's own)",
    )
    ap.add_argument("--quick", action="store_true", help="passages on the run's own chunks only")
    ap.add_argument("--no-base", action="store_true", help="skip the base model (faster)")
    ap.add_argument(
        "--base-only", action="store_true", help="the base model, BM25 and their hybrid: a run still training will do"
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--misses",
        action="store_true",
        help="also say, of the questions the fine-tuned single vector (with --base-only, the base's) misses at 5, "
        "how many each other retriever finds",
    )
    args = ap.parse_args()
    if not args.bench.exists():
        print(f"shared_bench: {args.bench} not found; pass --bench PATH/TO/nist_ragas_test100.csv", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = json.loads((args.run_dir / "config.json").read_text())
    bench = load_bench(args.bench)
    models = {} if args.no_base else {"base": load_model(resolve_base_model(cfg["base_model"]))}
    if not args.base_only:
        models["fine-tuned"] = load_model(str(args.model or args.run_dir / "model"))
    chunkings = {
        "run": lambda: read_jsonl(args.run_dir / "work" / "chunks.jsonl", Chunk),
        "chars1000": lambda: chars1000_chunks(read_jsonl(args.run_dir / "work" / "pages.jsonl", Page)),
    }
    names = list(chunkings) if args.chunking == "both" else [args.chunking]
    print(
        f"bench: {args.bench.name}, {len(bench)} questions; run {args.run_dir}"
        + (f"; model {args.model}" if args.model else "")
    )
    # A run written before passages could overlap has no passage_stride: it cut them without overlap.
    stride = args.passage_stride if args.passage_stride is not None else cfg.get("passage_stride", 0)
    # A run under a tight --time-budget may cut no passages (passage_words 0): score what it serves.
    words = args.passage_words if args.passage_words is not None else cfg.get("passage_words", 20)
    windows = f"one starting every {stride} sentence(s)" if stride else "without overlap"
    passages = (
        f"passages: >= {words} words, {windows}, a chunk scores (best passage + "
        f"{args.chunk_weight} * chunk) / {1 + args.chunk_weight}"
        if words
        else "no passages: one vector per chunk"
    )
    print(f"hit rule: >= half of a context's word {SHINGLE}-grams, or a shared run of >= {MIN_RUN} words; {passages}")
    out: dict[str, Any] = {}
    keys = [f"hit@{k}" for k in KS] + [f"mrr@{MRR_AT}"]
    for name in names:
        chunks = chunkings[name]()
        weight = args.hybrid_weight if args.hybrid_weight is not None else cfg.get("hybrid_weight") or 0.6
        missed: dict[str, int] = {}
        results, n = score_bench(
            chunks,
            bench,
            models,
            0 if args.quick and name != "run" else words,
            args.chunk_weight,
            weight,
            stride,
            missed if args.misses else None,
        )
        print(
            f"\n## chunking {name}: {len(chunks)} chunks, {n} questions with a relevant chunk "
            f"({len(bench) - n} without: counted out)"
        )
        print(f"{'retriever':<44}" + "".join(f"{k:>9}" for k in keys))
        for label, m in results.items():
            print(f"{label:<44}" + "".join(f"{m[k]:>9.3f}" for k in keys))
        if missed:
            others = ", ".join(f"{label} {k}" for label, k in missed.items() if label not in ("missed", "any"))
            print(
                f"{'base' if args.base_only else 'fine-tuned'} (one vector) misses {missed['missed']} at hit@5; "
                f"of those, found at 5 by: {others}; "
                f"by at least one of them: {missed['any']}"
            )
        out[name] = {"n_questions": n, "n_chunks": len(chunks), "results": results}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
