"""Distillation A/B on a finished run: its model (the first stage) against the same model after `--distil-steps`.

    python -m bench.distil_ab RUN_DIR --steps 16 --save OUT_DIR [--teacher-weight W] [--json OUT.json]

The second stage (ragtune.training.distil) runs here exactly as the train stage runs it after the first:
the run's training questions and chunks, its validation questions (built as the train stage builds them),
its settings and seed. It starts from RUN_DIR/model, which is what the first stage of the same run with
`--distil-steps` ends with (same data, settings and seed), so the first stage is not trained twice. The
distilled model is saved to OUT_DIR/model; score it on third-party questions with
`python -m bench.shared_bench RUN_DIR --chunking chars1000 --model OUT_DIR/model`.

Printed: the stage's record (validation before and during it, the mix kept), its seconds beside the
first stage's (from the run's manifest), and the run's held-out table (one vector, passages, BM25, the
hybrid at the run's weight: hit@5 and MRR@10) for both models, encoded in the run's precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ragtune.config import Config
from ragtune.config_file import load_config_file
from ragtune.fileio import read_json
from ragtune.metrics import MRR_AT, rank_metrics
from ragtune.models import encoding_in, load_model, pick_device, resolve_precision
from ragtune.records import Chunk, Pair, read_jsonl
from ragtune.retrieval import BM25Index, DenseIndex, embed, fuse, positions_to_ids, retrieval_units
from ragtune.runfiles import RunFiles
from ragtune.stages.train import _validation
from ragtune.training.distil import DEFAULT_WEIGHT, distil


def held_out_table(model: Any, cfg: Any, chunks: list[Chunk], held: list[Pair]) -> dict[str, dict[str, float]]:
    """The run's held-out table for `model`, as the evaluate stage computes it (pool 10 x depth for fusion)."""
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    queries, relevant = [p.query for p in held], [p.chunk_id for p in held]
    depth = MRR_AT
    units = retrieval_units(texts, cfg.passage_words, cfg.passage_stride)
    vectors, q = embed(model, units.texts), embed(model, queries)
    one = DenseIndex.from_vectors(vectors[: len(texts)], units.owner[: len(texts)])
    passages = DenseIndex.from_vectors(vectors, units.owner, cfg.chunk_weight)
    bm25 = BM25Index.build(texts)
    weight = DEFAULT_WEIGHT if cfg.hybrid_weight is None else cfg.hybrid_weight
    fused = fuse(passages.search(q, 10 * depth), bm25.search(queries, 10 * depth), weight, depth)
    rankings = {
        "single vector": positions_to_ids(one.search(q, depth)[1], ids),
        "passages": positions_to_ids(passages.search(q, depth)[1], ids),
        "BM25": positions_to_ids(bm25.search(queries, depth)[1], ids),
        f"hybrid {weight}": positions_to_ids(fused, ids),
    }
    out = {}
    for name, ranked in rankings.items():
        m = rank_metrics(ranked, relevant, (5,))
        out[name] = {"hit@5": m["hit@5"], f"mrr@{MRR_AT}": m[f"mrr@{MRR_AT}"]}
    return out


def run_table(run: Path, cfg: Any) -> dict[str, dict[str, float]] | None:
    """The held-out table of the run's own metrics.json (its fine-tuned model), or None before it exists."""
    path = run / "metrics.json"
    if not path.exists():
        return None
    m = read_json(path)
    weight = DEFAULT_WEIGHT if cfg.hybrid_weight is None else cfg.hybrid_weight
    rows = {
        "single vector": "fine_tuned",
        "passages": "fine_tuned_passages",
        "BM25": "bm25",
        f"hybrid {weight}": "hybrid",
    }
    return {row: {k: m[key][k] for k in ("hit@5", f"mrr@{MRR_AT}")} for row, key in rows.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished run directory")
    ap.add_argument("--steps", type=int, default=16, help="distillation steps (--distil-steps)")
    ap.add_argument("--save", type=Path, required=True, help="write the distilled model to SAVE/model")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--teacher-weight",
        type=float,
        help="the dense share of the teacher's fusion (default: the run's hybrid weight; 1: the model with passages, "
        "no BM25); the held-out table's hybrid keeps the run's",
    )
    args = ap.parse_args()
    settings = load_config_file(args.run / "config.json")
    cfg = Config(**(settings | {"distil_steps": args.steps}), docs=Path(read_json(args.run / "config.json")["docs"]))
    files = RunFiles(args.run)
    chunk_list = read_jsonl(files.chunks, Chunk)
    pairs = read_jsonl(files.split("train"), Pair)
    pairs += read_jsonl(files.split("lexical"), Pair) if files.split("lexical").exists() else []
    chunks = {c.id: c for c in chunk_list}
    held = read_jsonl(files.split("test"), Pair)
    val_pairs = read_jsonl(files.split("val"), Pair)
    held_ids = {p.chunk_id for p in held}
    trainable = set(chunks) - held_ids - {p.chunk_id for p in val_pairs}
    validation = _validation(SimpleNamespace(cfg=cfg), chunks, held_ids, val_pairs)  # type: ignore[arg-type]
    device = pick_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    first, model = load_model(str(args.run / "model")), load_model(str(args.run / "model"))
    teacher_cfg = cfg if args.teacher_weight is None else dataclasses.replace(cfg, hybrid_weight=args.teacher_weight)
    record = distil(model, pairs, chunks, trainable, teacher_cfg, device, validation)
    assert record is not None
    shutil.rmtree(args.save / "model", ignore_errors=True)
    model.save(str(args.save / "model"), safe_serialization=True)
    train = read_json(files.manifest)["stages"]["train"]
    with encoding_in(precision, device):
        # The first stage's table as the run printed it, once its evaluate stage has finished (read only now:
        # it may still be running beside the distillation); else computed the same way.
        tables = {"first": run_table(args.run, cfg) or held_out_table(first, cfg, chunk_list, held)}
        tables["distil"] = held_out_table(model, cfg, chunk_list, held)
    print(f"# {args.run}: {len(held)} held-out questions, {len(pairs)} training questions, precision {precision}")
    print(f"distillation: {json.dumps(record)}")
    print(
        f"first stage {train['seconds']} s ({train['steps']} steps); distillation {record['seconds']} s "
        f"({record['steps']} steps, with its validations): {record['seconds'] / train['seconds']:.2f}x the first stage"
    )
    print("| held-out | first stage hit@5 / MRR@10 | distilled hit@5 / MRR@10 |")
    print("|---|---:|---:|")
    for row in tables["first"]:
        a, b = tables["first"][row], tables["distil"][row]
        print(f"| {row} | {a['hit@5']:.3f} / {a[f'mrr@{MRR_AT}']:.3f} | {b['hit@5']:.3f} / {b[f'mrr@{MRR_AT}']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"distil": record, "first_stage": train, "held_out": tables}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
