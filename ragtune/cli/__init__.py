"""Command line: parses flags into a Config, runs, prints. With its pairs and search
subcommands (cli/pairs.py, cli/search.py), the only code that prints.

Exit codes: 0 success, 1 failure the user can fix (one line on stderr), 2 a command line argparse
could not read, 130 interrupted by Ctrl-C, 143 stopped by SIGTERM.

Conventions (argparse, kept: the standard library, already what every flag, test and README line uses; click
or typer would add a dependency and change the usage lines for no gain here): help when run bare, an example in
every subcommand's help, each default shown once, explicit metavars (N a whole number, X a number, FILE, DIR,
GLOB), `auto` for "choose for me", no abbreviated flags, "did you mean" for a mistyped subcommand, flag or folder,
and the subcommand's own usage on a bad flag (after git's and the GNU coding standards' command-line habits).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__, hub
from ..config import AUTO, DEFAULT_EXCLUDE, GENERATORS, PRECISIONS, Config
from ..config_file import load_config_file
from ..errors import ConfigError, RagtuneError
from ..hub import resolve_token
from ..llamaindex_dataset import add_dataset_metrics, load_llamaindex_dataset
from ..metrics import cutoff_advice, metrics_text_table, retriever_rows
from ..names import BASE, FINE_TUNED
from ..pairs import load_pairs_file
from ..pipeline import Pipeline
from ..progress import ProgressReporter
from ..redact import redact, url_secrets
from ..rundir import check_out_dir
from ..themes import load_lexicon
from ..training.forgetting import guard_line
from . import pairs as cli_pairs
from . import search as cli_search
from . import stores as cli_stores
from .console import DEVICE_HELP, check_output, os_error_line


def _fmt_table(metrics: dict[str, Any]) -> str:
    return metrics_text_table(metrics)


def _print_advice(metrics: dict[str, Any], report: Path) -> None:
    """The honest end of a run in one line: which retriever did best here, what `Retriever` serves, where to
    read more; and a warning when score cutoffs moved."""
    label, best = max(retriever_rows(metrics), key=lambda row: (row[1]["hit@5"], row[1]["mrr@10"]))
    w = metrics.get("hybrid_weight")
    share = f" ({w:.1f} : {1 - w:.1f})" if isinstance(w, (int, float)) else ""
    served = {
        "hybrid": f"the hybrid of the model and BM25{share}",
        "dense": "the fine-tuned model",
        "bm25": "BM25 alone, since neither the model nor the hybrid beat it on the validation questions",
    }.get(metrics.get("recommended_mode", ""), "the fine-tuned model")
    print(
        f"Best on these held-out questions: {label} (hit@5 {best['hit@5']:.3f}, MRR@10 {best['mrr@10']:.3f}); "
        f"ragtune.Retriever serves {served}. Why, and what to use: {report}"
    )
    sim = metrics.get("similarity") or {}
    if sim.get("warn"):
        print(f"Warning: {cutoff_advice(sim[BASE]['median'], sim[FINE_TUNED]['median'])} (See the model card.)")


def _weight_or_auto(text: str) -> float | None:
    """ "auto" -> None (chosen on the validation questions); "0.6" -> 0.6."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, or auto, got {text!r}") from None


