"""`ragtune search`, `ragtune export` and `ragtune eval-dataset`: the drop-in commands.

The CLI entry (cli/__init__.py) wires these in: `add_parsers(sub)` adds the subcommands and `COMMANDS` maps
each name to its handler; cli.main prints any RagtuneError they raise in one line.
Like the entry, this is a printing layer; ragtune.search does the work.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Callable

from ..records import RunDirError
from ..search import DATASET_KS, Hit
from . import stores as cli_stores

COLUMN = 48  # width of one side of `search --compare`


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the drop-in subcommands to ragtune's subparsers."""
    p = sub.add_parser("search", help="search a run's index with its fine-tuned model")
    p.add_argument("run_dir", type=Path, help="the --out folder of a finished run")
    p.add_argument("query", help="the question, in quotes")
    p.add_argument("-k", type=_positive_int, default=5, help="how many chunks to show (default: 5)")
    p.add_argument("--compare", action="store_true", help="show the base model's results beside the fine-tuned ones")
    p.add_argument("--mode", choices=("dense", "hybrid", "bm25"), default=None,
                   help="dense: the model alone; hybrid: the model and BM25 with the run's chosen weight; bm25: BM25 "
                        "alone (default: what the run recommends, hybrid where it beat the model alone)")
    p.add_argument("--device", default="", help="cpu, cuda, cuda:N or mps ('': cuda or mps if available)")

    p = sub.add_parser("export", help="write a run's questions as a LlamaIndex EmbeddingQAFinetuneDataset JSON, "
                                      "its model as ONNX, or its chunks into a vector store")
    p.add_argument("run_dir", type=Path, help="the --out folder of a finished run")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--llamaindex", type=Path, metavar="FILE", help="the JSON file to write")
    what.add_argument("--onnx", action="store_true",
                      help="write RUN/model/onnx/model.onnx for CPU inference (needs pip install 'ragtune[onnx]')")
    cli_stores.add_export_args(p, what)
    p.add_argument("--int8", action="store_true", help="with --onnx: also write a dynamic int8 model_qint8.onnx")
    p.add_argument("--split", choices=("eval", "train"), default="eval",
                   help="held-out questions (eval, default) or training questions")

    p = sub.add_parser("eval-dataset", help="hit@k and MRR@10 of a model on a LlamaIndex dataset JSON")
    p.add_argument("model", metavar="MODEL_OR_RUN_DIR", help="a run folder (its tuned model), a model folder or Hub id")
    p.add_argument("dataset", type=Path, metavar="FILE", help="a LlamaIndex EmbeddingQAFinetuneDataset JSON file")
    p.add_argument("--device", default="", help="cpu, cuda, cuda:N or mps ('': cuda or mps if available)")


def _pages(pages: tuple[int, ...]) -> str:
    """Page numbers as a reader would write them.

    >>> _pages((3,)), _pages((3, 4, 5))
    ('p. 3', 'pp. 3-5')
    """
    if not pages:
        return ""
    return f"p. {pages[0]}" if len(pages) == 1 else f"pp. {pages[0]}-{pages[-1]}"


def _one_line(text: str, width: int) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" …")


def _hit_lines(hit: Hit, width: int) -> list[str]:
    """Two lines per hit: score, source and pages; then the start of the text."""
    head = f"{hit.score:.3f}  {hit.source} {_pages(hit.pages)}"
    return [head[:width], _one_line(hit.text, width)]


def cmd_search(args: argparse.Namespace) -> int:
    from ..search import load_retriever

    tuned = load_retriever(args.run_dir, "tuned", args.device).search(args.query, args.k, args.mode)
    if not args.compare:
        for hit in tuned:
            print(f"{hit.rank:>2}. {hit.score:.3f}  {hit.source} {_pages(hit.pages)}  [{hit.chunk_id}]")
            print(f"    {_one_line(hit.text, 100)}")
        return 0
    base = load_retriever(args.run_dir, "base", args.device).search(args.query, args.k, args.mode)
    tuned_ids, base_ids = {h.chunk_id for h in tuned}, {h.chunk_id for h in base}
    print(f"{'':4}{'base':<{COLUMN}}  fine-tuned")
    for i in range(max(len(base), len(tuned))):
        left = _hit_lines(base[i], COLUMN - 2) if i < len(base) else ["", ""]
        right = _hit_lines(tuned[i], COLUMN - 2) if i < len(tuned) else ["", ""]
        # "*" marks a chunk only one of the two models found in its top k.
        lmark = "*" if i < len(base) and base[i].chunk_id not in tuned_ids else " "
        rmark = "*" if i < len(tuned) and tuned[i].chunk_id not in base_ids else " "
        print(f"{i + 1:>2}. {lmark}{left[0]:<{COLUMN - 1}}  {rmark}{right[0]}")
        print(f"{'':4} {left[1]:<{COLUMN - 1}}   {right[1]}".rstrip())
    print(f"\n* = not in the other model's top {args.k}")
    return 0


def _export_onnx(run_dir: Path, int8: bool) -> int:
    from ..onnx_export import export_onnx, require_onnx

    require_onnx()  # the install hint comes before any check of the run
    if not (run_dir / "model" / "modules.json").is_file():
        raise RunDirError(f"{run_dir} has no model/modules.json: pass the --out folder of a finished `ragtune run`")
    for path in export_onnx(run_dir / "model", quantize=int8):
        print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..onnx_export import OnnxError
    from ..search import export_llamaindex
    from .pairs import check_output

    if args.int8 and not args.onnx:
        raise OnnxError("--int8 goes with --onnx: ragtune export RUN --onnx --int8")
    if args.onnx:
        return _export_onnx(args.run_dir, args.int8)
    if args.to:
        return cli_stores.export_to_store(args)
    check_output(args.llamaindex, "--llamaindex", folder=False)
    e = export_llamaindex(args.run_dir, args.llamaindex, args.split)
    print(f"Wrote {e.n_queries} {e.split} questions and {e.n_corpus} corpus chunks to {e.path} "
          "(LlamaIndex EmbeddingQAFinetuneDataset JSON)")
    return 0


def cmd_eval_dataset(args: argparse.Namespace) -> int:
    from ..models import load_model, pick_device
    from ..search import evaluate_dataset, load_llamaindex_dataset, model_source

    # Check the file before loading a model, so a typo fails fast.
    queries, corpus, relevant = load_llamaindex_dataset(args.dataset)
    source = model_source(args.model)
    metrics = evaluate_dataset(load_model(source, pick_device(args.device)), queries, corpus, relevant)
    keys = [f"hit@{k}" for k in DATASET_KS] + ["mrr@10"]
    print(f"{source} on {len(queries)} queries over {len(corpus)} corpus texts ({args.dataset}):")
    print("".join(f"{k:>9}" for k in keys))
    print("".join(f"{metrics[k]:>9.3f}" for k in keys))
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "search": cmd_search,
    "export": cmd_export,
    "eval-dataset": cmd_eval_dataset,
}
