"""The `pairs` and `similarity` subcommands; the CLI entry (cli/__init__.py) adds them with `add_parsers` and `COMMANDS`.

Like the entry, this module prints and nothing under it does: progress goes to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from ..hub import resolve_pairs_model
from ..models import load_model, pick_device
from ..names import BASE, FINE_TUNED
from ..pairs import LOSSES, PRESETS, PairsConfig, run_pairs
from ..rundir import check_out_dir
from ..similarity import check_texts, cosine_matrix
from .console import DEVICE_HELP, check_output


def _preset_help(key: str) -> str:
    return ", ".join(f"{name}: {values[key]}" for name, values in PRESETS.items())


class _RepeatedFiles(argparse._ExtendAction):
    """A multi-file flag read the one way every ragtune flag takes several files, repeated (`--alternatives A
    --alternatives B`); several files after one flag still read, for one release, with a deprecation line."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if len(values) > 1:
            flag = option_string or self.dest
            print(
                f"ragtune: {flag} with several files is deprecated and will go in the next release; repeat the "
                f"flag: {' '.join(f'{flag} {v}' for v in values)}",
                file=sys.stderr,
            )
        super().__call__(parser, namespace, values, option_string)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    d = PairsConfig(pairs_files=(Path("p.csv"),))
    p = sub.add_parser("pairs", help="fine-tune on labelled pairs (sentence1, sentence2, label in [0, 1])")
    p.add_argument(
        "pairs_files",
        type=Path,
        nargs="*",
        metavar="PAIRS",
        help=".csv with columns sentence1,sentence2,label, or .jsonl with those keys",
    )
    p.add_argument(
        "--alternatives",
        type=Path,
        nargs="+",
        action=_RepeatedFiles,
        default=[],
        metavar="FILE",
        help="CSV: name, description, alternatives (';' or '|' separated) or extra columns; "
        "every two phrasings of a row become a pair labelled 1.0; repeat for more files (PAIRS files go before it)",
    )
    p.add_argument("--out", type=Path, default=d.out, metavar="DIR", help="run directory")
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=d.preset,
        help="small: bundled all-MiniLM-L6-v2; medium: sentence-transformers/all-mpnet-base-v2 "
        "(needs it cached or the Hub reachable)",
    )
    p.add_argument(
        "--base-model", default=None, metavar="MODEL", help="local path or Hub id; overrides the preset's model"
    )
    p.add_argument(
        "--pairs-loss",
        choices=tuple(LOSSES),
        default=d.loss,
        dest="loss",
        help="cosine: CosineSimilarityLoss, cosent: CoSENTLoss, angle: AnglELoss",
    )
    p.add_argument(
        "--epochs", type=float, default=None, metavar="X", help=f"default by preset ({_preset_help('epochs')})"
    )
    p.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help=f"default by preset ({_preset_help('batch_size')})"
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        dest="learning_rate",
        metavar="X",
        help=f"default by preset ({_preset_help('learning_rate')})",
    )
    p.add_argument(
        "--warmup-ratio", type=float, default=d.warmup_ratio, metavar="X", help="share of the steps spent warming up"
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=d.eval_fraction,
        dest="eval_fraction",
        metavar="X",
        help="share of pairs held out",
    )
    p.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N", help="cap on training steps (-1: none)")
    p.add_argument("--seed", type=int, default=d.seed, metavar="N", help="seed of the split and the training order")
    p.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)

    s = sub.add_parser("similarity", help="print cosine similarities between texts under a model")
    s.add_argument(
        "model", metavar="MODEL_OR_RUN", help="model folder, Hub id, or a ragtune run directory (its model/ is used)"
    )
    s.add_argument("texts", nargs="+", metavar="TEXT", help="two or more texts")
    s.add_argument("--device", default="auto", metavar="DEVICE", help=DEVICE_HELP)


def _progress(stream: TextIO | None = None) -> Callable[[int, int], None]:
    stream = stream or sys.stderr
    # Print at most every 0.5 s on a terminal, every 30 s in a log file.
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= (0.5 if stream.isatty() else 30):
            last[0] = now
            print(
                f"  step {done}/{total}",
                end="\r" if stream.isatty() and done != total else "\n",
                file=stream,
                flush=True,
            )

    return report


def cmd_pairs(args: argparse.Namespace) -> int:
    fields = {k: v for k, v in vars(args).items() if k != "command"}
    fields["pairs_files"] = tuple(fields["pairs_files"])
    fields["alternatives"] = tuple(fields["alternatives"])
    cfg = PairsConfig(**fields)
    check_output(cfg.out, "--out")  # before training, not after it
    check_out_dir(cfg.out, "pairs")  # ragtune deletes or overwrites only what it wrote itself
    start = time.perf_counter()
    result = run_pairs(cfg, log=lambda msg: print(msg, file=sys.stderr, flush=True), progress=_progress())
    m = result.metrics
    print(f"\nCosine similarity vs labels on {m['n_test']} held-out pairs:")
    print(f"{'':<12}{'pearson':>10}{'spearman':>10}")
    for label, key in (("base", BASE), ("fine-tuned", FINE_TUNED)):
        print(f"{label:<12}{m[key]['pearson']:>10.4f}{m[key]['spearman']:>10.4f}")
    print(
        "\nImproved."
        if m["improved"]
        else "\nNOT IMPROVED: the fine-tuned model does not beat the base model on both correlations."
    )
    print(f"Model: {cfg.out / 'model'}   metrics: {cfg.out / 'metrics.json'}   ({time.perf_counter() - start:.0f}s)")
    return 0


def format_matrix(texts: Sequence[str], sims: Any) -> str:
    """A legend of numbered texts, then the similarity matrix with numbered rows and columns.

    >>> print(format_matrix(["a", "b"], [[1.0, 0.25], [0.25, 1.0]]))
    [1] a
    [2] b
    <BLANKLINE>
              [1]     [2]
    [1]    1.0000  0.2500
    [2]    0.2500  1.0000
    """
    n = len(texts)
    lines = [f"[{i}] {t}" for i, t in enumerate(texts, start=1)]
    lines.append("")
    lines.append(" " * 5 + "".join(f"{f'[{j}]':>8}" for j in range(1, n + 1)))
    for i in range(n):
        lines.append(f"{f'[{i + 1}]':<5}" + "".join(f"{sims[i][j]:>8.4f}" for j in range(n)))
    return "\n".join(lines)


def cmd_similarity(args: argparse.Namespace) -> int:
    # Check the texts before spending seconds on loading the model.
    check_texts(args.texts)
    source = resolve_pairs_model(
        args.model, hint="download it once with network access, or pass a local model folder or a ragtune run directory"
    )
    model = load_model(source, pick_device(args.device))
    sims = cosine_matrix(model, args.texts)
    print(f"{sims[0][1]:.4f}" if len(args.texts) == 2 else format_matrix(args.texts, sims))
    return 0


COMMANDS = {"pairs": cmd_pairs, "similarity": cmd_similarity}
