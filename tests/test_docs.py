"""What a user copies from README.md and docs/ works: every ragtune command parses with ragtune's own parser, every
Python snippet compiles, and the cheap snippets run against a tiny finished run.

The commands are parsed by `ragtune.cli.build_parser()`, never by a list of flags kept here, so a flag renamed in the
CLI fails this test until the docs follow. A placeholder in brackets (`[--private]`) counts as given, and `a|b` as
its first choice. A Python block preceded by `<!-- docs-test: compile-only -->` is compiled but not run (it needs
a long run, a network or a package ragtune does not install).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragtune.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMPILE_ONLY = "<!-- docs-test: compile-only -->"
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}

FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
INLINE = re.compile(r"`([^`]+)`")
# `python -m ragtune`, `.venv/bin/python -m ragtune`, `torchrun ... -m ragtune`, or the `ragtune` entry point.
RAGTUNE_CALL = re.compile(r"^(?:\S*python3?\s+-m\s+ragtune|torchrun\b.*?\s-m\s+ragtune|ragtune)(?=\s|$)")


def fenced_blocks(text: str) -> Iterator[tuple[str, str, int, str]]:
    """(language, body, line number, the line before the fence) of every fenced block."""
    lines = text.split("\n")
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = lines[line - 2].strip() if line >= 2 else ""
        yield m.group(1).lower(), m.group(2), line, before


def _logical_lines(body: str) -> Iterator[str]:
    """Shell lines with backslash continuations joined."""
    pending = ""
    for raw in body.split("\n"):
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def _ragtune_calls(line: str) -> Iterator[str]:
    """The ragtune invocations of one shell line (split at &&, ||, ; and |, comments dropped)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        tokens = line.split()
    # shlex joins `a && b` into separate tokens; rebuild the pieces between shell operators.
    piece: list[str] = []
    for token in [*tokens, "&&"]:
        if token in ("&&", "||", ";", "|"):
            text = shlex.join(piece)
            if RAGTUNE_CALL.match(text):
                yield text
            piece = []
        else:
            piece.append(token)


def ragtune_commands(text: str) -> list[tuple[int, str]]:
    """(line number, command) of every ragtune command in fenced shell blocks and in inline code."""
    found = []
    for lang, body, line, _ in fenced_blocks(text):
        if lang in SHELL_LANGS:
            for offset, logical in enumerate(_logical_lines(body)):
                found += [(line + 1 + offset, call) for call in _ragtune_calls(logical)]
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in INLINE.finditer(prose):
        span = " ".join(m.group(1).split())
        # Inline, only whole commands: "`ragtune push` refuses ..." in prose names a command, it does not run one.
        if re.match(r"^(?:\S*python3?\s+-m\s+ragtune|torchrun\b.*?\s-m\s+ragtune)\s", span):
            found += [(prose.count("\n", 0, m.start()) + 1, call) for call in _ragtune_calls(span)]
    return sorted(found)


def command_arguments(command: str) -> list[str]:
    """The argv a ragtune command hands its parser, with doc placeholders filled in."""
    rest = RAGTUNE_CALL.sub("", command, count=1)
    args = []
    for token in shlex.split(rest):
        if token in ("...", "…"):
            continue
        token = token.strip("[]")  # an optional argument shown as [--flag] counts as given
        if not token.startswith("-") and "|" in token:
            token = token.split("|")[0]
        elif token.startswith("-") and "|" in token:
            token = token.split("|")[0]
        if token:
            args.append(token)
    return args


def parse_error(command: str) -> str | None:
    """None when ragtune's parser accepts the command, else what it printed."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(command_arguments(command))
        except SystemExit as e:
            if e.code not in (0, None):  # --help and --version exit 0
                return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {e.code}"
    return None


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, compile only) of every ```python block."""
    return [
        (line, body, before == COMPILE_ONLY)
        for lang, body, line, before in fenced_blocks(text)
        if lang in ("python", "py")
    ]


def _all(kind):  # noqa: ANN001, ANN202 - pytest parameters: (doc name:line, item)
    return [
        pytest.param(path, line, item, id=f"{path.relative_to(ROOT)}:{line}")
        for path in DOC_FILES
        for line, *item in kind(path.read_text(encoding="utf-8"))
    ]


