"""The parser's conventions, shared by every subcommand: help that shows each default once and an example,
no abbreviated flags, "did you mean" for a mistyped subcommand or flag, and the old names of renamed
subcommands, flags and values (read for one release, with a deprecation line each)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

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
