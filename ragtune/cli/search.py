"""`ragtune search`, `ragtune export` and `ragtune evaluate`: the drop-in commands.

The CLI entry (cli/__init__.py) wires these in: `add_parsers(sub)` adds the subcommands and `COMMANDS` maps
each name to its handler; cli.main prints any RagtuneError they raise in one line.
Like the entry, this is a printing layer; ragtune.search does the work.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any, Callable

from ..llamaindex_dataset import DATASET_KS, evaluate_dataset, export_llamaindex, load_llamaindex_dataset
from ..models import load_model, pick_device, resolve_base_model
from ..onnx_export import OnnxError, export_onnx, require_onnx
from ..openvino_export import OpenVinoError, export_openvino, require_openvino
from ..records import Chunk, RunDirError, read_jsonl
from ..runfiles import RunFiles
from ..search import SCORE_KINDS, Hit, load_retriever, pages_label
from . import stores as cli_stores
from .console import DEVICE_HELP, check_output, positive_int


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the drop-in subcommands to ragtune's subparsers, in workflow order: search, evaluate, export."""
    p = sub.add_parser("search", help="search a run's index with its fine-tuned model")
    p.add_argument("run_dir", type=Path, metavar="RUN", help="the --out folder of a finished run")
    p.add_argument("query", metavar="QUERY", help="the question, in quotes")
    p.add_argument("-k", type=positive_int, default=5, metavar="N", help="how many chunks to show")
    p.add_argument("--compare", action="store_true", help="show the base model's results beside the fine-tuned ones")
    p.add_argument(
        "--mode",
        choices=("dense", "hybrid", "bm25"),
        default=None,
        help="dense: the model alone (cosine scores); hybrid: the model and BM25 with the run's chosen "
        "weight (scores rank within one query only); bm25: BM25 alone (raw BM25 scores) "
        "(default: what the run recommends, hybrid where it beat the model alone)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the hits as JSON (rank, score, kind, dense and BM25 parts, source, pages, text)",
    )
    p.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)

    p = sub.add_parser(
        "evaluate", help="hit@k and MRR@10 of a model on an external evaluation set (a LlamaIndex dataset JSON)"
    )
    p.add_argument("model", metavar="MODEL_OR_RUN", help="a run folder (its tuned model), a model folder or Hub id")
    p.add_argument("dataset", type=Path, metavar="FILE", help="a LlamaIndex EmbeddingQAFinetuneDataset JSON file")
    p.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)

    p = sub.add_parser(
        "export",
        help="write a run's questions as a LlamaIndex EmbeddingQAFinetuneDataset JSON, "
        "its model as ONNX, or its chunks into a vector store",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="the --out folder of a finished run")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--llamaindex", type=Path, metavar="FILE", help="the JSON file to write")
    what.add_argument(
        "--onnx",
        action="store_true",
        help="write RUN/model/onnx/model.onnx for CPU inference (needs pip install 'ragtune[onnx]')",
    )
    what.add_argument(
        "--openvino",
        action="store_true",
        help="write RUN/model/openvino/openvino_model.xml for CPU inference with OpenVINO "
        "(needs pip install 'ragtune[openvino]')",
    )
    cli_stores.add_export_args(p, what)
    p.add_argument(
        "--int8",
        nargs="?",
        const="dynamic",
        choices=("dynamic", "static"),
        metavar="{dynamic,static}",
        help="with --onnx: also write an int8 file; `static` adds one calibrated on the run's chunks "
        "(a minute more; not faster than dynamic on the CPUs measured, see docs/export.md); "
        "with --openvino: also write an int8 file, always static, calibrated on the run's chunks "
        "(about 2x torch's speed)",
    )
    p.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="the held-out test questions or the training questions",
    )


WIDTH = 80  # the terminal a user may have: every line of `search` fits it
# The scale of each mode's score, as a column heading.
SCALES = {"dense": "cosine", "bm25": "raw BM25", "hybrid": "rank score within one query"}
SHORT_SCALES = {"dense": "cosine", "bm25": "raw BM25", "hybrid": "per-query"}


def _column(hit: Hit | None, mark: str, width: int) -> list[str]:
    """Three lines of one side of `search --compare`: score, source and pages; then two lines of text."""
    if hit is None:
        return [""] * 3
    head = f"{mark}{hit.score:.3f} {hit.source} {pages_label(hit.pages)}"
    body = textwrap.wrap(" ".join(hit.text.split()), width=width - 1, max_lines=2, placeholder=" …")
    return [head[:width], *(" " + line for line in body + [""] * (2 - len(body)))]


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {
        "rank": hit.rank,
        "score": hit.score,
        "kind": hit.kind,
        "dense": hit.dense,
        "bm25": hit.bm25,
        "chunk_id": hit.chunk_id,
        "source": hit.source,
        "pages": list(hit.pages),
        "text": hit.text,
    }


