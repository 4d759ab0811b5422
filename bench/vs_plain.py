"""ragtune's training against a plain sentence-transformers script on the same pairs, side by side.

    python bench/vs_plain.py RUN_DIR [--rounds 1] [--bench ../shared/bench/nist_ragas_test100.csv]

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
on the third-party questions (bench/shared_bench.py's relevance rule), one vector per
chunk and with passages. The script prints every time, the ratio ragtune / plain, and
both qualities.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from shared_bench import DEFAULT_BENCH, load_bench, relevant_sets  # noqa: E402

from ragtune.config import Config  # noqa: E402
from ragtune.fileio import read_json  # noqa: E402
from ragtune.metrics import MRR_AT, model_rankings, rank_metrics  # noqa: E402
from ragtune.models import load_model, resolve_base_model  # noqa: E402
from ragtune.records import Chunk, Pair, read_jsonl  # noqa: E402


def plain_train(model: Any, pairs: list[Pair], chunks: dict[str, Chunk], epochs: float, lr: float, seed: int,
                work: Path) -> None:
    """The textbook recipe: one row per pair, MNRL, no-duplicates batches of 32."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    data = Dataset.from_dict({"anchor": [p.query for p in pairs], "positive": [chunks[p.chunk_id].text for p in pairs]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work), num_train_epochs=epochs, per_device_train_batch_size=32, learning_rate=lr,
        warmup_steps=0.1, seed=seed, batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, logging_steps=50,
    )
    SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                               loss=MultipleNegativesRankingLoss(model)).train()


def ragtune_train(model: Any, cfg: Config, pairs: list[Pair], chunks: dict[str, Chunk], run_dir: Path,
                  work: Path) -> Any:
    """ragtune's train stage: the same call and validation set-up as ragtune.stages.train."""
    from ragtune.stages.train import VALIDATION_CORPUS
    from ragtune.training.trainer import Validation, fine_tune

    val = read_jsonl(run_dir / "pairs_val.jsonl", Pair)
    held = {p.chunk_id for p in read_jsonl(run_dir / "pairs_eval.jsonl", Pair)}
    own = {p.chunk_id for p in val}
    others = sorted(cid for cid in chunks if cid not in held and cid not in own)
    random.Random(cfg.seed).shuffle(others)
    keep = own | set(others[: max(0, VALIDATION_CORPUS - len(own))])
    corpus = [c for cid, c in chunks.items() if cid in keep]
    validation = Validation([p.query for p in val], [p.kind or p.generator for p in val], [p.chunk_id for p in val],
                            [c.id for c in corpus], [c.text for c in corpus]) if val else None
    return fine_tune(model, pairs, chunks, cfg, work, "cpu", validation=validation)


def scores(model: Any, chunks: list[Chunk], suites: dict[str, tuple[list[str], list[Any]]]) -> dict[str, float]:
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    out = {}
    for name, (queries, relevant) in suites.items():
        for label, words in (("", 0), (" passages", 20)):
            m = rank_metrics(model_rankings(model, texts, ids, queries, MRR_AT, words), relevant, (5,))
            out[f"{name}{label} hit@5"] = m["hit@5"]
            out[f"{name}{label} mrr@10"] = m[f"mrr@{MRR_AT}"]
    return out


Suites = dict[str, tuple[list[str], list[Any]]]


def load_run(run: Path, bench_file: Path) -> tuple[Config, list[Chunk], list[Pair], Suites]:
    """A finished run's Config, chunks and training pairs, and the question suites to score on."""
    settings = read_json(run / "config.json")
    cfg = Config(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items()
                    if k not in ("docs", "out", "themes_file", "pairs_files")}, docs=Path(settings["docs"]))
    chunk_list = read_jsonl(run / "chunks.jsonl", Chunk)
    pairs = read_jsonl(run / "pairs_train.jsonl", Pair)
    if (run / "pairs_lexical.jsonl").exists():
        pairs += read_jsonl(run / "pairs_lexical.jsonl", Pair)
    held = read_jsonl(run / "pairs_eval.jsonl", Pair)
    suites: Suites = {"held-out": ([p.query for p in held], [p.chunk_id for p in held])}
    if not bench_file.exists():
        print(f"# {bench_file} not found: scoring the held-out questions only (give --bench)", file=sys.stderr)
    else:
        bench = load_bench(bench_file)
        rel = relevant_sets(chunk_list, bench)
        keep = [i for i, r in enumerate(rel) if r]
        suites["bench"] = ([bench[i][0] for i in keep], [rel[i] for i in keep])
    return cfg, chunk_list, pairs, suites


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
    seq_length = read_json(run / "manifest.json")["stages"]["chunk"]["max_seq_length"]
    print(f"# {len(pairs)} pairs over {len({p.chunk_id for p in pairs})} chunks, {cfg.epochs} epochs; "
          f"base max_seq_length {base.max_seq_length}, ragtune's {seq_length}", file=sys.stderr)
    times: dict[str, list[float]] = {"plain": [], "ragtune": []}
    quality: dict[str, dict[str, float]] = {}
    for r in range(args.rounds):
        for name in ("plain", "ragtune"):
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
    print(f"\ntime: plain {plain:.0f}s, ragtune {ours:.0f}s (best of {args.rounds}): ragtune / plain = {ours / plain:.2f}")
    keys = list(quality["plain"])
    print(f"{'':<26}{'plain':>9}{'ragtune':>9}")
    for k in keys:
        print(f"{k:<26}{quality['plain'][k]:>9.3f}{quality['ragtune'][k]:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"times": times, "quality": quality}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
