"""ragtune's training in fp32 against bf16 autocast, side by side on the same pairs.

    python -m bench.precision RUN_DIR [--rounds 2] [--max-steps 12] [--bench ../shared/bench/nist_ragas_test100.csv]

In one process, alternating fp32, bf16, fp32, bf16 …, each round trains a fresh copy of
the run's base model with `ragtune.training.trainer.fine_tune` and the run's Config (as the train
stage does: validation, best checkpoint, WiSE mix), changing only `precision`. With
--max-steps the runs stop after that many steps, for a speed ratio in minutes; without
it they train as the run did. The first round's models are scored on the held-out and
third-party questions (bench/common.py's `scores`). Prints seconds per step for each,
the ratio bf16 / fp32, and both qualities. Whether this CPU has native bf16 (AMX or
AVX512-BF16) decides the answer, so the flags it reports are printed too.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DEFAULT_BENCH, alternate, cpu_flags, load_run, ragtune_train, run_seq_length, scores
from ragtune.models import load_model, resolve_base_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=-1, help="stop each training after this many steps (-1: all)")
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--no-score", action="store_true", help="time only (scores of a few steps say little)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = args.run_dir
    cfg, chunk_list, pairs, suites = load_run(run, args.bench)
    chunks = {c.id: c for c in chunk_list}
    base = load_model(resolve_base_model(cfg.base_model), "cpu")
    seq_length = run_seq_length(run)
    print(f"# CPU flags: {cpu_flags()}; {len(pairs)} pairs, max_steps {args.max_steps}", file=sys.stderr)
    per_step: dict[str, list[float]] = {"fp32": [], "bf16": []}
    quality: dict[str, dict[str, float]] = {}
    for r, precision in alternate(args.rounds, ("fp32", "bf16")):
        model = copy.deepcopy(base)
        model.max_seq_length = seq_length
        settings = cfg.replace(precision=precision, max_steps=args.max_steps, device="cpu")
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            result = ragtune_train(model, settings, pairs, chunks, run, Path(work))
            seconds = time.perf_counter() - start
        per_step[precision].append(seconds / max(result.steps, 1))
        print(
            f"round {r + 1}: {precision} {result.steps} steps in {seconds:.0f}s "
            f"({per_step[precision][-1]:.2f} s/step, trained in {result.precision})",
            flush=True,
        )
        if r == 0 and not args.no_score:
            quality[precision] = scores(model, chunk_list, suites)
    fp32, bf16 = min(per_step["fp32"]), min(per_step["bf16"])
    print(f"\ns/step: fp32 {fp32:.2f}, bf16 {bf16:.2f} (best of {args.rounds}): bf16 / fp32 time = {bf16 / fp32:.2f}")
    print(f"{'':<26}{'fp32':>9}{'bf16':>9}")
    for k in quality.get("fp32", {}):
        print(f"{k:<26}{quality['fp32'][k]:>9.3f}{quality['bf16'][k]:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"per_step": per_step, "quality": quality, "cpu": cpu_flags()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