def test_the_docs_hold_commands_and_snippets_to_check() -> None:
    """Guards the harness itself: if the patterns found nothing, every test below would pass vacuously."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [c for _, c in ragtune_commands(readme)]
    assert any(c.startswith(".venv/bin/python -m ragtune run resources/") for c in commands)  # the fresh-machine one
    assert any(" push " in f" {c} " for c in commands) and python_blocks(readme)
    assert len(_all(ragtune_commands)) >= 15
    scale = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")
    assert any(c.startswith("torchrun ") for _, c in ragtune_commands(scale))


@pytest.mark.parametrize(("path", "line", "item"), _all(ragtune_commands))
def test_every_ragtune_command_parses(path: Path, line: int, item: list[str]) -> None:
    (command,) = item
    error = parse_error(command)
    assert error is None, f"{path.name}:{line}: `{command}` does not parse: {error}"


def test_a_flag_given_once_for_several_files_fails_the_check() -> None:
    """The README once said `--pairs a.csv b.csv c.csv`, which exits 2: the flag must be repeated."""
    old = "```\npython -m ragtune run resources/ --out runs/mixed --pairs a.csv b.csv c.csv\n```\n"
    ((_, command),) = ragtune_commands(old)
    assert "unrecognized arguments: b.csv c.csv" in (parse_error(command) or "")
    fixed = (
        "```\npython -m ragtune run resources/ --out runs/mixed \\\n    --pairs a.csv --pairs b.csv --pairs c.csv\n```"
    )
    ((_, command),) = ragtune_commands(fixed)
    assert parse_error(command) is None
    assert build_parser().parse_args(command_arguments(command)).pairs_files == [
        Path("a.csv"),
        Path("b.csv"),
        Path("c.csv"),
    ]


def test_placeholders_and_chains_are_read_as_a_user_would() -> None:
    text = (
        "Run `python -m ragtune run /tmp/x --out r && python bench/shared_bench.py r`, or\n"
        "```\nmkdir -p d && python -m ragtune push RUN you/m [--private] [--force]   # comment\n"
        "python -m ragtune pairs P.csv --out o [--pairs-loss cosine|cosent|angle]\n```\n"
    )
    commands = [c for _, c in ragtune_commands(text)]
    assert commands == [
        "python -m ragtune run /tmp/x --out r",
        "python -m ragtune push RUN you/m '[--private]' '[--force]'",
        "python -m ragtune pairs P.csv --out o '[--pairs-loss' 'cosine|cosent|angle]'",
    ]
    assert command_arguments(commands[2])[-2:] == ["--pairs-loss", "cosine"]
    assert all(parse_error(c) is None for c in commands)
    assert parse_error("python -m ragtune run DOCS --no-such-flag") is not None


@pytest.mark.parametrize(("path", "line", "item"), _all(python_blocks))
def test_every_python_snippet_compiles(path: Path, line: int, item: list) -> None:
    code, _ = item
    compile(code, f"{path.name}:{line}", "exec")


@pytest.fixture(scope="module")
def demo_cwd(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Path]:
    """A folder whose runs/demo is a finished tiny run, as the snippets expect."""
    from ragtune import Config, Pipeline
    from tests.test_search import write_pdfs

    root = tmp_path_factory.mktemp("docs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        cfg = Config(
            docs=write_pdfs(root / "pdfs"),
            out=root / "runs" / "demo",
            base_model=str(tiny_model_dir),
            max_steps=2,
            batch_size=4,
            chunk_tokens=64,
            chunk_overlap=8,
            device="cpu",
        )
        Pipeline(cfg).run()
        yield root


RUNNABLE = [p for p in _all(python_blocks) if not p.values[2][1]]


@pytest.mark.parametrize(("path", "line", "item"), RUNNABLE)
def test_cheap_python_snippets_run(
    path: Path, line: int, item: list, demo_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _ = item
    monkeypatch.chdir(demo_cwd)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(code, f"{path.name}:{line}", "exec"), {"__name__": "__docs__"})  # noqa: S102
    if "print(" in code:  # a snippet that shows results shows some on a real run
        assert out.getvalue().strip()


def test_some_snippets_run_and_the_skipped_ones_say_so() -> None:
    """A snippet is skipped only by its own marker; the README's app snippets run."""
    assert any(p.values[0].name == "README.md" for p in RUNNABLE)


def test_ci_runs_the_readme_test_command() -> None:
    """CI (.ci/run) calls the README's test command verbatim: what passes in CI is what a user runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [
        line.strip() for _, body, _, _ in fenced_blocks(readme) for line in _logical_lines(body) if " -m pytest" in line
    ]
    assert len(commands) == 1, commands
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert commands[0] in ci