def _int_list(text: str) -> tuple[int, ...]:
    """ "256,128" -> (256, 128)."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _add_run_args(p: argparse.ArgumentParser) -> None:
    """The `run` flags, grouped by stage; every one has help, and the help shows its default."""
    d = Config(docs=Path("."))
    p.add_argument("docs", type=Path, metavar="DOCS", help="folder of PDF, .txt and .md files (or one file)")
    p.add_argument("--out", type=Path, default=d.out, metavar="DIR", help="run directory")

    g = p.add_argument_group("input and chunking")
    g.add_argument(
        "--base-model",
        default=AUTO,
        metavar="MODEL",
        help="local path or Hub id of a sentence-transformers model (auto: the bundled all-MiniLM-L6-v2)",
    )
    g.add_argument("--extractor", choices=("pypdf", "pypdfium2"), default=d.extractor, help="PDF text extractor")
    g.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="read only the files matching this glob (path under DOCS or file name, any case); repeat for "
        "more; an included file is read even if it matches --exclude",
    )
    g.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help=f"also leave out files matching this glob; repeat for more (left out unless included: "
        f"{', '.join(d.exclude)})",
    )
    g.add_argument("--chunk-tokens", type=int, default=d.chunk_tokens, metavar="N", help="chunk size in model tokens")
    g.add_argument("--chunk-overlap", type=int, default=d.chunk_overlap, metavar="N", help="overlap in model tokens")
    g.add_argument(
        "--themes",
        type=Path,
        default=None,
        dest="themes_file",
        metavar="FILE",
        help="YAML or TOML: theme -> keywords (default: the built-in lexicon)",
    )

    g = p.add_argument_group("questions")
    g.add_argument("--generator", choices=GENERATORS, default=d.generator, help="how questions are written")
    g.add_argument(
        "--questions-per-chunk",
        type=int,
        default=d.questions_per_chunk,
        metavar="N",
        help="questions written per chunk",
    )
    g.add_argument(
        "--lexical-per-chunk",
        type=int,
        default=d.lexical_per_chunk,
        metavar="N",
        help="BM25-labelled spans of each training chunk's sentences to train on as well (0: off)",
    )
    g.add_argument(
        "--near-duplicate",
        type=float,
        default=d.near_duplicate,
        metavar="X",
        help="drop a question this similar to another of its chunk (1.0: off)",
    )
    g.add_argument(
        "--round-trip-k",
        type=int,
        default=d.round_trip_k,
        metavar="N",
        help="drop a training question whose chunk BM25 does not rank in the top N (0: off); "
        "held-out and validation questions are never filtered",
    )

    g = p.add_argument_group("LLM question generators (--generator openai or local)")
    g.add_argument(
        "--llm-base-url",
        default=d.llm_base_url,
        metavar="URL",
        help="any OpenAI-compatible server (vLLM, Ollama, llama.cpp: http://host:port/v1); the key comes "
        "from OPENAI_API_KEY",
    )
    g.add_argument(
        "--llm-model",
        default=d.llm_model,
        metavar="MODEL",
        help="openai: the model name; local: a model folder, a .gguf file, or smollm2",
    )
    g.add_argument(
        "--llm-concurrency", type=int, default=d.llm_concurrency, metavar="N", help="requests in flight at once"
    )
    g.add_argument(
        "--llm-timeout", type=float, default=d.llm_timeout, metavar="SECONDS", help="seconds to wait for one reply"
    )
    g.add_argument(
        "--llm-retries",
        type=int,
        default=d.llm_retries,
        metavar="N",
        help="retries of a timeout, dropped connection, 429 or 5xx (exponential backoff)",
    )

    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=float, default=d.epochs, metavar="X", help="passes over the training questions")
    g.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        metavar="N",
        help="rows per batch, each one chunk with 4 questions",
    )
    g.add_argument("--lr", type=float, default=d.learning_rate, dest="learning_rate", metavar="X", help="learning rate")
    g.add_argument(
        "--warmup-ratio", type=float, default=d.warmup_ratio, metavar="X", help="share of the steps spent warming up"
    )
    g.add_argument(
        "--pairs",
        type=Path,
        action="append",
        default=[],
        dest="pairs_files",
        metavar="FILE",
        help="labelled pairs (CSV/JSONL: sentence1,sentence2,label) to train on alongside the questions; "
        "repeat for more files",
    )
    g.add_argument("--pairs-loss", choices=("cosine", "cosent", "angle"), default=d.pairs_loss, help="loss for --pairs")
    g.add_argument(
        "--hard-negatives",
        action=argparse.BooleanOptionalAction,
        default=d.hard_negatives,
        help="train with one mined hard negative per chunk",
    )
    g.add_argument(
        "--same-theme-negatives",
        action=argparse.BooleanOptionalAction,
        default=d.same_theme_negatives,
        help="with --hard-negatives: prefer a negative on the same theme as the chunk",
    )
    g.add_argument(
        "--mini-batch-size",
        type=int,
        default=d.mini_batch_size,
        metavar="N",
        help="encode this many texts at a time with gradient caching, for batches larger than memory allows (0: off)",
    )
    g.add_argument(
        "--matryoshka-dims",
        type=_int_list,
        default=d.matryoshka_dims,
        metavar="N,N,...",
        help="also train and report these truncated embedding sizes, e.g. 256,128,64",
    )
    g.add_argument("--max-steps", type=int, default=d.max_steps, metavar="N", help="cap on training steps (-1: none)")
    g.add_argument(
        "--time-budget",
        default=d.time_budget,
        metavar="DURATION",
        help="fit the whole run in this time (30m, 90s, 1h): it measures a few steps and chooses steps, "
        "questions per chunk and passages, and says what it chose",
    )
    g.add_argument("--seed", type=int, default=d.seed, metavar="N", help="seed of every random choice")
    g.add_argument("--device", default=AUTO, metavar="DEVICE", help=DEVICE_HELP)
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="training arithmetic (auto: bf16 or fp16 on a GPU, bf16 on a CPU that has it, else fp32)",
    )

    g = p.add_argument_group("model selection")
    g.add_argument(
        "--test-fraction",
        type=float,
        default=d.eval_fraction,
        dest="eval_fraction",
        metavar="X",
        help="share of chunks whose questions are held out as the test set",
    )
    g.add_argument(
        "--val-fraction",
        type=float,
        default=d.val_fraction,
        metavar="X",
        help="share of chunks whose questions pick the checkpoint and the mix (0: no validation)",
    )
    g.add_argument(
        "--validations",
        type=int,
        default=d.evals,
        dest="evals",
        metavar="N",
        help="validations (and checkpoints) over training",
    )
    g.add_argument(
        "--patience",
        type=int,
        default=d.patience,
        metavar="N",
        help="stop after this many validations without improvement (0: never stop early)",
    )
    g.add_argument(
        "--wise",
        action=argparse.BooleanOptionalAction,
        default=d.wise,
        help="mix the tuned weights with the base in the share validation prefers (WiSE-FT)",
    )

    g = p.add_argument_group("retrieval")
    g.add_argument(
        "--passage-words",
        type=int,
        default=d.passage_words,
        metavar="N",
        help="also index each chunk as passages of whole sentences, N words or more (0: one vector per chunk)",
    )
    g.add_argument(
        "--passage-stride",
        type=int,
        default=d.passage_stride,
        metavar="N",
        help="start a passage at every N-th sentence, so passages overlap (0: passages without overlap)",
    )
    g.add_argument(
        "--chunk-weight",
        type=float,
        default=d.chunk_weight,
        metavar="X",
        help="a chunk scores (best passage + X * its own vector) / (1 + X)",
    )
    g.add_argument(
        "--hybrid-weight",
        type=_weight_or_auto,
        metavar="X",
        default="auto" if d.hybrid_weight is None else d.hybrid_weight,
        help="the model's share of the hybrid score, BM25 taking the rest (auto: chosen on the validation "
        "questions too; which retriever is served is always chosen there)",
    )

    g = p.add_argument_group("publishing")
    g.add_argument("--push", default="", dest="push_repo", metavar="REPO_ID", help="push the model to this Hub repo")
    g.add_argument("--private", action="store_true", help="with --push: create a private repo")
    # The same publish flags as `ragtune push`; not Config fields, they only steer the push after the run.
    g.add_argument(
        "--with-data",
        action="store_true",
        help="with --push: also upload the question-chunk pairs as the dataset repo REPO_ID-pairs",
    )
    g.add_argument(
        "--force-push",
        action="store_true",
        dest="force",
        help="with --push: push even if the run did not beat the base model",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --push: give up on a Hub request (and retry it) after this many seconds without "
        "progress (default: $RAGTUNE_HUB_TIMEOUT, else 60)",
    )


EXIT_CODES = """exit codes:
  0    success
  1    a failure you can fix, said in one line on stderr
  2    a command line that could not be read (usage on stderr)
  130  interrupted by Ctrl-C (rerun the same command to resume a run)
  143  stopped by SIGTERM (likewise)"""
# One example per subcommand, shown at the end of its --help.
EXAMPLES = {
    "run": "ragtune run docs/ --out runs/demo\n  ragtune run docs/ --out runs/demo --epochs 2 --push you/demo-embed",
    "search": 'ragtune search runs/demo "How are incidents escalated?" -k 3 --compare',
    "evaluate": "ragtune evaluate runs/demo qa.json",
    "export": "ragtune export runs/demo --llamaindex held_out.json\n  ragtune export runs/demo --onnx --int8\n"
    "  ragtune export runs/demo --to qdrant ./qdrant_data --collection docs",
    "reindex": "ragtune reindex runs/demo --qdrant ./qdrant_data --collection docs",
    "push": "ragtune push runs/demo you/demo-embed --dry-run",
    "pairs": "ragtune pairs pairs.csv --out runs/pairs --pairs-loss cosent",
    "similarity": 'ragtune similarity runs/demo "zero trust" "never trust, always verify"',
}


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows "(default: X)" after a flag's help, once, unless there is no default worth showing; keeps the
    line breaks of the examples."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, "", [], (), False, argparse.SUPPRESS) or "default" in text:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with ragtune's conventions: no abbreviated flags (a script's `--epoch` must not break when a
    flag is added), and "did you mean" for a mistyped subcommand or flag."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # type: ignore[override]
        import re

        bad = re.match(r"argument (?:COMMAND|command): invalid choice: '([^']*)'", message)
        if bad:
            names = self._subcommands()
            message = (
                f"unknown command {bad[1]!r}{_did_you_mean(bad[1], names, quote=True)} (commands: {', '.join(names)})"
            )
        super().error(message)

    def _subcommands(self) -> list[str]:
        return [name for a in self._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices]

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # The subcommand's own usage and flags, not the top level's.
            command = getattr(parsed, "command", None)
            parser = next(
                (
                    a.choices[command]
                    for a in self._actions
                    if isinstance(a, argparse._SubParsersAction) and command in a.choices
                ),
                self,
            )
            flags = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
            guesses = {e: _closest_flag(e.split("=")[0], flags) for e in extras if e.startswith("-")}
            hints = [f"{guess} for {typed}" for typed, guess in guesses.items() if guess]
            if len(hints) == 1:
                hints = [next(guess for guess in guesses.values() if guess)]
            parser.error(
                f"unrecognized arguments: {' '.join(extras)}" + (f"; did you mean {', '.join(hints)}?" if hints else "")
            )
        return parsed


def _closest_flag(typed: str, flags: Sequence[str]) -> str | None:
    """The flag a mistyped or abbreviated one was meant to be: the one flag it begins (abbreviations are refused,
    but named), else the closest spelling.

    >>> _closest_flag("--hard", ["--pairs", "--hard-negatives"]), _closest_flag("--epoch", ["--epochs", "--evals"])
    ('--hard-negatives', '--epochs')
    """
    import difflib

    starts = [f for f in flags if f.startswith(typed)]
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(typed, flags, n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(word: str, choices: Sequence[str], quote: bool = False) -> str:
    """ "; did you mean X?" for the closest choice, or "" when none is close.

    >>> _did_you_mean("--epoch", ["--epochs", "--seed"]), _did_you_mean("serch", ["search"], quote=True)
    ('; did you mean --epochs?', "; did you mean 'search'?")
    """
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {repr(close[0]) if quote else close[0]}?"


def build_parser(run_defaults: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ragtune",
        description="Fine-tune an embedding model on your documents.",
        epilog=EXIT_CODES
        + "\n\nexample:\n  "
        + EXAMPLES["run"]
        + "\n  "
        + EXAMPLES["search"]
        + "\n\nragtune COMMAND --help shows each command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"ragtune {__version__}")
    # Listed in the order of the work: run, then use and check the result, then publish; pairs apart.
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands, in workflow order")
    run = sub.add_parser("run", help="extract, chunk, generate questions, fine-tune, evaluate, save")
    _add_run_args(run)
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML or YAML file of settings (e.g. batch_size = 16), or a run's config.json; flags given here "
        "override it",
    )
    if run_defaults:
        run.set_defaults(**run_defaults)
    # Not a Config field: it only adds a table and a metrics.json entry after the run.
    run.add_argument(
        "--verbose",
        action="store_true",
        help="also list the files left out by the default exclusions (README, LICENSE, SOURCES ...)",
    )
    run.add_argument(
        "--evaluation-set",
        type=Path,
        default=None,
        metavar="FILE",
        help="also evaluate base and fine-tuned models on this external evaluation set "
        "(a LlamaIndex EmbeddingQAFinetuneDataset JSON)",
    )
    cli_search.add_parsers(sub)
    cli_stores.add_parsers(sub)
    push = sub.add_parser("push", help="upload a run's model to the Hugging Face Hub")
    push.add_argument("run_dir", type=Path, metavar="RUN", help="the --out folder of a finished `ragtune run`")
    push.add_argument("repo_id", metavar="REPO_ID", help="the Hub repo to create or update, as user/name or org/name")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no network")
    push.add_argument(
        "--force",
        "--force-push",
        action="store_true",
        dest="force",
        help="push even if the run did not beat the base model",
    )
    push.add_argument(
        "--with-data",
        action="store_true",
        help="also upload the run's question-chunk pairs as the dataset repo REPO_ID-pairs, linked from the model card",
    )
    push.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on a Hub request (and retry it) after this many seconds without progress "
        "(default: $RAGTUNE_HUB_TIMEOUT, else 60)",
    )
    cli_pairs.add_parsers(sub)
    for name, command in sub.choices.items():
        command.formatter_class = _Help
        command.epilog = f"example:\n  {EXAMPLES[name]}"
    return parser


# `run` flags that steer its --push and are no Config field.
PUSH_ONLY = ("with_data", "force", "timeout")
# Old flag names, per command, still read for one release: one name per idea (test split, validations, the
# labelled-pairs loss), the same in `run` and `pairs`.
RENAMED = {
    "run": {"--eval-fraction": "--test-fraction", "--evals": "--validations", "--eval-dataset": "--evaluation-set"},
    "pairs": {"--eval-fraction": "--test-fraction", "--loss": "--pairs-loss"},
}
# "eval" named three ideas: now test (held-out split), validation, and the external evaluation set only.
RENAMED_COMMANDS = {"eval-dataset": "evaluate"}
# Old values of a flag, per command: `export --split eval` is the test split.
RENAMED_VALUES = {"export": {"--split": {"eval": "test"}}}


def _deprecated(old: str, new: str) -> None:
    print(f"ragtune: {old} is deprecated and will go in the next release; use {new}", file=sys.stderr)


def _renamed(argv: Sequence[str]) -> list[str]:
    """`argv` with old subcommand, flag and value names replaced by the new, and a deprecation line on stderr
    for each."""
    argv = list(argv)
    at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if at is not None and argv[at] in RENAMED_COMMANDS:
        _deprecated(f"`ragtune {argv[at]}`", f"`ragtune {RENAMED_COMMANDS[argv[at]]}`")
        argv[at] = RENAMED_COMMANDS[argv[at]]
    command = argv[at] if at is not None else ""
    renames, values = RENAMED.get(command, {}), RENAMED_VALUES.get(command, {})
    out: list[str] = []
    for arg in argv:
        if arg == "--":
            out += argv[len(out) :]
            break
        name, eq, value = arg.partition("=")
        if name in renames:
            _deprecated(name, renames[name])
            arg = name = renames[name]
            arg += eq + value
        flag = name if eq else (out[-1] if out else "")
        old = value if eq else arg
        if old in values.get(flag, {}):
            new = values[flag][old]
            _deprecated(f"{flag} {old}", f"{flag} {new}")
            arg = f"{name}={new}" if eq else new
        out.append(arg)
    return out


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """`argv` parsed, old flag names included (with a deprecation line each)."""
    return build_parser().parse_args(_renamed(argv))


def _config_from_args(args: argparse.Namespace) -> Config:
    fields = {
        k: tuple(v) if isinstance(v, list) else v
        for k, v in vars(args).items()
        if k not in ("command", "evaluation_set", "config", "verbose", *PUSH_ONLY)
    }
    # --exclude adds to the files always left out (a folder's README, LICENSE …); --include reads one anyway.
    fields["exclude"] = tuple(dict.fromkeys(DEFAULT_EXCLUDE + fields.get("exclude", ())))
    return Config(**fields)


def _flag_aliases() -> dict[str, str]:
    """Flag names that differ from their Config field, as config-file keys: {"lr": "learning_rate", ...}."""
    p = argparse.ArgumentParser()
    _add_run_args(p)
    return {
        opt[2:].replace("-", "_"): a.dest
        for a in p._actions
        for opt in a.option_strings
        if opt.startswith("--")
        and not opt.startswith("--no-")
        and opt[2:].replace("-", "_") != a.dest
        and a.dest != "help"
    }


def _with_config_file(args: argparse.Namespace, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv` again with the settings of --config FILE as defaults, so flags given on the command line win."""
    notes: list[str] = []
    values = load_config_file(args.config, _flag_aliases(), notes)
    for note in notes:
        print(f"ragtune: note: {note}", file=sys.stderr)
    args = build_parser(values).parse_args(argv)
    try:
        _config_from_args(args)
    except ConfigError as e:
        # Name the file when the bad setting came from it rather than from a flag.
        if e.setting in values and getattr(args, e.setting, None) == values[e.setting]:
            raise ConfigError(f"config file {args.config}: {e}") from None
        raise
    return args


