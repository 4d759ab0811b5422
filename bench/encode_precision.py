"""A run's own encoding in fp32 against bf16 autocast, side by side: what the evaluate stage spends and measures.

    python -m bench.encode_precision RUN_DIR [--rounds 3] [--bench ../shared/bench/nist_ragas_test100.csv]

In one process, alternating fp32, bf16, fp32, bf16 …, each round encodes the run's retrieval units
(every chunk and its passages, as the evaluate stage and `index/` do) with the run's fine-tuned model,
inside `ragtune.models.encoding_in`. Prints the best time of each, the ratio bf16 / fp32, how far the
bf16 vectors are from the fp32 ones (cosine), and hit@5 / MRR@10 on the held-out and third-party
questions with both (bench/common.py's `scores`), so that a speed-up that moves a figure shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench.common import DEFAULT_BENCH, alternate, cpu_flags, load_run, run_seq_length, scores
from ragtune.models import encoding_in, load_model
from ragtune.retrieval import embed, retrieval_units

PRECISIONS = ("fp32", "bf16")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = args.run_dir
    cfg, chunk_list, _, suites = load_run(run, args.bench)
    model = load_model(str(run / "model"), "cpu")
    model.max_seq_length = run_seq_length(run)
    units = retrieval_units([c.text for c in chunk_list], cfg.passage_words, cfg.passage_stride)
    print(
        f"# CPU flags: {cpu_flags()}; {len(units.texts)} units ({len(chunk_list)} chunks), "
        f"max_seq_length {model.max_seq_length}",
        file=sys.stderr,
    )
    seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    vectors = {}
    for r, precision in alternate(args.rounds, PRECISIONS):
        start = time.perf_counter()
        with encoding_in(precision, "cpu"):
            vectors[precision] = embed(model, units.texts)
        seconds[precision].append(time.perf_counter() - start)
        print(f"round {r + 1}: {precision} {seconds[precision][-1]:.1f}s", flush=True)
    fp32, bf16 = min(seconds["fp32"]), min(seconds["bf16"])
    cos = (vectors["fp32"] * vectors["bf16"]).sum(axis=1)
    print(
        f"\nencode {len(units.texts)} units: fp32 {fp32:.1f}s, bf16 {bf16:.1f}s (best of {args.rounds}): "
        f"bf16 / fp32 time = {bf16 / fp32:.2f}"
    )
    print(f"cosine bf16 vs fp32 vector: min {cos.min():.5f}, mean {cos.mean():.5f}")
    quality = {}
    for precision in PRECISIONS:
        with encoding_in(precision, "cpu"):
            quality[precision] = scores(model, chunk_list, suites)
    print(f"{'':<34}{'fp32':>9}{'bf16':>9}")
    for k in quality["fp32"]:
        print(f"{k:<34}{quality['fp32'][k]:>9.3f}{quality['bf16'][k]:>9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
