"""ragtune's training against a plain sentence-transformers script on the same pairs, side by side.

    python -m bench.vs_plain RUN_DIR [--rounds 1] [--bench ../shared/bench/nist_ragas_test100.csv]

In one process, alternating plain, ragtune, plain, ragtune …, both start from the
run's base model and train on the same (question, chunk) pairs (the run's
pairs_train.jsonl and pairs_lexical.jsonl) for the same number of epochs:

- plain: one (question, chunk) row per pair, MultipleNegativesRankingLoss, NO_DUPLICATES
  batches of 32, fp32, the model's default max_seq_length, nothing else (the recipe of
  sentence-transformers' training examples);
- ragtune: `ragtune.training.trainer.fine_tune` with the run's Config, as the train stage calls it
  (rows of one chunk and 4 of its questions, no attention dropout, validation,
  best checkpoint and WiSE mix).

Each model is then scored on the run's held-out questions and, when the file exists,
on the third-party questions (bench/common.py's relevance rule), one vector per
chunk and with passages. The script prints every time, the ratio ragtune / plain, and
both qualities.
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
from typing import Any

from bench.common import DEFAULT_BENCH, alternate, load_run, ragtune_train, scores
from ragtune.fileio import read_json
from ragtune.models import load_model, resolve_base_model
from ragtune.records import Chunk, Pair


def plain_train(
    model: Any, pairs: list[Pair], chunks: dict[str, Chunk], epochs: float, lr: float, seed: int, work: Path
) -> None:
    """The textbook recipe: one row per pair, MNRL, no-duplicates batches of 32."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    data = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [chunks[p.chunk_id].text for p in pairs]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work),
        num_train_epochs=epochs,
        per_device_train_batch_size=32,
        learning_rate=lr,
        warmup_steps=0.1,
        seed=seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        logging_steps=50,
    )
    SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    ).train()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=1, help="plain/ragtune pairs to time")
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = args.run_dir
    cfg, chunk_list, pairs, suites = load_run(run, args.bench)
    chunks = {c.id: c for c in chunk_list}
    base = load_model(resolve_base_model(cfg.base_model), "cpu")
    seq_length = read_json(run / "work" / "manifest.json")["stages"]["chunk"]["max_seq_length"]
    print(
        f"# {len(pairs)} pairs over {len({p.chunk_id for p in pairs})} chunks, {cfg.epochs} epochs; "
        f"base max_seq_length {base.max_seq_length}, ragtune's {seq_length}",
        file=sys.stderr,
    )
    times: dict[str, list[float]] = {"plain": [], "ragtune": []}
    quality: dict[str, dict[str, float]] = {}
    for r, name in alternate(args.rounds, ("plain", "ragtune")):
        model = copy.deepcopy(base)
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            if name == "plain":
                plain_train(model, pairs, chunks, cfg.epochs, cfg.learning_rate, cfg.seed, Path(work))
            else:
                model.max_seq_length = seq_length
                ragtune_train(model, cfg, pairs, chunks, run, Path(work))
            times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}: {name} trained in {times[name][-1]:.0f}s", flush=True)
        if r == 0:
            model.max_seq_length = seq_length  # score both models on whole chunks
            quality[name] = scores(model, chunk_list, suites)
    plain, ours = min(times["plain"]), min(times["ragtune"])
    print(
        f"\ntime: plain {plain:.0f}s, ragtune {ours:.0f}s (best of {args.rounds}): ragtune / plain = {ours / plain:.2f}"
    )
    keys = list(quality["plain"])
    print(f"{'':<26}{'plain':>9}{'ragtune':>9}")
    for k in keys:
        print(f"{k:<26}{quality['plain'][k]:>9.3f}{quality['ragtune'][k]:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"times": times, "quality": quality}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
