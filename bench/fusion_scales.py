"""How the hybrid puts a cosine and a BM25 score on one scale: min-max (ragtune's), mean +- 3 sd (Qdrant's
distribution-based score fusion), a share of the list's best score, and reciprocal-rank fusion, each at several
dense shares, on third-party questions and on the run's own validation questions.

    python -m bench.fusion_scales RUN_DIR [--bench ../shared/bench/nist_ragas_test100.csv] [--chunking chars1000|run]
                                  [--weights 0.4,0.5,0.6,0.7,0.8] [--json OUT.json]

The dense side is the run's model with the run's passages, as ragtune serves it; both lists are 100 deep, as
bench.shared_bench fuses them. The third-party questions are scored on the fixed 1000-character chunking (or the
run's chunks), with bench/common.py's relevance rule; the validation questions (the ones a run chooses its served
retriever on) on the run's chunks. Prints hit@5 / MRR@10 per scale and share.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.common import DEFAULT_BENCH, chars1000_chunks, load_bench, relevant_sets
from ragtune.fileio import read_json
from ragtune.metrics import MRR_AT, rank_metrics, rrf
from ragtune.models import load_model
from ragtune.records import Chunk, Page, Pair, read_jsonl
from ragtune.retrieval import BM25Index, dense_index, embed, fuse, positions_to_ids
from ragtune.retrieval.ranking import by_top, min_max, three_sigma
from ragtune.runfiles import RunFiles

DEPTH = 100
SCALES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "min-max": min_max,
    "mean +- 3 sd": three_sigma,
    "share of best": by_top,
}


def retrievers(model: Any, cfg: dict[str, Any], chunks: list[Chunk]) -> tuple[Any, BM25Index, list[str]]:
    """The model's index over `chunks` with the run's passages, as ragtune serves it, BM25 over them, and their ids."""
    texts = [c.text for c in chunks]
    dense = dense_index(
        model, texts, cfg.get("passage_words", 20), cfg.get("chunk_weight", 0.5), stride=cfg.get("passage_stride", 0)
    )
    return dense, BM25Index.build(texts), [c.id for c in chunks]


def scale_table(
    model: Any,
    indexes: tuple[Any, BM25Index, list[str]],
    questions: list[str],
    relevant: list[set[str]],
    weights: list[float],
) -> dict[str, dict[str, float]]:
    """hit@5 and MRR@10 of BM25, the model (with the run's passages), RRF, and each scale at each share, over the
    chunks of `indexes` (`retrievers`)."""
    index, bm25, ids = indexes
    dense = index.search(embed(model, questions), DEPTH)
    lexical = bm25.search(questions, DEPTH)
    rankings = {"BM25": positions_to_ids(lexical[1], ids), "model": positions_to_ids(dense[1], ids)}
    rankings["RRF"] = rrf(rankings["model"], rankings["BM25"])
    for name, scale in SCALES.items():
        for w in weights:
            rankings[f"{name} {w:g}"] = positions_to_ids(fuse(dense, lexical, w, DEPTH, scale), ids)
    return {name: rank_metrics([r[:MRR_AT] for r in rk], relevant, (5,)) for name, rk in rankings.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--chunking", choices=("chars1000", "run"), default="chars1000")
    ap.add_argument("--weights", type=lambda t: [float(w) for w in t.split(",")], default=[0.4, 0.5, 0.6, 0.7, 0.8])
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not args.bench.exists():
        print(f"fusion_scales: {args.bench} not found; pass --bench PATH/TO/nist_ragas_test100.csv", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cfg = read_json(args.run_dir / "config.json")
    model = load_model(str(args.run_dir / "model"))
    run_chunks = read_jsonl(args.run_dir / "work" / "chunks.jsonl", Chunk)
    val = read_jsonl(RunFiles(args.run_dir).split("val"), Pair)
    run_indexes = retrievers(model, cfg, run_chunks) if val or args.chunking == "run" else None
    if args.chunking == "chars1000":
        outside = chars1000_chunks(read_jsonl(args.run_dir / "work" / "pages.jsonl", Page))
        outside_indexes = retrievers(model, cfg, outside)
    else:
        # The run's own chunks: the validation questions' index serves the outside questions too.
        outside, outside_indexes = run_chunks, run_indexes
    bench = load_bench(args.bench)
    rel = relevant_sets(outside, bench)
    keep = [i for i, r in enumerate(rel) if r]
    out = {
        f"{args.bench.stem}, {args.chunking} ({len(keep)})": scale_table(
            model, outside_indexes, [bench[i][0] for i in keep], [rel[i] for i in keep], args.weights
        )
    }
    if val:
        out[f"validation, run's chunks ({len(val)})"] = scale_table(
            model, run_indexes, [p.query for p in val], [{p.chunk_id} for p in val], args.weights
        )
    print(f"run {args.run_dir}; hit@5 / MRR@10")
    print(f"{'retriever':<20}" + "".join(f"{label:>44}" for label in out))
    for name in next(iter(out.values())):
        print(f"{name:<20}" + "".join(f"{m[name]['hit@5']:>36.3f} / {m[name]['mrr@10']:.3f}" for m in out.values()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
