"""Which retriever a finished run serves under the rule of today (the hybrid unless the model alone beats it on
validation beyond chance; never BM25 alone) and under the rule before it (any lead wins), from its validation questions.

    python -m bench.served_choice RUN_DIR [--model MODEL_DIR]

It encodes the run's validation questions with the run's model (or MODEL_DIR, over the run's chunks and
passages), ranks every chunk at each dense share of the hybrid from 0.0 (BM25 alone) to 1.0 (the model alone), and
prints each share's hit@5 and MRR@10, each rival's MRR@10 gain over the hybrid with the chance that it is not real
(`ragtune.metrics.served_evidence`), and both rules' choices. Runs written before the rule did not record the
evidence; this recomputes it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ragtune.fileio import read_json
from ragtune.metrics import MRR_AT, choose_served, hybrid_share, served_evidence, share_scores
from ragtune.models import load_model
from ragtune.records import Chunk, Pair, read_jsonl
from ragtune.retrieval import BM25Index, DenseIndex, embed, retrieval_units


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--model", type=Path, help="score this model folder (default: RUN_DIR/model)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = args.run_dir
    cfg = read_json(run / "config.json")
    fixed = cfg.get("hybrid_weight", 0.6)
    chunks = read_jsonl(run / "work" / "chunks.jsonl", Chunk)
    ids = [c.id for c in chunks]
    val = read_jsonl(run / "work" / "pairs_val.jsonl", Pair)
    if not val:
        print(f"served_choice: {run} has no validation questions", file=sys.stderr)
        return 2
    queries, relevant = [p.query for p in val], [p.chunk_id for p in val]
    model = load_model(str(args.model or run / "model"), "cpu")
    units = retrieval_units([c.text for c in chunks], cfg.get("passage_words", 20), cfg.get("passage_stride", 0))
    dense = DenseIndex.from_vectors(embed(model, units.texts), units.owner, cfg.get("chunk_weight", 0.5))
    pool = 10 * MRR_AT
    d, b = dense.search(embed(model, queries), pool), BM25Index.build([c.text for c in chunks]).search(queries, pool)
    scores, ranks = share_scores(d, b, ids, relevant, fixed)
    weight = hybrid_share(scores, fixed)
    evidence = served_evidence(ranks, weight)
    print(f"{run}: {len(val)} validation questions, {len(chunks)} chunks; hybrid share {weight}")
    for w, m in scores.items():
        print(f"  share {w:.1f}: hit@5 {m['hit@5']:.3f}, MRR@10 {m['mrr@10']:.4f}")
    for mode, e in evidence.items():
        pairs = list(zip(ranks[0.0 if mode == "bm25" else 1.0], ranks[weight]))
        up, down = sum(a > h for a, h in pairs), sum(a < h for a, h in pairs)
        print(
            f"  {mode} against the hybrid: MRR@10 {e['mrr@10']:+.4f}, p {e['p']:.3f} ({up} questions up, {down} down)"
        )
    print(
        f"served today: {choose_served(scores, fixed, evidence)[0]}; before (any lead): {choose_served(scores, fixed)[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
