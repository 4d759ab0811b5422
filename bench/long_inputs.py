"""The single vector at the lengths apps chunk at: base vs tuned runs, on 256-, 512- and 1000-token chunks.

    python -m bench.long_inputs RUN [RUN ...] [--bench ../shared/bench/nist_ragas_test100.csv]
                                [--chunk-tokens 256,512,1000] [--no-base | --base-only]
                                [--json OUT.json]

The RUNs are finished runs on the same documents (e.g. one without and one with long inputs). The
documents are the first run's extracted pages, chunked per document by LangChain's
RecursiveCharacterTextSplitter measured in the base model's tokens (overlap a tenth of the size), as an
app would chunk them. Each model encodes every chunk as one vector, at the max_seq_length it was saved
with (what an app gets: longer chunks are truncated), and, where that differs, at 512 tokens too.
BM25 ranks the same chunks. Relevance is bench/common.py's rule (the RAGAS contexts' word 5-grams).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import groupby
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_BENCH, load_bench, relevant_sets
from ragtune.metrics import MRR_AT, rank_metrics
from ragtune.models import load_model, max_positions, resolve_base_model
from ragtune.records import Chunk, Page, read_jsonl
from ragtune.retrieval import BM25Index, dense_index, embed, positions_to_ids

DEPTH = 100
KEYS = ("hit@5", f"mrr@{MRR_AT}")


def token_chunks(pages: list[Page], tokenizer: Any, size: int) -> list[Chunk]:
    """Each document's pages, split at `size` tokens of `tokenizer` (overlap size // 10)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        tokenizer, chunk_size=size, chunk_overlap=size // 10
    )
    out = []
    for source, group in groupby(pages, key=lambda p: p.source):
        text = "\n\n".join(p.text for p in group)
        out += [Chunk(f"{source}#{i}", source, (), t, 0) for i, t in enumerate(splitter.split_text(text))]
    return out


def models(runs: list[Path], with_base: bool, base_only: bool = False) -> dict[str, Any]:
    """The models scored, by label: each at its saved length, and at 512 where that differs."""
    cfg = json.loads((runs[0] / "config.json").read_text())
    loaded = {"base": load_model(resolve_base_model(cfg["base_model"]))} if with_base else {}
    loaded |= {f"tuned {run.name}": load_model(str(run / "model")) for run in runs if not base_only}
    out: dict[str, Any] = {}
    for label, model in loaded.items():
        saved = int(model.max_seq_length)
        out[f"{label} @{saved}"] = (model, saved)
        longest = min(512, max_positions(model))
        if saved != longest:
            out[f"{label} @{longest}"] = (model, longest)
    return out


def score(chunks: list[Chunk], bench: list[tuple[str, list[str]]], scored: dict[str, Any]) -> tuple[dict, int]:
    """hit@5 and MRR@10 of BM25 and of each model's single vector over `chunks`."""
    rel = relevant_sets(chunks, bench)
    keep = [i for i, r in enumerate(rel) if r]
    questions, relevant = [bench[i][0] for i in keep], [rel[i] for i in keep]
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    rankings = {"BM25": positions_to_ids(BM25Index.build(texts).search(questions, DEPTH)[1], ids)}
    for label, (model, length) in scored.items():
        t = time.perf_counter()
        model.max_seq_length = length
        found = dense_index(model, texts, 0, 0.5).search(embed(model, questions), DEPTH)
        rankings[label] = positions_to_ids(found[1], ids)
        print(f"# {label}: {time.perf_counter() - t:.0f}s", file=sys.stderr)
    depth = max(5, MRR_AT)
    return {name: rank_metrics([r[:depth] for r in rk], relevant, (5,)) for name, rk in rankings.items()}, len(keep)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--chunk-tokens", default="256,512,1000", help="chunk sizes in tokens, comma-separated")
    ap.add_argument("--no-base", action="store_true", help="skip the base model")
    ap.add_argument("--base-only", action="store_true", help="score the base model (and BM25) only")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not args.bench.exists():
        print(f"long_inputs: {args.bench} not found; pass --bench PATH/TO/nist_ragas_test100.csv", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    bench = load_bench(args.bench)
    scored = models(args.runs, not args.no_base, args.base_only)
    tokenizer = next(iter(scored.values()))[0].tokenizer
    pages = read_jsonl(args.runs[0] / "work" / "pages.jsonl", Page)
    runs = ", ".join(str(r) for r in args.runs)
    print(f"bench: {args.bench.name}, {len(bench)} questions; runs {runs}; single vector, one per chunk")
    out: dict[str, Any] = {}
    for size in (int(s) for s in args.chunk_tokens.split(",")):
        chunks = token_chunks(pages, tokenizer, size)
        results, n = score(chunks, bench, scored)
        print(f"\n## {size}-token chunks: {len(chunks)} chunks, {n} questions with a relevant chunk")
        print(f"{'retriever':<44}" + "".join(f"{k:>9}" for k in KEYS))
        for label, m in results.items():
            print(f"{label:<44}" + "".join(f"{m[k]:>9.3f}" for k in KEYS))
        out[str(size)] = {"n_questions": n, "n_chunks": len(chunks), "results": results}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
