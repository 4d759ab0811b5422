"""The forgetting guard's figures for finished runs: base and shipped model on the general retrieval set.

    python -m bench.general_guard RUN_DIR [RUN_DIR ...] [--resamples 2000]
    python -m bench.general_guard --sensitivity [--rates 6e-5,2e-4,5e-4,1e-3] [--steps 16]

For each run: hit@5 and MRR@10 of the base model and of RUN_DIR/model on the general set that ships
in ragtune/data/general, among as many of the run's chunks as the guard adds (the same seeded
sample), how many questions moved up or down, and the noise of the MRR@10 change: the standard
deviation of the paired change over bootstrap resamples of the questions. Then what the run's
metrics.json recorded of the guard (fired, share of the change kept), when it has a "general" entry.

--sensitivity: what the set sees of forgetting made on purpose. The base model is trained for `--steps`
steps of 8 rows on phrase pairs from NIST AI 600-1 (resources/; 60-word windows, each asked for by 12 of
its own words, the guard's test recipe) at each learning rate, and scored on the whole set, on its first
FIRST_ROWS questions (the set before 2026-12-07) and on the rest, with the windows as distractors.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
from pathlib import Path

from ragtune.fileio import read_json
from ragtune.metrics import MRR_AT, model_rankings
from ragtune.models import load_model, resolve_base_model
from ragtune.records import Chunk, Pair, read_jsonl
from ragtune.runfiles import RunFiles
from ragtune.training.forgetting import TOLERANCE, GeneralSet, load_general_set


def reciprocal_ranks(model: object, general: GeneralSet) -> list[float]:
    """1/rank of each question's passage in the model's top MRR_AT (0 when not there)."""
    ranked = model_rankings(model, general.texts, general.ids, general.queries, MRR_AT)
    return [1 / (r.index(rel) + 1) if rel in r else 0.0 for r, rel in zip(ranked, general.relevant)]


def bootstrap_sd(diffs: list[float], resamples: int, seed: int = 0) -> float:
    """The standard deviation of the mean of `diffs` over bootstrap resamples (seeded)."""
    rng = random.Random(seed)
    n = len(diffs)
    return statistics.pstdev(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))


def report(run_dir: Path, resamples: int) -> None:
    files = RunFiles(run_dir)
    cfg = read_json(files.config)
    chunks = read_jsonl(files.chunks, Chunk)
    general = load_general_set().with_distractors([c.text for c in chunks], seed=cfg.get("seed", 0))
    base = load_model(resolve_base_model(cfg["base_model"]))
    tuned = load_model(str(files.model))
    rr = {"base": reciprocal_ranks(base, general), "tuned": reciprocal_ranks(tuned, general)}
    n = len(general.queries)
    print(f"{run_dir}: {n} general questions over {len(general.ids)} passages (distractors included)")
    for which, ranks in rr.items():
        hit5 = sum(r >= 1 / 5 for r in ranks) / n
        print(f"  {which:<6} hit@5 {hit5:.3f}  MRR@10 {sum(ranks) / n:.3f}")
    diffs = [t - b for b, t in zip(rr["base"], rr["tuned"])]
    up, down = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    print(
        f"  MRR@10 change {sum(diffs) / n:+.4f} (bootstrap sd {bootstrap_sd(diffs, resamples):.4f}, "
        f"{resamples} resamples); {up} questions ranked higher, {down} lower; tolerance {TOLERANCE}"
    )
    general_entry = read_json(files.metrics).get("general") if files.metrics.exists() else None
    if general_entry:
        # "fine_tuned" (the weights shipped) since the guard recorded "trained" beside it; "tuned" before that.
        shipped = general_entry.get("fine_tuned") or general_entry["tuned"]
        print(
            f"  metrics.json: fired {general_entry['fired']}, acted {general_entry['acted']}, "
            f"kept {general_entry['kept']:.0%} of the change; shipped MRR@10 {shipped['mrr@10']:.3f}"
        )
    else:
        print("  metrics.json: no 'general' entry (a run from before the guard, or not finished)")


FIRST_ROWS = 107  # the general set's questions before 2026-12-07 (base MiniLM: 1.000 / 0.991)


def sensitivity(rates: list[float], steps: int, work: Path) -> None:
    import copy

    from ragtune import Config
    from ragtune.extract import extract_folder
    from ragtune.training.forgetting import general_figures
    from ragtune.training.trainer import fine_tune

    pages = extract_folder(Path(__file__).resolve().parents[1] / "resources" / "nist_ai_600_1.pdf").pages
    words = " ".join(p.text for p in pages[4:40]).split()
    windows = [" ".join(words[i : i + 60]) for i in range(0, len(words) - 60, 60)][:128]
    chunks = {f"c{i}": Chunk(f"c{i}", "nist", (1,), t, 64) for i, t in enumerate(windows)}
    pairs = [Pair(" ".join(c.text.split()[10:22]), c.id, "phrase") for c in chunks.values()]
    whole = load_general_set().with_distractors(windows)

    def asking(rows: slice) -> GeneralSet:  # those questions, over every passage
        return GeneralSet(whole.queries[rows], whole.relevant[rows], whole.ids, whole.texts)

    parts = {"whole": whole, f"first {FIRST_ROWS}": asking(slice(FIRST_ROWS)), "added": asking(slice(FIRST_ROWS, None))}
    base = load_model(resolve_base_model(""))
    base.max_seq_length = 64  # the windows and general passages are short; short rows keep training quick
    print(f"{len(pairs)} NIST phrase pairs, {steps} steps of 8; hit@5 / MRR@10 on " + ", ".join(parts))
    for rate in [0.0, *rates]:
        model = copy.deepcopy(base)
        if rate:
            cfg = Config(docs=Path("d"), max_steps=steps, batch_size=8, learning_rate=rate, device="cpu", wise=False)
            fine_tune(model, pairs, chunks, cfg, work / f"lr{rate:g}", "cpu")
        cells = (f"{f['hit@5']:.3f} / {f['mrr@10']:.3f}" for f in (general_figures(model, s) for s in parts.values()))
        print(f"  {'base' if not rate else f'lr {rate:g}':<10}" + "".join(f"{c:>18}" for c in cells), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dirs", type=Path, nargs="*")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--sensitivity", action="store_true", help="train the base model to forget, at several rates")
    ap.add_argument("--rates", type=lambda t: [float(x) for x in t.split(",")], default=[6e-5, 2e-4, 5e-4, 1e-3])
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.sensitivity:
        with tempfile.TemporaryDirectory() as work:
            sensitivity(args.rates, args.steps, Path(work))
        return 0
    if not args.run_dirs:
        ap.error("give RUN_DIR ... or --sensitivity")
    for run_dir in args.run_dirs:
        report(run_dir, args.resamples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
