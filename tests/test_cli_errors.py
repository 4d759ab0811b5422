"""Issue 7's bad inputs, as the user meets them on the command line.

Each row gives either a counted `warning:` line that the run continues past
(and a line in report.md), or one `ragtune: error:` line and exit code 1;
never a traceback. One full run over a folder holding every kind of bad file
covers the warnings; the errors stop before any training.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from pypdf import PageObject, PdfWriter

from ragtune import extract as ex
from ragtune.cli import _config_from_args, _flag_aliases, _with_config_file, build_parser, main
from ragtune.records import Page, read_jsonl
from test_cli import assert_one_error_line
from test_extract import _encrypted, make_pdf, report_pages
from tests.signals import ragtune_env, signal_when, start
from unprivileged import copy_for_unprivileged, run_unprivileged, shared_tmp_fixture  # noqa: F401 (shared_tmp)

REPO = Path(__file__).resolve().parents[1]
NIST_PDF = REPO / "resources" / "nist_ai_600_1.pdf"
# Small and quick: one optimiser step, no validation or weight mixing.
FAST = ["--max-steps", "1", "--batch-size", "4", "--device", "cpu", "--val-fraction", "0", "--no-wise"]


def good_docs(folder: Path, nist_pages: list[Page]) -> Path:
    """Three .txt files of NIST prose (about 2,900 words): enough to train on."""
    folder.mkdir(parents=True, exist_ok=True)
    text = {p.page: p.text for p in nist_pages}
    for i, numbers in enumerate([(5, 6), (7, 8), (9, 10)]):
        (folder / f"part{i}.txt").write_text("\n\n".join(text[n] for n in numbers), encoding="utf-8")
    return folder


def run_args(docs: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["run", str(docs), "--out", str(out), "--base-model", str(model_dir), *FAST, *extra]


def blank_pdf(pages: int) -> bytes:
    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(612, 792)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


# --- one run over every kind of bad file: warnings, and the run goes on -------------------

BAD_FILES: dict[str, Any] = {
    "corrupt.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n",
    "cut.pdf": lambda: NIST_PDF.read_bytes()[: NIST_PDF.stat().st_size // 2],
    "locked.pdf": lambda: _encrypted("hunter2"),
    "open.pdf": lambda: _encrypted(""),
    "scan.pdf": lambda: blank_pdf(2),
    "empty.pdf": lambda: make_pdf([]),
    "flaky.pdf": lambda: make_pdf(report_pages(3)),
    "slides.pptx": b"PK\x03\x04",
    "utf16.txt": "Café “naïve” résumé of the zero trust plan.\n".encode("utf-16"),
    "windows.md": "Café “naïve” résumé of the data plan.\n".encode("cp1252"),
    "blob.txt": bytes(range(1, 32)) * 50,
    "zz_copy.txt": lambda: None,  # part0.txt's bytes, filled in below
    "ctl.txt": "alpha\x00beta\x07gamma\x1b del\u200bta \ufb01nal \ue000 cafe\u0301\r\nnext\x0cpage".encode(),
}


class Ran:
    def __init__(self, code: int, out: str, err: str, run_dir: Path) -> None:
        self.code, self.out, self.err, self.run_dir = code, out, err, run_dir
        self.warnings = [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list[Page]) -> Ran:
    docs = good_docs(tmp_path_factory.mktemp("bad") / "docs", nist_pages)
    for name, data in BAD_FILES.items():
        data = data() if callable(data) else data
        (docs / name).write_bytes(data if data is not None else (docs / "part0.txt").read_bytes())
    original = PageObject.extract_text

    def flaky(self: PageObject, *args: Any, **kwargs: Any) -> str:
        text = original(self, *args, **kwargs)
        if "gamma systems" in text:  # page 2 of flaky.pdf
            raise KeyError("/Font")
        return text

    out = docs.parent / "run"
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        mp.setattr(PageObject, "extract_text", flaky)
        code = main(run_args(docs, out, tiny_model_dir))
    return Ran(code, stdout.getvalue(), stderr.getvalue(), out)


def test_bad_files_do_not_stop_the_run(bad_run: Ran) -> None:
    assert bad_run.code == 0, bad_run.err
    assert "Traceback" not in bad_run.err + bad_run.out
    assert (bad_run.run_dir / "model" / "model.safetensors").is_file()
    lines = bad_run.err.splitlines()
    # The warnings come right after the extract stage's line, which counts them.
    first = lines.index(bad_run.warnings[0])
    assert lines[first - 1].startswith("[1/8] extract")
    assert lines[first - 1].endswith("8 files read, 8 skipped; 9 pages with text; 1 page unreadable")
    assert lines[first : first + len(bad_run.warnings)] == bad_run.warnings
    # ... and the run goes on to the end.
    assert [line[:5] for line in lines if line.startswith("[")][-1] == "[8/8]"


# Each row: the file, the reason, and how it is counted; the line is exact.
WARNING_ROWS = [
    ("corrupt", ex.SKIP_DAMAGED, "1 file skipped", "corrupt.pdf: PdfReadError: startxref not found"),
    ("truncated", ex.SKIP_TRUNCATED, "1 file skipped", "cut.pdf: PdfReadError: Invalid object in /Pages"),
    ("encrypted", ex.SKIP_ENCRYPTED, "1 file skipped", "locked.pdf"),
    ("scanned", ex.SKIP_NO_TEXT, "1 file skipped", "scan.pdf"),
    ("zero_pages", ex.SKIP_ZERO_PAGES, "1 file skipped", "empty.pdf"),
    ("page_throws", ex.SKIP_PAGE_FAILED, "1 page skipped", "flaky.pdf p2: KeyError"),
    ("non_pdf", ex.SKIP_UNSUPPORTED, "1 file skipped", "slides.pptx"),
    ("binary_txt", ex.SKIP_BINARY_TEXT, "1 file skipped", "blob.txt"),
    ("duplicate", ex.SKIP_DUPLICATE, "1 file skipped", "zz_copy.txt: = part0.txt"),
]


@pytest.mark.parametrize(("row", "reason", "counted", "which"), WARNING_ROWS, ids=[r[0] for r in WARNING_ROWS])
def test_each_skip_is_a_counted_warning_and_a_report_line(bad_run: Ran, row: str, reason: str, counted: str,
                                                          which: str) -> None:
    assert f"warning: {counted}: {reason}: {which}" in bad_run.warnings
    report = (bad_run.run_dir / "report.md").read_text(encoding="utf-8").splitlines()
    name = which.split(":")[0].split(" p")[0]
    assert any(line.startswith(f"- extract: {reason}: 1 ({name}") for line in report), row


def test_every_warning_is_a_known_row(bad_run: Ran) -> None:
    # Nothing else was skipped: no stray page or line warnings.
    assert len(bad_run.warnings) == len(WARNING_ROWS), bad_run.warnings


def test_encrypted_with_empty_password_odd_encodings_and_control_characters_are_read(bad_run: Ran) -> None:
    pages = read_jsonl(bad_run.run_dir / "pages.jsonl", Page)
    text = {p.source: p.text for p in pages}
    assert {"open.pdf", "utf16.txt", "windows.md", "ctl.txt", "part0.txt"} <= set(text)
    assert text["open.pdf"] == "Secret words here."
    assert text["utf16.txt"] == "Café “naïve” résumé of the zero trust plan."
    assert text["windows.md"] == "Café “naïve” résumé of the data plan."
    # Control characters become spaces, zero-width ones vanish, ligatures and accents are normalised.
    assert text["ctl.txt"] == "alpha beta gamma delta final café\nnext\npage"
    assert sorted(p.page for p in pages if p.source == "flaky.pdf") == [1, 3]
    assert not any(ch in p.text for p in pages for ch in "\x00\x07\x1b\ue000\u200b")


def test_unreadable_inputs_and_stray_bytes_are_warnings_not_a_traceback(shared_tmp: Path, tiny_model_dir: Path,
                                                                          nist_pages: list[Page]) -> None:
    # Issue 16: one chmod 000 file (even of an unsupported type) crashed the run with PermissionError.
    # As root nothing is unreadable, so the run is made by an unprivileged user (tests/unprivileged.py).
    docs = good_docs(shared_tmp / "docs", nist_pages)
    (docs / "secret.txt").write_text("Nobody may read this.", encoding="utf-8")
    (docs / "deck.pptx").write_bytes(b"PK\x03\x04")
    (docs / "locked").mkdir()
    (docs / "locked" / "inner.txt").write_text("Hidden away.", encoding="utf-8")
    for path in (docs / "secret.txt", docs / "deck.pptx", docs / "locked"):
        path.chmod(0)
    (docs / "x.pdf").symlink_to("x.pdf")
    (docs / "mixed.txt").write_bytes("Zero trust café policies.\n".encode() + b"It \x93works\x94 well.\n")
    model = copy_for_unprivileged(tiny_model_dir, shared_tmp / "model")
    ran = run_unprivileged(["-m", "ragtune", *run_args(docs, shared_tmp / "run", model)], shared_tmp)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    warnings = {line for line in ran.stderr.splitlines() if line.startswith("warning:")}
    assert warnings == {
        f"warning: 1 file skipped: {ex.SKIP_UNREADABLE_FILE}: secret.txt: PermissionError",
        f"warning: 1 file skipped: {ex.SKIP_UNSUPPORTED}: deck.pptx",
        f"warning: 1 folder skipped: {ex.SKIP_UNREADABLE_FOLDER}: locked/: PermissionError",
        f"warning: 1 file skipped: {ex.SKIP_BAD_LINK}: x.pdf",
        f"warning: 1 file decoded in part as cp1252: {ex.SKIP_STRAY_BYTES}: mixed.txt: 2 bytes on line 2",
    }
    text = {p.source: p.text for p in read_jsonl(shared_tmp / "run" / "pages.jsonl", Page)}
    assert text["mixed.txt"] == "Zero trust café policies.\nIt “works” well."


# --- errors: one line, exit 1 ------------------------------------------------------------


def test_missing_path(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_folder"
    assert main(run_args(missing, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == f"ragtune: error: {missing} does not exist; pass the folder holding your .pdf, .txt or .md files"
    # A typo leaves nothing behind: no half-made run folder.
    assert not (tmp_path / "run").exists()


def test_empty_folder(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docs").mkdir()
    assert main(run_args(tmp_path / "docs", tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == f"ragtune: error: {tmp_path / 'docs'} is empty; put the .pdf, .txt or .md files to train on in it"
    assert not (tmp_path / "run").exists()


def test_folder_with_no_supported_files(tmp_path: Path, tiny_model_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "slides.pptx").write_bytes(b"PK\x03\x04")
    (docs / "data.csv").write_text("a,b\n", encoding="utf-8")
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == (f"ragtune: error: {docs} has no .pdf, .txt or .md files (2 other files: data.csv, slides.pptx); "
                    "ragtune reads no PowerPoint files: convert them to PDF first, e.g. "
                    "`soffice --headless --convert-to pdf --outdir DOCS *.pptx` (LibreOffice)")


def test_folder_whose_every_file_is_skipped(tmp_path: Path, tiny_model_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "locked.pdf").write_bytes(_encrypted("hunter2"))
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == f"ragtune: error: no text to train on in {docs}: 1 file skipped: {ex.SKIP_ENCRYPTED}: locked.pdf"


def test_too_little_text_says_how_much_is_needed(tmp_path: Path, tiny_model_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("Zero trust architecture moves defences from static perimeters to users and "
                                   "assets. " * 3, encoding="utf-8")
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == ("ragtune: error: only 1 chunks have questions; ragtune needs at least 10 (roughly 3,000 words of "
                    "text) to train and hold some out: add documents or lower --chunk-tokens (there are 1 chunks)")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("themes.yaml", "security: [attack*\nprivacy: [consent]\n",
         " is not valid YAML: line 2, column 8: expected ',' or ']', but got ':'"),
        ("themes.toml", "security = [\"attack*\"\nprivacy = 3\n",
         " is not valid TOML: Unclosed array (at line 2, column 1)"),
        ("themes.yaml", "security: []\n", ": theme 'security' must have a non-empty list of keyword strings"),
    ],
    ids=["yaml_syntax", "toml_syntax", "empty_theme"],
)
def test_themes_file_errors_name_file_and_line(tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page],
                                               capsys: pytest.CaptureFixture[str], name: str, content: str,
                                               message: str) -> None:
    themes = tmp_path / name
    themes.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), out, tiny_model_dir, "--themes", str(themes))) == 1
    err = capsys.readouterr().err
    # Checked before any stage runs: the error is the only line.
    assert err.strip().splitlines() == [f"ragtune: error: themes file {themes}{message}"]
    assert not out.exists()


def test_run_dir_of_an_incompatible_version(tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"ragtune_version": "0.0.1", "stages": {"extract": {}}}))
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), out, tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == (f"ragtune: error: {out} was made by an incompatible ragtune version (0.0.1); "
                    "use a new --out directory or delete this one")


# --- config files ----------------------------------------------------------------------------


def config_run(tmp_path: Path, model_dir: Path, name: str, content: str, *flags: str) -> tuple[int, str]:
    """Run with --config; each case here fails before the docs folder is read."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    code = main(run_args(tmp_path / "docs", tmp_path / "run", model_dir, "--config", str(path), *flags))
    return code, str(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.toml", "batch_sise = 8\n", "unknown key 'batch_sise'; did you mean batch_size or mini_batch_size?"),
        ("c.yaml", "chunk-tokns: 64\n",
         "unknown key 'chunk-tokns'; did you mean chunk_tokens or min_chunk_tokens or chunk_weight?"),
        ("c.toml", "colour = 'red'\n", "unknown key 'colour'; see `ragtune run --help` for the settings"),
        ("c.toml", "batch_size = 'eight'\n", "batch_size must be a whole number, not 'eight'"),
        ("c.yaml", "hard-negatives: maybe\n", "hard-negatives must be true or false, not 'maybe'"),
        ("c.toml", "matryoshka_dims = [256, 'x']\n", "matryoshka_dims must be a list of whole numbers, not [256, 'x']"),
        ("c.toml", "epochs = 2\nbatch_size = 8 8\n", "not valid TOML: Expected newline or end of document after a "
                                                     "statement (at line 2, column 16)"),
        ("c.yaml", "epochs: 2\nbatch_size: [8\n", "not valid YAML: line 3, column 1: expected ',' or ']', but got "
                                                  "'<stream end>'"),
        ("c.toml", "epochs = 0\n", "epochs must be > 0, not 0.0"),
        ("c.toml", "docs = 'elsewhere'\n", "docs is the folder given on the command line"),
        ("c.toml", "[train]\nepochs = 1\n", "unknown key 'train'"),
        ("c.json", "{}", None),
    ],
    ids=["close_match", "hyphen_close_match", "no_match", "type", "bool", "list", "toml_line", "yaml_line", "range",
         "docs", "table", "suffix"],
)
def test_config_file_errors_name_file_and_key(tmp_path: Path, tiny_model_dir: Path,
                                              capsys: pytest.CaptureFixture[str], name: str, content: str,
                                              message: str | None) -> None:
    code, path = config_run(tmp_path, tiny_model_dir, name, content)
    assert code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    line = assert_one_error_line(err)
    if message is None:
        assert line == f"ragtune: error: config file {path} must end in .toml, .yaml or .yml"
    else:
        assert line.startswith(f"ragtune: error: config file {path}: {message}"), line