def cmd_search(args: argparse.Namespace) -> int:
    retriever = load_retriever(args.run_dir, "tuned", args.device)
    mode = args.mode or retriever.mode
    results = {"fine-tuned": retriever.search(args.query, args.k, mode)}
    if args.compare:
        results = {
            "base": load_retriever(args.run_dir, "base", args.device).search(args.query, args.k, mode),
            **results,
        }
    if args.json:
        kind = results["fine-tuned"][0].kind if results["fine-tuned"] else "cosine"
        print(
            json.dumps(
                {
                    "query": args.query,
                    "mode": mode,
                    "score": SCORE_KINDS[kind],
                    "results": {name: [_hit_json(h) for h in hits] for name, hits in results.items()},
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    if not args.compare:
        print(f"fine-tuned model, {mode} mode; score: {SCALES[mode]}")
        for hit in results["fine-tuned"]:
            lines = str(hit).splitlines()
            print("\n".join([lines[0][:WIDTH], *lines[1:]]))
        return 0
    base, tuned = results["base"], results["fine-tuned"]
    side = (WIDTH - 5) // 2  # "NN. " + left + " " + right
    tuned_ids, base_ids = {h.chunk_id for h in tuned}, {h.chunk_id for h in base}
    heads = [f"{name}, {mode} ({SHORT_SCALES[mode]})" for name in ("base", "fine-tuned")]
    print(f"{'':4}{heads[0]:<{side}} {heads[1]}")
    for i in range(max(len(base), len(tuned))):
        # "*" marks a chunk only one of the two models found in its top k.
        left = _column(
            base[i] if i < len(base) else None,
            "*" if i < len(base) and base[i].chunk_id not in tuned_ids else " ",
            side,
        )
        right = _column(
            tuned[i] if i < len(tuned) else None,
            "*" if i < len(tuned) and tuned[i].chunk_id not in base_ids else " ",
            side,
        )
        for n, (line_base, line_tuned) in enumerate(zip(left, right)):
            print(f"{f'{i + 1:>2}. ' if n == 0 else '':4}{line_base:<{side}} {line_tuned}".rstrip())
    print(f"\n* = not in the other model's top {args.k}; score: {SCALES[mode]}")
    return 0


def _export_onnx(run_dir: Path, int8: str | None) -> int:
    require_onnx()  # the install hint comes before any check of the run
    if not (run_dir / "model" / "modules.json").is_file():
        raise RunDirError(f"{run_dir} has no model/modules.json: pass the --out folder of a finished `ragtune run`")
    # Static int8 is calibrated on the run's own chunks; a model folder without them gets dynamic int8 only.
    chunks = RunFiles(run_dir).chunks
    static = int8 == "static"
    texts = [c.text for c in read_jsonl(chunks, Chunk)] if static and chunks.is_file() else []
    for path in export_onnx(run_dir / "model", quantize=int8 is not None, calibration=texts):
        print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if static and not texts:
        print(f"No chunks in {chunks}: wrote dynamic int8 only (static int8 is calibrated on the run's chunks)")
    return 0


def _export_openvino(run_dir: Path, int8: str | None) -> int:
    # OpenVINO's int8 is NNCF's static quantization whatever --int8's value: it was ~2x torch, dynamic is not offered.
    require_openvino(int8 is not None)  # the install hint comes before any check of the run
    if not (run_dir / "model" / "modules.json").is_file():
        raise RunDirError(f"{run_dir} has no model/modules.json: pass the --out folder of a finished `ragtune run`")
    chunks = RunFiles(run_dir).chunks
    if int8 and not chunks.is_file():
        raise OpenVinoError(
            f"{chunks} is missing: OpenVINO int8 is calibrated on the run's chunks; export without --int8"
        )
    texts = [c.text for c in read_jsonl(chunks, Chunk)] if int8 else []
    for path in export_openvino(run_dir / "model", int8=int8 is not None, calibration=texts):
        size = path.stat().st_size + path.with_suffix(".bin").stat().st_size
        print(f"Wrote {path} and its .bin ({size / 1e6:.1f} MB)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.int8 and not (args.onnx or args.openvino):
        raise OnnxError("--int8 goes with --onnx or --openvino: ragtune export RUN --onnx --int8")
    if args.onnx:
        return _export_onnx(args.run_dir, args.int8)
    if args.openvino:
        return _export_openvino(args.run_dir, args.int8)
    if args.to:
        return cli_stores.export_to_store(args)
    check_output(args.llamaindex, "--llamaindex", folder=False)
    e = export_llamaindex(args.run_dir, args.llamaindex, args.split)
    print(
        f"Wrote {e.n_queries} {e.split} questions and {e.n_corpus} corpus chunks to {e.path} "
        "(LlamaIndex EmbeddingQAFinetuneDataset JSON)"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    # Check the file before loading a model, so a typo fails fast.
    queries, corpus, relevant = load_llamaindex_dataset(args.dataset)
    source = resolve_base_model(args.model)
    metrics = evaluate_dataset(load_model(source, pick_device(args.device)), queries, corpus, relevant)
    keys = [f"hit@{k}" for k in DATASET_KS] + ["mrr@10"]
    print(f"{source} on {len(queries)} queries over {len(corpus)} corpus texts ({args.dataset}):")
    print("".join(f"{k:>9}" for k in keys))
    print("".join(f"{metrics[k]:>9.3f}" for k in keys))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "search": cmd_search,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
}
