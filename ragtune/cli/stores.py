"""`ragtune export RUN --to STORE TARGET` and `ragtune reindex`: the tuned model in the app's vector store.

A printing layer, like the rest of cli/; ragtune.stores does the work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from ..errors import StoreError
from ..models import load_model, pick_device, weights_digest
from ..progress import ProgressReporter
from ..search import _require, base_model_of
from ..stores import close, export_run, open_store, reindex
from .console import DEVICE_HELP, positive_int

STORE_CHOICES = ("qdrant", "chroma", "lancedb")


def add_export_args(p: argparse.ArgumentParser, what: argparse._MutuallyExclusiveGroup) -> None:
    """`--to STORE TARGET` and `--collection` on the export subcommand."""
    what.add_argument(
        "--to",
        nargs=2,
        metavar=("STORE", "TARGET"),
        help="write the run's chunks with the tuned model's vectors into a new collection of STORE "
        "(qdrant, chroma or lancedb) at TARGET, a folder or a qdrant/chroma http:// URL",
    )
    p.add_argument(
        "--collection", default="ragtune", metavar="NAME", help="with --to: the collection (table) to create"
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reindex",
        help="re-embed a vector store collection your app uses with the tuned model, into a new collection beside it",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN", help="the --out folder of a finished run")
    where = p.add_mutually_exclusive_group(required=True)
    for kind in STORE_CHOICES:
        where.add_argument(
            f"--{kind}", metavar="TARGET", help=f"the {kind} folder" + (" or http:// URL" if kind != "lancedb" else "")
        )
    p.add_argument(
        "--collection",
        required=True,
        metavar="NAME",
        help="the collection (Qdrant: or alias; LanceDB: table) to re-embed",
    )
    p.add_argument(
        "--text-key",
        default=None,
        metavar="KEY",
        help="the payload key (Chroma: metadata key; LanceDB: column) holding each record's text "
        "(default: page_content, text, or LlamaIndex's _node_content; Chroma: the document)",
    )
    p.add_argument(
        "--drop-old", action="store_true", help="delete the old collection once the new one is complete and checked"
    )
    p.add_argument(
        "--any-model", action="store_true", help="skip the check that the run's base model embedded the collection"
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=256, metavar="N", help="records read, encoded and written at a time"
    )
    p.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)


def _check_kind(kind: str) -> None:
    if kind not in STORE_CHOICES:
        raise StoreError(f"--to takes qdrant, chroma or lancedb, not {kind!r}: ragtune export RUN --to qdrant FOLDER")


def export_to_store(args: argparse.Namespace) -> int:
    kind, target = args.to
    _check_kind(kind)
    r = export_run(args.run_dir, kind, target, args.collection, getattr(args, "device", ""))
    print(
        f"Wrote {r.n_records} chunks ({r.dim}-dim tuned vectors) to {kind} collection {r.collection} at {r.target}"
        + ("; BM25 sparse vector 'langchain-sparse' for hybrid search" if kind == "qdrant" else "")
        + ("; full-text index on 'text' for hybrid search" if kind == "lancedb" else "")
    )
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    kind = next(k for k in STORE_CHOICES if getattr(args, k))
    target = getattr(args, kind)
    _require(args.run_dir, ["model/config.json"])
    if not target.startswith(("http://", "https://")) and not Path(target).is_dir():
        # Opening a missing folder would create an empty store there; the app's store is elsewhere.
        raise StoreError(f"{target} does not exist: pass the folder (or URL) your app's {kind} store is in")
    store = open_store(kind, target)
    try:
        device = pick_device(args.device)
        model = load_model(str(args.run_dir / "model"), device)
        base = None if args.any_model else load_model(base_model_of(args.run_dir), device)
        reporter = ProgressReporter()
        reporter.stage_start("reindex", 1, 1)
        result = reindex(
            store,
            args.collection,
            model,
            weights_digest(model),
            args.text_key,
            base,
            args.drop_old,
            args.batch_size,
            progress=lambda done, total: reporter.stage_progress("reindex", done, total),
        )
        reporter.stage_progress("reindex", result.n_records, max(result.n_records, 1))
    finally:
        close(store)
    resumed = result.n_records - result.n_encoded
    print(
        f"Re-embedded {result.n_records} records of {result.old} into {result.new}"
        + (f" ({resumed} already there from an earlier run)" if resumed else "")
        + ", ids and payloads checked.",
        file=sys.stderr,
    )
    print(result.switched)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"reindex": cmd_reindex}
