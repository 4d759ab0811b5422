"""Retrieval as the tuned weights are mixed back toward the base (WiSE-FT), share by share.

    python -m bench.wise_sweep RUN_DIR [--shares 0,0.3,0.5,0.7,0.85,1] [--bench ../shared/bench/nist_ragas_test100.csv]
                                       [--save DIR]

For each share a of the change, the weights are base + a * (tuned - base). Each
mix is scored on the run's own held-out questions and, when the bench file
exists, on the third-party questions (the same relevance rule as
bench/common.py). With --save, the model mixed at the last share is saved there, for bench/shared_bench.py's
--model.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

from bench.common import DEFAULT_BENCH, question_suites
from ragtune.fileio import read_json
from ragtune.metrics import MRR_AT, rank_metrics
from ragtune.models import load_model, resolve_base_model
from ragtune.records import Chunk, Pair, read_jsonl
from ragtune.retrieval import dense_index, embed, positions_to_ids
from ragtune.runfiles import RunFiles
from ragtune.training.validation import mix_with_base, weights


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--shares", default="0,0.3,0.5,0.7,0.85,1")
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--save", type=Path, help="save the model mixed at the last share here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chunks = read_jsonl(args.run_dir / "work" / "chunks.jsonl", Chunk)
    held = read_jsonl(RunFiles(args.run_dir).split("test"), Pair)
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    suites = question_suites(chunks, held, args.bench)
    base = load_model(resolve_base_model(read_json(args.run_dir / "config.json")["base_model"]))
    base_state = weights(base)
    model = copy.deepcopy(base)
    tuned = load_model(str(args.run_dir / "model"))
    tuned_state = weights(tuned)
    print(f"{'share':>6}" + "".join(f"{name + ' hit@5':>16}{name + ' MRR@10':>16}" for name in suites))
    for share in (float(x) for x in args.shares.split(",")):
        mix_with_base(model, base_state, tuned_state, share)
        index = dense_index(model, texts, 0)
        row = f"{share:>6.2f}"
        for queries, relevant in suites.values():
            m = rank_metrics(positions_to_ids(index.search(embed(model, queries), MRR_AT)[1], ids), relevant, (5,))
            row += f"{m['hit@5']:>16.3f}{m[f'mrr@{MRR_AT}']:>16.3f}"
        print(row, flush=True)
    if args.save:
        model.max_seq_length = tuned.max_seq_length  # the length the run saved its model to read
        model.save(str(args.save))
        print(f"saved the mix at share {share:g} to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
