"""A budgeted run against its plan: what it planned per part, what each stage took, and the same corpus planned at a
quiet machine's costs.

    python -m bench.budget_check RUN_DIR [--quiet-costs 6,0.05,0.01,0.013]

Reads RUN_DIR/work/plan.json (the costs the run measured and the plan it chose) and the stage seconds the run
recorded so far (work/manifest.json; a run still going shows the stages it finished). The quiet costs (seconds a
training step of 32 rows, a chunk encoded, a question encoded and, optionally, a passage encoded: without it, a
passage is priced as a chunk) default to MiniLM's on this 2-core CPU when no one else uses it
(tests/test_time_budget.py; a passage at a quarter of a chunk, as the four shared PDFs' warm-up measured), so the last
line says what the planner would choose there.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ragtune.budget import PART_STAGES, Costs, Plan, Sizes, plan_run, sizes_of
from ragtune.config import Config
from ragtune.fileio import read_json
from ragtune.records import Chunk, read_jsonl


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument(
        "--quiet-costs", default="6,0.05,0.01,0.013", help="step, chunk, question and (optional) passage seconds"
    )
    args = ap.parse_args()
    saved = read_json(args.run_dir / "work" / "plan.json")
    plan = Plan(
        **{k: v for k, v in saved["plan"].items() if k != "total_seconds"}
        | {"changed": tuple(saved["plan"]["changed"])}
    )
    manifest = read_json(args.run_dir / "work" / "manifest.json")
    stages = {k: v["seconds"] for k, v in manifest["stages"].items()}
    print(plan.line())
    print(f"costs measured: {saved['costs']}")
    # Plans that count the generator's questions (they record it) count the warm-up in the time spent too.
    warmup = ", and the warm-up" if "generator" in saved["inputs"] else ""
    print(
        f"spent before the plan: {plan.spent_seconds:.0f} s (stages {', '.join(s for s in stages if s in ('extract', 'chunk', 'theme'))}{warmup})"
    )
    print(f"{'part':<10}{'planned s':>10}{'actual s':>10}  stages")
    for part, names in PART_STAGES.items():
        done = [stages[n] for n in names if n in stages]
        actual = f"{sum(done):.0f}" if len(done) == len(names) else "-"
        print(f"{part:<10}{plan.seconds[part]:>10.0f}{actual:>10}  {' + '.join(names)}")
    total = sum(stages.values())
    print(f"stages so far: {total:.0f} s ({total / 60:.1f} min) of a {plan.budget_seconds / 60:.0f} min budget")
    inputs = saved["inputs"]
    chunks = read_jsonl(args.run_dir / "work" / "chunks.jsonl", Chunk)
    # The plan's inputs, and from config.json what the generator also depends on.
    config = read_json(args.run_dir / "config.json") if (args.run_dir / "config.json").exists() else {}
    cfg = Config(
        docs=Path("."),
        **{k: config[k] for k in ("generator", "seed") if k in config},
        **{k: tuple(v) if isinstance(v, list) else v for k, v in inputs.items() if k not in ("chunk_key", "generator")},
    )
    sizes: Sizes = sizes_of(cfg, chunks, _vocabulary(cfg.base_model))
    values = [float(x) for x in args.quiet_costs.split(",")]
    if len(values) not in (3, 4):
        ap.error("--quiet-costs takes 3 or 4 numbers: step, chunk, question and (optional) passage seconds")
    costs = Costs(*values[:3], passage_seconds=values[3] if len(values) == 4 else None)
    quiet = plan_run(sizes, costs, plan.budget_seconds, plan.spent_seconds)
    print(f"at quiet costs ({args.quiet_costs}): {quiet.line()}")
    # The steps of all epochs the plan counts, against those counted at the settings and those trained.
    measured = Costs(**saved["costs"])
    counted = plan_run(dataclasses.replace(sizes, questions_per_chunk=plan.questions_per_chunk), measured)
    at_settings = plan_run(
        dataclasses.replace(sizes, questions_per_chunk=plan.questions_per_chunk, written=(), spans=()), measured
    )
    train = manifest["stages"].get("train", {})
    print(
        f"steps of all epochs at {plan.questions_per_chunk} questions a chunk: {counted.steps} counted "
        f"({at_settings.steps} at the settings' questions and {cfg.lexical_per_chunk} spans a chunk); "
        f"trained {train.get('steps', '-')}" + (" (under the budget)" if plan.budget_seconds else "")
    )
    return 0


def _vocabulary(base_model: str) -> frozenset[str] | None:
    """The base model's words, as the run gave its generator (None when its tokenizer cannot be loaded here)."""
    try:
        from transformers import AutoTokenizer

        from ragtune.models import resolve_base_model, word_vocabulary

        return word_vocabulary(AutoTokenizer.from_pretrained(resolve_base_model(base_model)))
    except Exception:  # a Hub model that is not cached here: the generator runs without a word list
        return None


if __name__ == "__main__":
    sys.exit(main())