class _RedactingFilter(logging.Filter):
    """Log lines are printed lines too: a library may log the URL it requested, credentials and all."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message, *self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _quiet_libraries(secrets: Sequence[str] = ()) -> None:
    """Quiet the libraries' chatter, and mask `secrets` and URL credentials in every log line printed."""
    # Library chatter (progress bars, deprecation notices) would drown the stage lines.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    root = logging.getLogger()
    before = set(root.handlers)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Only on the handler made here: one a caller installed (a test's, an app's) stays as it is.
    for handler in set(root.handlers) - before:
        handler.addFilter(_RedactingFilter(secrets))
    for name in ("pypdf", "transformers", "sentence_transformers", "datasets", "bm25s", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _config_from_args(args)
    check_output(cfg.out, "--out")  # a bad --out fails now, not after training
    check_out_dir(cfg.out, "run", cfg.docs)  # and so does one that is not this run's to write
    if cfg.push_repo:
        resolve_token()  # a push that cannot happen (no token, or a malformed one) fails before the run
    if args.evaluation_set is not None:
        load_llamaindex_dataset(args.evaluation_set)  # a malformed file fails now, not after training
    if cfg.pairs_files:
        for f in cfg.pairs_files:
            load_pairs_file(f)  # likewise for a bad labelled-pairs file
    if cfg.themes_file is not None:
        load_lexicon(cfg.themes_file)  # and for a bad themes file, before extraction
    start = time.perf_counter()
    print(f"ragtune {__version__}: {cfg.docs} -> {cfg.out}", file=sys.stderr)
    result = Pipeline(cfg, ProgressReporter(verbose=args.verbose)).run()
    m = result.metrics
    print(f"\nRetrieval on {m['n_queries']} held-out questions over {m['n_chunks']} chunks:")
    print(_fmt_table(m))
    if "pairs" in m:
        lp = m["pairs"]
        print(f"\nLabelled pairs ({lp['n_pairs']} held out), cosine vs label:")
        print(f"{'':<12}{'pearson':>9}{'spearman':>9}")
        for label, key in (("base", BASE), ("fine-tuned", FINE_TUNED)):
            print(f"{label:<12}{lp[key]['pearson']:>9.3f}{lp[key]['spearman']:>9.3f}")
    if m["improved"]:
        print(
            f"\nImproved: hit@5 {m[BASE]['hit@5']:.3f} -> {m[FINE_TUNED]['hit@5']:.3f}, "
            f"MRR@10 {m[BASE]['mrr@10']:.3f} -> {m[FINE_TUNED]['mrr@10']:.3f}."
        )
    else:
        print(
            "\nNOT IMPROVED: the fine-tuned model is not better than the base model on held-out questions. "
            "It is saved but marked as not improved; `ragtune push` refuses it without --force."
        )
    if "general" in m:
        print(guard_line(m["general"]))
    _print_advice(m, cfg.out / "report.html")
    print(
        f"Model: {cfg.out / 'model'}   metrics: {cfg.out / 'metrics.json'}   report: {cfg.out / 'report.html'}   "
        f"({time.perf_counter() - start:.0f}s)"
    )
    if args.evaluation_set is not None:
        d = add_dataset_metrics(cfg.out, args.evaluation_set, cfg.device)
        print(f"\nRetrieval on {d['n_queries']} questions from {d['file']} over {d['n_corpus']} corpus texts:")
        print(_fmt_table(d))
    if cfg.push_repo:
        return _push(
            cfg.out,
            cfg.push_repo,
            private=cfg.private,
            dry_run=False,
            force=args.force,
            with_data=args.with_data,
            timeout=args.timeout,
            from_run=True,
        )
    return 0


def _warn(line: str) -> None:
    print(f"Warning: {line}", file=sys.stderr)


def _push(
    run_dir: Path,
    repo_id: str,
    private: bool,
    dry_run: bool,
    force: bool,
    with_data: bool = False,
    timeout: float | None = None,
    from_run: bool = False,
) -> int:
    """`ragtune push`, or the push at the end of `ragtune run --push` (`from_run`: its advice names `ragtune push`)."""
    if dry_run:
        plan = hub.plan_push(run_dir, repo_id, private, with_data)
        if plan.left_out:
            _warn(hub.left_out_line(plan.left_out))
        visibility = "private" if private else "public"
        if plan.dataset_repo_id:
            print(
                f"Would upload {len(plan.dataset_files)} files ({plan.dataset_bytes / 1e6:.1f} MB) to "
                f"{visibility} dataset repo {plan.dataset_repo_id}:"
            )
            for rel, size in plan.dataset_files:
                print(f"  {rel:<50} {size:>12,} bytes")
        print(
            f"Would upload {len(plan.files)} files ({plan.total_bytes / 1e6:.1f} MB) to "
            f"{visibility} model repo {repo_id}"
            + (f", its card listing {plan.dataset_repo_id}:" if plan.dataset_repo_id else ":")
        )
        for rel, size in plan.files:
            print(f"  {rel:<50} {size:>12,} bytes")
        print(hub.what_leaves(run_dir, repo_id, with_data))
        return 0
    # `run` has neither --force nor --timeout: its advice names what it has.
    hints = (
        {
            "force_hint": f"push it anyway with `ragtune push {run_dir} {repo_id} --force`",
            "timeout_hint": hub.TIMEOUT_ENV,
        }
        if from_run
        else {}
    )
    # Before any upload, once the push is known to go ahead: the card quotes excerpts of the user's documents.
    hub.plan_push(run_dir, repo_id, private, with_data)
    hub.check_metrics(run_dir, force, **{k: v for k, v in hints.items() if k == "force_hint"})
    print(hub.what_leaves(run_dir, repo_id, with_data), flush=True)
    url = hub.push(
        run_dir, repo_id, private=private, force=force, with_data=with_data, timeout=timeout, warn=_warn, **hints
    )
    if with_data:
        print(f"Pushed the pairs of {run_dir} to dataset {hub.dataset_repo_id(repo_id)}")
    print(f"Pushed {run_dir / 'model'} to {url}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    return _push(args.run_dir, args.repo_id, args.private, args.dry_run, args.force, args.with_data, args.timeout)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that `kill` unwinds like Ctrl-C."""

    signum = signal.SIGTERM


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()


def _after_interrupt(args: argparse.Namespace, e: KeyboardInterrupt) -> str:
    """What an interrupted command kept, and how to go on."""
    # Training catches the signal itself, saves a checkpoint and says which signal it was; after a
    # second signal it stops at once, and says whether any checkpoint was written before.
    checkpoint = hasattr(e, "signum") and not isinstance(e, _Terminated) and getattr(e, "saved", True)
    if args.command == "run":
        where = "from the training checkpoint" if checkpoint else "from the last finished stage"
        return f"rerun the same command to resume {where}."
    if args.command == "pairs":
        work = args.out / "trainer.tmp"
        if checkpoint or any(work.glob("checkpoint-*")):
            return f"the training checkpoint in {work} is kept; rerun the same command to resume from it."
        return "nothing was kept; rerun the same command to start again."
    if args.command == "push":
        # hub.push updates each repo in one commit: a cut-off upload changes nothing that is visible.
        return (
            "a repo changes on the Hub only when its upload finishes, so none is left half-pushed; "
            "rerun the same command to push."
        )
    if args.command == "reindex":
        return (
            "the old collection is untouched and nothing was switched; rerun the same command to go on "
            "without re-encoding the records already written."
        )
    return "nothing was changed." if args.command != "export" else "nothing was written."


def _output_of(args: argparse.Namespace) -> tuple[str, Path] | None:
    """The flag and path a command writes to, for error hints."""
    if args.command in ("run", "pairs"):
        return "--out", args.out
    if args.command == "export":
        return "--llamaindex", args.llamaindex
    return None


def _secrets(args: argparse.Namespace) -> list[str]:
    """What must never be printed: the credentials in --llm-base-url and the tokens in the environment."""
    found = url_secrets(getattr(args, "llm_base_url", "") or "")
    return found + [os.environ.get(name, "") for name in ("HF_TOKEN", "OPENAI_API_KEY")]


def _in_flag_words(message: str, command: str) -> str:
    """A setting's error in the words the user typed: "--hybrid-weight must be ...", not "hybrid_weight must be ...".

    >>> _in_flag_words("chunk_overlap must be less than half of chunk_tokens (256), not 200", "run")
    '--chunk-overlap must be less than half of --chunk-tokens (256), not 200'
    >>> _in_flag_words("epochs must be > 0, not 0", "run"), _in_flag_words("learning_rate must be > 0", "pairs")
    ('--epochs must be > 0, not 0', '--lr must be > 0')
    """
    import re

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if command not in sub.choices:
        return message
    for action in sub.choices[command]._actions:
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag is None or action.dest == "help":
            continue
        if "_" in action.dest:
            message = re.sub(rf"\b{action.dest}\b", flag, message)
        elif message.startswith(action.dest + " "):
            # A one-word name ("epochs", "device") only where it leads: elsewhere it may be a plain word.
            message = flag + message[len(action.dest) :]
    return message


def _ragtune_log_lines() -> Callable[[], None]:
    """Print ragtune's own log lines (the Hub's retries) like every other line, "ragtune: …" on stderr, not in
    Python's logging format; returns the function that undoes it, so a library caller's logging is left as it was."""
    logger = logging.getLogger("ragtune")
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("ragtune: %(message)s"))
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        logger.propagate = propagate

    return undo


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        # Bare `ragtune`: what it can do, not an error.
        build_parser().print_help()
        return 0
    argv = _renamed(argv)
    args = build_parser().parse_args(argv)
    _quiet_libraries(_secrets(args))
    commands = {"run": cmd_run, "push": cmd_push, **cli_pairs.COMMANDS, **cli_search.COMMANDS, **cli_stores.COMMANDS}
    # Handlers can only be set from the main thread (not when main() runs in a worker).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main else None
    lines = _ragtune_log_lines()
    try:
        if getattr(args, "config", None) is not None:
            args = _with_config_file(args, argv)
        return commands[args.command](args)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"\nragtune: interrupted ({signal.Signals(signum).name}); {_after_interrupt(args, e)}", file=sys.stderr)
        return 128 + signum
    except RagtuneError as e:
        # Whatever the error quotes (a URL, a server's reply), credentials in it are masked.
        message = str(e)
        if isinstance(e, ConfigError) and not message.startswith("config file"):
            message = _in_flag_words(message, args.command)
        print(f"ragtune: error: {redact(message, *_secrets(args))}", file=sys.stderr)
        return 1
    except OSError as e:
        # What no check caught (a full disk, a folder made read-only mid-run): one line, never a traceback.
        print(f"ragtune: error: {redact(os_error_line(e, _output_of(args)), *_secrets(args))}", file=sys.stderr)
        return 1
    finally:
        lines()
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
