"""The command line: user mistakes give one error line and exit code 1; run, push --dry-run, --version."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ragtune
from ragtune.cli import main
from ragtune.progress import ProgressReporter
from ragtune.records import Page

REPO = Path(__file__).resolve().parents[1]


def assert_one_error_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("ragtune: error:")]
    assert len(errors) == 1, err
    # The error is the last thing printed, and no traceback precedes it.
    assert lines[-1] == errors[0]
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def run_args(docs: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["run", str(docs), "--out", str(out), "--base-model", str(model_dir), *extra]


@pytest.mark.parametrize(
    ("flags", "setting"),
    [
        (["--chunk-overlap", "200"], "--chunk-overlap"),
        (["--chunk-overlap", "-5"], "--chunk-overlap"),
        (["--chunk-tokens", "100", "--chunk-overlap", "50"], "--chunk-overlap"),
    ],
)
def test_bad_chunk_overlap(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], flags: list[str], setting: str
) -> None:
    out = tmp_path / "run"
    assert main(run_args(tmp_path, out, tiny_model_dir, *flags)) == 1
    err = capsys.readouterr().err
    # A bad setting is caught before anything runs: the error is the only line.
    assert len(err.strip().splitlines()) == 1
    assert_one_error_line(err, setting)
    assert not out.exists()


def test_bad_themes_file(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str], nist_pages: list[Page]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(nist_pages[5].text, encoding="utf-8")
    themes = tmp_path / "themes.yaml"
    themes.write_text("security: [attack*\n", encoding="utf-8")
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir, "--themes", str(themes))) == 1
    assert_one_error_line(capsys.readouterr().err, str(themes))


def test_run_then_push_dry_run(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    text = {p.page: p.text for p in nist_pages}
    for i, numbers in enumerate([(5, 6), (7, 8), (9, 10)]):
        (docs / f"part{i}.txt").write_text("\n\n".join(text[n] for n in numbers), encoding="utf-8")
    out = tmp_path / "run"
    code = main(
        run_args(
            docs,
            out,
            tiny_model_dir,
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--chunk-tokens",
            "64",
            "--chunk-overlap",
            "8",
            "--device",
            "cpu",
        )
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "ragtune: error" not in captured.err
    # The metrics table and the verdict go to stdout.
    assert "held-out questions" in captured.out
    assert "fine-tuned" in captured.out and "BM25" in captured.out
    assert ("Improved:" in captured.out) != ("NOT IMPROVED" in captured.out)
    assert (out / "metrics.json").is_file()
    # The verdict names the retriever that did best, whichever it is (BM25 included).
    from ragtune.card import retriever_rows

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # Evaluation encodes in the precision training resolved to (bf16 on a CPU with bf16 in hardware).
    trained_in = json.loads((out / "work" / "manifest.json").read_text(encoding="utf-8"))["stages"]["train"][
        "precision"
    ]
    assert metrics["encoding_precision"] == trained_in in ("fp32", "bf16")
    label, best = max(retriever_rows(metrics), key=lambda row: (row[1]["hit@5"], row[1]["mrr@10"]))
    assert f"Best on these held-out questions: {label} (hit@5 {best['hit@5']:.3f}" in captured.out

    assert main(["push", str(out), "alice/tiny-ragtune", "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "alice/tiny-ragtune" in listing and "public" in listing
    model_files = sorted(p.relative_to(out / "model").as_posix() for p in (out / "model").rglob("*") if p.is_file())
    assert {"model.safetensors", "README.md", "config.json", "modules.json"} <= set(model_files)
    listed = {line.split()[0]: line.split()[1] for line in listing.splitlines() if line.startswith("  ")}
    assert sorted(listed) == model_files
    # Sizes are the real file sizes; the card is the one rendered for the repo it goes to.
    from ragtune.hub import _card_for_upload

    uploaded_card = _card_for_upload(out, "alice/tiny-ragtune", None)
    assert uploaded_card is not None and b'SentenceTransformer("alice/tiny-ragtune")' in uploaded_card
    for rel, size in listed.items():
        real = len(uploaded_card) if rel == "README.md" else (out / "model" / rel).stat().st_size
        assert int(size.replace(",", "")) == real
    assert f"Would upload {len(model_files)} files" in listing


def test_stage_lines_go_to_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = ProgressReporter()
    reporter.stage_start("extract", 1, 8)
    reporter.stage_end("extract", "3 files, 3 pages with text", 0.25, cached=False)
    reporter.stage_start("chunk", 2, 8)
    reporter.stage_end("chunk", "67 chunks", 0.0, cached=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("[1/8] extract") and lines[0].endswith("3 files, 3 pages with text")
    assert lines[1].startswith("[2/8] chunk") and "unchanged, reused" in lines[1]


def test_push_dry_run_without_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(tmp_path), "alice/x", "--dry-run"]) == 1
    assert_one_error_line(capsys.readouterr().err, "no model to push")


def test_push_with_a_bad_repo_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(tmp_path), "not-a-repo-id", "--dry-run"]) == 1
    assert_one_error_line(capsys.readouterr().err, "'not-a-repo-id'")


def test_version_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "ragtune", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ragtune {ragtune.__version__}"
    assert proc.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_pairs_flag_takes_one_file_and_leaves_the_docs_folder_alone() -> None:
    from ragtune.cli import build_parser

    args = build_parser().parse_args(["run", "--pairs", "a.csv", "resources/", "--out", "r", "--pairs", "b.jsonl"])
    assert args.docs == Path("resources/")
    assert args.pairs_files == [Path("a.csv"), Path("b.jsonl")]


def test_every_run_flag_has_help_and_shows_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    from ragtune.cli import build_parser
    from ragtune.config import Config

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    d = Config(docs=Path("."))
    for flag, default in (
        ("--chunk-tokens", d.chunk_tokens),
        ("--epochs", d.epochs),
        ("--lr", d.learning_rate),
        ("--questions-per-chunk", d.questions_per_chunk),
        ("--passage-words", d.passage_words),
        ("--hybrid-weight", d.hybrid_weight),
        ("--out", d.out),
    ):
        assert re.search(rf"{flag} \S+ .*?\(default: {re.escape(str(default))}\)", text), flag
    # The flags come in groups, one per stage.
    for group in ("input and chunking:", "questions:", "training:", "model selection:", "retrieval:", "publishing:"):
        assert group in text
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.dest} has no help"


def test_exclude_flags_add_to_the_files_always_left_out() -> None:
    from ragtune.cli import _config_from_args, build_parser
    from ragtune.config import DEFAULT_EXCLUDE

    cfg = _config_from_args(build_parser().parse_args(["run", "docs", "--exclude", "drafts/*", "--include", "x.md"]))
    assert cfg.exclude == (*DEFAULT_EXCLUDE, "drafts/*") and cfg.include == ("x.md",)
    assert _config_from_args(build_parser().parse_args(["run", "docs"])).exclude == DEFAULT_EXCLUDE


def test_progress_bar_shows_a_count_and_eta_then_gives_way_to_the_stage_line() -> None:
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    reporter = ProgressReporter(stream, mininterval=0)
    reporter.stage_start("train", 6, 8)
    for step in range(0, 11):
        reporter.stage_progress("train", step, 10)
    reporter.stage_end("train", "10 steps", 12.5, cached=False)
    text = stream.getvalue()
    # The bar (its count, unit and time left) was drawn, then cleared for the stage line.
    assert "[6/8] train" in text and "10/10" in text and "step" in text and "<" in text
    assert text.rstrip().splitlines()[-1].startswith("[6/8] train") and text.rstrip().endswith("10 steps")


def test_progress_in_a_log_is_a_plain_line_with_the_time_left() -> None:
    import io

    stream = io.StringIO()
    reporter = ProgressReporter(stream, mininterval=3600)
    reporter.stage_start("evaluate", 7, 8)
    for done in (0, 100, 200, 400):
        reporter.stage_progress("evaluate", done, 400)
    reporter.stage_end("evaluate", "hit@5 0.5 -> 0.7", 3.0, cached=False)
    lines = stream.getvalue().splitlines()
    # No carriage returns or bars in a log: one line per update, then the stage line.
    assert "\r" not in stream.getvalue()
    # The first step at once, then nothing until `mininterval` has passed; the stage line at the end.
    assert lines[0].startswith("[7/8] evaluate  100/400 texts,") and lines[0].endswith("left")
    assert len(lines) == 2 and lines[1].endswith("hit@5 0.5 -> 0.7")
