"""Retrieval on third-party questions: base vs fine-tuned vs BM25 over a run's own chunks.

    python bench/shared_bench.py RUN_DIR [--bench ../shared/bench/nist_ragas_test100.csv]

The questions (RAGAS, written outside this project) come with the source
passages ("contexts") they were written from. A chunk counts as relevant to a
question when, for one of its contexts, the chunk holds at least half of the
context's word 5-grams, or shares a run of at least 30 consecutive words with
it (about 200 characters). Words are NFKC-normalised, lowercased runs of
letters and digits. The questions are only ever used for measurement.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragtune.evaluate import MRR_AT, bm25_rankings, build_index, dense_rankings, embed, rank_metrics, rrf  # noqa: E402
from ragtune.models import load_model, resolve_base_model  # noqa: E402
from ragtune.records import Chunk, read_jsonl  # noqa: E402

KS = (1, 3, 5, 10)
SHINGLE = 5
MIN_RUN = 30
DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "nist_ragas_test100.csv"


def norm_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKC", text).lower())


def _shingles(ws: list[str]) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + SHINGLE]) for i in range(len(ws) - SHINGLE + 1)}


def _longest_run(a: list[str], b: list[str]) -> int:
    # Longest common substring over words (dynamic programming, small inputs).
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def is_hit(chunk_words: list[str], chunk_sh: set, context: str) -> bool:
    cw = norm_words(context)
    sh = _shingles(cw)
    if sh and len(sh & chunk_sh) >= 0.5 * len(sh):
        return True
    return bool(sh & chunk_sh) and _longest_run(cw, chunk_words) >= min(MIN_RUN, len(cw))


def load_bench(path: Path) -> list[tuple[str, list[str]]]:
    with path.open(encoding="utf-8") as f:
        return [(r["question"], list(ast.literal_eval(r["contexts"]))) for r in csv.DictReader(f)]


def relevant_sets(chunks: list[Chunk], bench: list[tuple[str, list[str]]]) -> list[set[str]]:
    prepared = [(c.id, norm_words(c.text)) for c in chunks]
    prepared = [(cid, ws, _shingles(ws)) for cid, ws in prepared]
    return [{cid for cid, ws, sh in prepared if any(is_hit(ws, sh, ctx) for ctx in ctxs)} for _, ctxs in bench]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not args.bench.exists():
        print(f"shared_bench: {args.bench} not found; pass --bench PATH/TO/nist_ragas_test100.csv", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chunks = read_jsonl(args.run_dir / "chunks.jsonl", Chunk)
    cfg = json.loads((args.run_dir / "config.json").read_text())
    bench = load_bench(args.bench)
    rel = relevant_sets(chunks, bench)
    keep = [i for i, r in enumerate(rel) if r]
    questions = [bench[i][0] for i in keep]
    relevant = [rel[i] for i in keep]
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    depth = max(max(KS), MRR_AT)
    rankings = {"BM25": bm25_rankings(texts, ids, questions, 100)}
    for label, source in (("base", resolve_base_model(cfg["base_model"])), ("fine-tuned", str(args.run_dir / "model"))):
        model = load_model(source)
        t = time.perf_counter()
        rankings[label] = dense_rankings(build_index(embed(model, texts)), embed(model, questions), ids, 100)
        print(f"# {label}: embedded {len(texts)} chunks + {len(questions)} questions in {time.perf_counter() - t:.0f}s",
              file=sys.stderr)
    rankings["hybrid (tuned+BM25 RRF)"] = rrf(rankings["fine-tuned"], rankings["BM25"])
    results = {name: rank_metrics([r[:depth] for r in rk], relevant, KS) for name, rk in rankings.items()}
    print(f"bench: {args.bench.name}, {len(bench)} questions, {len(questions)} with a relevant chunk "
          f"({len(bench) - len(questions)} without: counted out); {len(chunks)} chunks from {args.run_dir}")
    print(f"hit rule: >= half of a context's word {SHINGLE}-grams, or a shared run of >= {MIN_RUN} words")
    keys = [f"hit@{k}" for k in KS] + [f"mrr@{MRR_AT}"]
    print(f"{'retriever':<26}" + "".join(f"{k:>9}" for k in keys))
    for name, m in results.items():
        print(f"{name:<26}" + "".join(f"{m[k]:>9.3f}" for k in keys))
    if args.json:
        args.json.write_text(json.dumps({"n_questions": len(questions), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
