"""What each question kind is worth: the same base, seed and step count trained on all kinds, on all but one, and
on one alone, each scored on third-party questions and on the run's own held-out questions.

    python -m bench.kind_ablation RUN_DIR [--bench ../shared/bench/nist_ragas_test100.csv] [--steps N]
                                  [--batch-size N] [--arms base,all,seeds,loo,alone] [--seeds 13,14] [--held-out-passages]
                                  [--json OUT.json]
    python -m bench.kind_ablation --table OUT.json [OUT2.json ...]

RUN_DIR is a finished `ragtune run` (its generate and split stages are all this script reads; its training
settings can be anything, e.g. `--max-steps 1`). The training pairs are the run's own: pairs_train.jsonl
(kinds keyphrase, sentence, cloze, figure) and pairs_lexical.jsonl (kind lexical). Each arm keeps only some kinds of
them and calls `ragtune.training.trainer.fine_tune` with the run's Config, as the train stage does, except:

- every arm trains exactly `--steps` steps (default: the steps the run's own settings give for all kinds, its
  epochs over its rows), so that arms differ only in which kinds they train on, never in how long;
- no validation, so no early stop, best checkpoint or WiSE mix: those would choose per arm, on generated
  validation questions of all kinds, and blur what the training signal itself is worth.

Scores: the third-party questions (bench/common.py's relevance rule) on the fixed outside chunking (1000
characters, 100 overlap), one vector per chunk and with passages (the run's passage settings), and the run's
held-out questions on the run's chunks, one vector per chunk (with `--held-out-passages` also with passages: on a
shared 2-core machine that doubles the scoring time); hit@5 and MRR@10. The first seed's all-kinds arm is the
reference:
"lost"/"won" count the third-party questions it finds in the top 5 and the arm does not, and the reverse. The
all-kinds arm with a second seed shows what those counts and figures are when only the seed changes.

`--arms` picks arms: `base` (untrained), `all` (all kinds, first seed), `seeds` (all kinds, the other seeds),
`loo` (each kind left out), `alone` (each kind alone), `-KIND` (that kind left out), `+KIND` (that kind alone).
Arms split over several processes write several --json files; `--table` prints them as one table.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_BENCH, chars1000_chunks, load_bench, load_run, relevant_sets, run_seq_length
from ragtune.config import Config
from ragtune.metrics import MRR_AT, model_rankings, rank_metrics
from ragtune.models import load_model, resolve_base_model
from ragtune.names import QUESTION_KINDS
from ragtune.records import Chunk, Page, Pair, read_jsonl


def arms(which: list[str], kinds: list[str], seeds: list[int]) -> list[tuple[str, frozenset[str], int]]:
    """(label, kinds trained on, seed) per arm named in `which` (see the module's docstring), in that order.

    >>> [label for label, _, _ in arms(["base", "all", "seeds", "-cloze", "+lexical"], ["cloze", "lexical"], [1, 2])]
    ['base (untrained)', 'all kinds, seed 1', 'all kinds, seed 2', 'all but cloze', 'lexical alone']
    """
    out: list[tuple[str, frozenset[str], int]] = []
    for name in which:
        if name == "base":
            out.append(("base (untrained)", frozenset(), seeds[0]))
        elif name in ("all", "seeds"):
            out += [(f"all kinds, seed {s}", frozenset(kinds), s) for s in (seeds[:1] if name == "all" else seeds[1:])]
        elif name in ("loo", "alone"):
            out += arms([("-" if name == "loo" else "+") + k for k in kinds], kinds, seeds)
        elif name[:1] in "-+" and name[1:] in kinds:
            kept = frozenset(kinds) - {name[1:]} if name[0] == "-" else frozenset({name[1:]})
            out.append((f"all but {name[1:]}" if name[0] == "-" else f"{name[1:]} alone", kept, seeds[0]))
        else:
            raise SystemExit(f"kind_ablation: unknown arm {name!r}; the run's kinds are {', '.join(kinds)}")
    return out


def default_steps(pairs: list[Pair], cfg: Config) -> int:
    """The optimizer steps the run's own settings give for all kinds: its epochs over its training rows."""
    rows = sum(math.ceil(n / cfg.queries_per_row) for n in _per_chunk(pairs).values())
    return math.ceil(math.ceil(rows / cfg.batch_size) * cfg.epochs)


def _per_chunk(pairs: list[Pair]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.chunk_id] = counts.get(p.chunk_id, 0) + 1
    return counts


def ranked_hits(
    model: Any, chunks: list[Chunk], queries: list[str], relevant: list[Any], passage_words: int, cfg: Config
) -> tuple[dict[str, float], list[bool]]:
    """hit@5 and MRR@10 over `chunks`, and per question whether it was found in the top 5."""
    ranked = model_rankings(
        model,
        [c.text for c in chunks],
        [c.id for c in chunks],
        queries,
        MRR_AT,
        passage_words,
        cfg.chunk_weight,
        passage_stride=cfg.passage_stride,
    )
    m = rank_metrics(ranked, relevant, (5,))
    found = [bool(({r} if isinstance(r, str) else r) & set(ids[:5])) for ids, r in zip(ranked, relevant)]
    return {"hit@5": m["hit@5"], f"mrr@{MRR_AT}": m[f"mrr@{MRR_AT}"]}, found


def score_arm(
    model: Any, cfg: Config, suites: dict[str, tuple[list[Chunk], list[str], list[Any]]], held_out_passages: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (chunks, queries, relevant) in suites.items():
        # A run without passages (passage_words 0) would score its one vector twice.
        with_passages = cfg.passage_words > 0 and (name == "bench" or held_out_passages)
        ways = (("", 0), (" passages", cfg.passage_words)) if with_passages else (("", 0),)
        for label, words in ways:
            out[f"{name}{label}"], out[f"{name}{label} found"] = ranked_hits(
                model, chunks, queries, relevant, words, cfg
            )
    return out


def train_arm(
    base: Any, cfg: Config, pairs: list[Pair], chunks: dict[str, Chunk], kinds: frozenset[str], seed: int, steps: int
) -> tuple[Any, int]:
    """A copy of `base` trained `steps` steps on the pairs of `kinds`; the base itself when `kinds` is empty."""
    from ragtune.training.trainer import fine_tune

    model = copy.deepcopy(base)
    chosen = [p for p in pairs if p.kind in kinds]
    if chosen:
        arm_cfg = dataclasses.replace(cfg, seed=seed, max_steps=steps, patience=0, wise=False)
        with tempfile.TemporaryDirectory() as work:
            fine_tune(model, chosen, chunks, arm_cfg, Path(work), "cpu")
    return model, len(chosen)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, nargs="?")
    ap.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    ap.add_argument("--steps", type=int, default=0, help="training steps per arm (0: the run's own for all kinds)")
    ap.add_argument("--batch-size", type=int, default=0, help="rows per step (0: the run's own)")
    ap.add_argument("--arms", default="base,all,seeds,loo,alone", help="comma-separated, see above")
    ap.add_argument("--held-out-passages", action="store_true", help="also score the held-out questions on passages")
    ap.add_argument("--table", type=Path, nargs="+", help="print the table of these --json files and stop")
    ap.add_argument(
        "--seeds",
        default="",
        help="seeds of the all-kinds arm, the first used by every arm (default: the run's seed and the next)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here (rewritten after every arm)")
    args = ap.parse_args()
    if args.table:
        results = {k: v for path in args.table for k, v in json.loads(path.read_text()).items()}
        print_table(results, next(iter(results.values()))["steps"])
        return 0
    if args.run_dir is None:
        ap.error("give RUN_DIR (or --table)")
    if not args.bench.exists():
        print(f"kind_ablation: {args.bench} not found; pass --bench PATH/TO/nist_ragas_test100.csv", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    run = args.run_dir
    cfg, run_chunks, pairs, own = load_run(run, args.bench)
    if args.batch_size:
        cfg = dataclasses.replace(cfg, batch_size=args.batch_size)
    chunks = {c.id: c for c in run_chunks}
    # Every kind the run trained on, in the order names.QUESTION_KINDS lists them.
    kinds = [k for k in QUESTION_KINDS if any(p.kind == k for p in pairs)]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [cfg.seed, cfg.seed + 1]
    steps = args.steps or default_steps(pairs, cfg)
    outside = chars1000_chunks(read_jsonl(run / "work" / "pages.jsonl", Page))
    bench = load_bench(args.bench)
    rel = relevant_sets(outside, bench)
    keep = [i for i, r in enumerate(rel) if r]
    held_queries, held_ids = own["held-out"]
    suites = {
        "bench": (outside, [bench[i][0] for i in keep], [rel[i] for i in keep]),
        "held-out": (run_chunks, held_queries, held_ids),
    }
    counts = {k: sum(p.kind == k for p in pairs) for k in kinds}
    print(
        f"# {run}: training pairs by kind {counts}; {steps} steps of {cfg.batch_size} rows per arm; "
        f"bench: {len(keep)} of {len(bench)} questions have a relevant chunk among {len(outside)} chars1000 chunks; "
        f"held-out: {len(held_queries)} questions over {len(run_chunks)} run chunks",
        flush=True,
    )
    base = load_model(resolve_base_model(cfg.base_model), "cpu")
    base.max_seq_length = run_seq_length(run)
    results: dict[str, Any] = {}
    for label, arm_kinds, seed in arms(args.arms.split(","), kinds, seeds):
        start = time.perf_counter()
        model, n = train_arm(base, cfg, pairs, chunks, arm_kinds, seed, steps)
        trained = time.perf_counter() - start
        results[label] = {"kinds": sorted(arm_kinds), "seed": seed, "steps": steps, "n_pairs": n}
        results[label] |= {"train_s": round(trained), "load": round(os.getloadavg()[0], 2)}
        results[label] |= score_arm(model, cfg, suites, args.held_out_passages)
        print(
            f"# {label}: {n} pairs, trained in {trained:.0f}s, scored in {time.perf_counter() - start - trained:.0f}s"
            f"; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    print_table(results, steps)
    return 0


def print_table(results: dict[str, Any], steps: int) -> None:
    ref_label = next(label for label in results if label.startswith("all kinds"))
    ref = results[ref_label]["bench found"]
    cols = [c for c in ("bench", "bench passages", "held-out", "held-out passages") if c in results[ref_label]]
    print(
        f"\n{steps} steps per arm; hit@5 / MRR@{MRR_AT}; lost/won: bench questions (one vector) in the top 5 "
        f"of '{ref_label}' and not of the arm / the reverse"
    )
    print(f"{'arm':<24}{'pairs':>7}" + "".join(f"{c:>20}" for c in cols) + f"{'lost/won':>10}")
    for label, r in results.items():
        found = r["bench found"]
        lost = sum(a and not b for a, b in zip(ref, found))
        won = sum(b and not a for a, b in zip(ref, found))
        cells = "".join(
            f"{r[c]['hit@5']:>11.3f} / {r[c][f'mrr@{MRR_AT}']:.3f}" if c in r else f"{'-':>20}" for c in cols
        )
        print(f"{label:<24}{r['n_pairs']:>7}{cells}{f'{lost}/{won}':>10}")


if __name__ == "__main__":
    sys.exit(main())
