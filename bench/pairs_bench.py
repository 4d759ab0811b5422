"""Labelled pairs with the real bundled all-MiniLM-L6-v2: before/after correlation on held-out pairs.

    python -m bench.pairs_bench [--out runs/pairs-bench] [--loss cosine|cosent|angle] [--epochs N] [--lr X]

Trains on tests/data/pairs (skills.csv, resumes_jobs.csv, vocabulary_pairs.csv,
plus vocabulary.csv as --alternatives) exactly as `ragtune pairs` does, then
breaks the held-out Pearson/Spearman down by source file. The held-out pairs
are unseen pairs, but their texts can occur in training pairs (a skill
phrase is in many pairs), so the figures measure how well the model learns
this labelling scheme, not general similarity quality.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# Set before ragtune is imported: huggingface_hub and tqdm read these when they are first imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from ragtune.models import load_model, resolve_base_model  # noqa: E402
from ragtune.names import BASE, FINE_TUNED  # noqa: E402
from ragtune.pairs import PairsConfig, load_alternatives_file, load_pairs_file, run_pairs  # noqa: E402
from ragtune.records import LabelledPair, SkipCounter, read_jsonl  # noqa: E402
from ragtune.similarity import evaluate_pairs  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pairs"
PAIRS = ("skills.csv", "resumes_jobs.csv", "vocabulary_pairs.csv")
ALTERNATIVES = ("vocabulary.csv",)


def _key(p: LabelledPair) -> frozenset[str]:
    return frozenset((p.sentence1, p.sentence2))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/pairs-bench"))
    ap.add_argument("--loss", default="cosine")
    ap.add_argument("--epochs", type=float, default=None, help="default: the small preset's")
    ap.add_argument("--lr", type=float, default=None, help="default: the small preset's")
    args = ap.parse_args()

    cfg = PairsConfig(
        pairs_files=tuple(DATA / f for f in PAIRS),
        alternatives=tuple(DATA / f for f in ALTERNATIVES),
        out=args.out,
        loss=args.loss,
        epochs=args.epochs,
        learning_rate=args.lr,
        device="cpu",
    )
    start = time.perf_counter()
    result = run_pairs(cfg, log=lambda msg: print(msg, flush=True))
    m = result.metrics
    print(
        f"\n{time.perf_counter() - start:.0f}s total, {result.train['steps']} steps in {result.train['seconds']:.0f}s"
    )
    print(f"\nAll {m['n_test']} held-out pairs ({m['n_train']} trained on):")
    print(f"{'':<12}{'pearson':>10}{'spearman':>10}")
    for label, key in (("base", BASE), ("fine-tuned", FINE_TUNED)):
        print(f"{label:<12}{m[key]['pearson']:>10.4f}{m[key]['spearman']:>10.4f}")

    # Per source file: which held-out pairs came from where (alternatives by their expansion).
    held = read_jsonl(cfg.out / "test.jsonl", LabelledPair)
    sources = {f: {_key(p) for p in load_pairs_file(DATA / f)} for f in PAIRS}
    sources.update({f: {_key(p) for p in load_alternatives_file(DATA / f, SkipCounter())} for f in ALTERNATIVES})
    base = load_model(resolve_base_model(""), "cpu")
    tuned = load_model(str(cfg.out / "model"), "cpu")
    print(f"\n{'source':<22}{'n':>4}{'base P':>9}{'base S':>9}{'tuned P':>9}{'tuned S':>9}")
    for name, keys in sources.items():
        subset = [p for p in held if _key(p) in keys]
        if len({p.label for p in subset}) < 2:
            print(f"{name:<22}{len(subset):>4}   (one label only: correlation undefined)")
            continue
        b, t = evaluate_pairs(base, subset), evaluate_pairs(tuned, subset)
        print(
            f"{name:<22}{len(subset):>4}{b['pearson']:>9.4f}{b['spearman']:>9.4f}"
            f"{t['pearson']:>9.4f}{t['spearman']:>9.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