def test_missing_config_file(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(run_args(tmp_path, tmp_path / "run", tiny_model_dir, "--config", str(tmp_path / "nope.toml"))) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == f"ragtune: error: cannot read config file {tmp_path / 'nope.toml'}: No such file or directory"


def test_a_flag_fixes_a_bad_config_value_and_a_flag_error_does_not_blame_the_file(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The flag wins, so the file's bad batch_size never counts; the run goes on to the (missing) docs.
    code, _ = config_run(tmp_path, tiny_model_dir, "c.toml", "batch_size = 1\n", "--batch-size", "4")
    assert code == 1 and "does not exist" in capsys.readouterr().err
    code, _ = config_run(tmp_path, tiny_model_dir, "c.toml", "epochs = 1\n", "--batch-size", "1")
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == "ragtune: error: --batch-size must be >= 2 (in-batch negatives need company), not 1"


@pytest.mark.parametrize("name", ["c.toml", "c.yaml"])
def test_config_file_sets_fields_and_flags_override_it(tmp_path: Path, name: str) -> None:
    toml = ("chunk-tokens = 64\nchunk_overlap = 8\nlr = 1e-4\nbatch_size = 8\nhard_negatives = true\n"
            "matryoshka_dims = [256, 64]\nthemes = 'my_themes.yaml'\nweight_decay = 0\nks = [1, 5]\n")
    path = tmp_path / name
    path.write_text(toml if name.endswith(".toml") else toml.replace(" = ", ": "), encoding="utf-8")
    argv = ["run", "docs", "--config", str(path), "--batch-size", "16"]
    cfg = _config_from_args(_with_config_file(build_parser().parse_args(argv), argv))
    assert (cfg.chunk_tokens, cfg.learning_rate, cfg.batch_size, cfg.hard_negatives) == (64, 1e-4, 16, True)
    assert cfg.matryoshka_dims == (256, 64) and cfg.themes_file == Path("my_themes.yaml")
    assert cfg.weight_decay == 0.0 and isinstance(cfg.weight_decay, float) and cfg.ks == (1, 5)
    assert cfg.docs == Path("docs") and cfg.chunk_overlap == 8 and cfg.seed == 13  # the rest keep their defaults


def test_config_file_knows_every_field_type() -> None:
    import dataclasses

    from ragtune.config import _KINDS, Config

    # A field of a new type would be passed through unchecked; teach load_config_file about it.
    assert {str(f.type) for f in dataclasses.fields(Config)} <= set(_KINDS)


def test_flag_aliases_map_to_config_fields() -> None:
    aliases = _flag_aliases()
    assert aliases["lr"] == "learning_rate" and aliases["themes"] == "themes_file"
    assert aliases["pairs"] == "pairs_files" and aliases["push"] == "push_repo"
    assert "no_wise" not in aliases and "help" not in aliases


# --- interruption ----------------------------------------------------------------------------


def test_ctrl_c_stops_with_one_line_and_exit_130(tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from ragtune.pipeline import Pipeline

    def interrupted(self: Pipeline) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Pipeline, "run", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), tmp_path / "run", tiny_model_dir)) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("ragtune: interrupted (SIGINT); rerun the same command to resume from "
                                            "the last finished stage.")
    # main() puts back the SIGTERM handler it found.
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_during_push_says_what_the_hub_kept(tmp_path: Path) -> None:
    # Issue 16: Ctrl-C during `push` talked about resuming stages.
    import time

    from test_hub import TOKEN, SilentServer, make_run

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN")}
    cmd = [sys.executable, "-m", "ragtune", "push", str(make_run(tmp_path)), "alice/minilm"]
    with SilentServer() as hub:  # connects, then never answers: the upload is in flight when Ctrl-C comes
        env |= {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf_home"),
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = start(cmd, env, tmp_path)
        deadline = time.monotonic() + 120
        while hub.accepted == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.accepted, proc.communicate()[1] if proc.poll() is not None else "push never connected"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "ragtune: interrupted (SIGINT); a repo changes on the Hub only when its upload finishes, so none is left "
        "half-pushed; rerun the same command to push.")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_outside_training_stops_with_one_line(tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page],
                                                     sig: signal.Signals) -> None:
    docs = good_docs(tmp_path / "docs", nist_pages)
    cmd = [sys.executable, "-m", "ragtune", *run_args(docs, tmp_path / "run", tiny_model_dir)]
    # Sent as chunking starts, while the model loads (the extract stage's own line, not its progress lines).
    code, err = signal_when(cmd, ragtune_env(tmp_path), tmp_path, sig,
                            lambda line: line.startswith("[1/8] extract") and "pages with text" in line)
    assert code == 128 + sig, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"ragtune: interrupted ({sig.name}); rerun the same command to resume "
                                            "from the last finished stage.")
    # The finished stage is kept for the rerun.
    assert "extract" in json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
