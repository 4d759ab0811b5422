"""Command line: parses flags into a Config, runs, prints. With its subcommands (cli/run.py, cli/push.py,
cli/pairs.py, cli/search.py, cli/stores.py) and the parser's conventions (cli/parsing.py), the only code that prints.

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
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import __version__
from ..config_file import load_config_file
from ..errors import ConfigError, RagtuneError
from ..redact import redact, url_secrets
from . import pairs as cli_pairs
from . import search as cli_search
from . import stores as cli_stores
from .console import os_error_line
from .parsing import EXAMPLES, EXIT_CODES, _Help, _Parser, _renamed
from .push import _push, cmd_push  # noqa: F401 (_push: tests and callers import it from ragtune.cli)
from .run import _add_run_args, _config_from_args, _flag_aliases, _print_advice, cmd_run  # noqa: F401 (likewise)


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


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """`argv` parsed, old flag names included (with a deprecation line each)."""
    return build_parser().parse_args(_renamed(argv))


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
