"""Bad inputs, as the user meets them on the command line.

Each row gives either a counted `warning:` line that the run continues past
(and a line in report.md), or one `ragtune: error:` line and exit code 1;
never a traceback. One full run over a folder holding every kind of bad file
covers the warnings; the errors stop before any training.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from pypdf import PageObject, PdfWriter
from test_cli import assert_one_error_line
from test_extract import _encrypted, make_pdf, report_pages

from ragtune import extract as ex
from ragtune.cli import main
from ragtune.records import Page, read_jsonl
from tests.support.runs import good_docs, run_args
from tests.support.unprivileged import copy_for_unprivileged, run_unprivileged, shared_tmp_fixture  # noqa: F401 (shared_tmp)

REPO = Path(__file__).resolve().parents[1]
NIST_PDF = REPO / "resources" / "nist_ai_600_1.pdf"


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
def test_each_skip_is_a_counted_warning_and_a_report_line(
    bad_run: Ran, row: str, reason: str, counted: str, which: str
) -> None:
    assert f"warning: {counted}: {reason}: {which}" in bad_run.warnings
    report = (bad_run.run_dir / "report.md").read_text(encoding="utf-8").splitlines()
    name = which.split(":")[0].split(" p")[0]
    # report.md's data-problems line, counted as on the console.
    assert any(line.startswith(f"- {counted}: {reason}: {name}") for line in report), row


def test_every_warning_is_a_known_row(bad_run: Ran) -> None:
    # Nothing else was skipped: no stray page or line warnings.
    assert len(bad_run.warnings) == len(WARNING_ROWS), bad_run.warnings


def test_encrypted_with_empty_password_odd_encodings_and_control_characters_are_read(bad_run: Ran) -> None:
    pages = read_jsonl(bad_run.run_dir / "work" / "pages.jsonl", Page)
    text = {p.source: p.text for p in pages}
    assert {"open.pdf", "utf16.txt", "windows.md", "ctl.txt", "part0.txt"} <= set(text)
    assert text["open.pdf"] == "Secret words here."
    assert text["utf16.txt"] == "Café “naïve” résumé of the zero trust plan."
    assert text["windows.md"] == "Café “naïve” résumé of the data plan."
    # Control characters become spaces, zero-width ones vanish, ligatures and accents are normalised.
    assert text["ctl.txt"] == "alpha beta gamma delta final café\nnext\npage"
    assert sorted(p.page for p in pages if p.source == "flaky.pdf") == [1, 3]
    assert not any(ch in p.text for p in pages for ch in "\x00\x07\x1b\ue000\u200b")


def test_unreadable_inputs_and_stray_bytes_are_warnings_not_a_traceback(
    shared_tmp: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    # Issue 16: one chmod 000 file (even of an unsupported type) crashed the run with PermissionError.
    # As root nothing is unreadable, so the run is made by an unprivileged user (tests/support/unprivileged.py).
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
    text = {p.source: p.text for p in read_jsonl(shared_tmp / "run" / "work" / "pages.jsonl", Page)}
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


def test_folder_with_no_supported_files(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "slides.pptx").write_bytes(b"PK\x03\x04")
    (docs / "data.csv").write_text("a,b\n", encoding="utf-8")
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == (
        f"ragtune: error: {docs} has no .pdf, .txt or .md files (2 other files: data.csv, slides.pptx); "
        "ragtune reads no PowerPoint files: convert them to PDF first, e.g. "
        "`soffice --headless --convert-to pdf --outdir DOCS *.pptx` (LibreOffice)"
    )


def test_folder_whose_every_file_is_skipped(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "locked.pdf").write_bytes(_encrypted("hunter2"))
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == f"ragtune: error: no text to train on in {docs}: 1 file skipped: {ex.SKIP_ENCRYPTED}: locked.pdf"


def test_too_little_text_says_how_much_is_needed(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text(
        "Zero trust architecture moves defences from static perimeters to users and assets. " * 3, encoding="utf-8"
    )
    assert main(run_args(docs, tmp_path / "run", tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == (
        "ragtune: error: only 1 chunks have questions; ragtune needs at least 10 (roughly 3,000 words of "
        "text) to train and hold some out: add documents or lower --chunk-tokens (there are 1 chunks)"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "themes.yaml",
            "security: [attack*\nprivacy: [consent]\n",
            " is not valid YAML: line 2, column 8: expected ',' or ']', but got ':'",
        ),
        (
            "themes.toml",
            'security = ["attack*"\nprivacy = 3\n',
            " is not valid TOML: Unclosed array (at line 2, column 1)",
        ),
        ("themes.yaml", "security: []\n", ": theme 'security' must have a non-empty list of keyword strings"),
    ],
    ids=["yaml_syntax", "toml_syntax", "empty_theme"],
)
def test_themes_file_errors_name_file_and_line(
    tmp_path: Path,
    tiny_model_dir: Path,
    nist_pages: list[Page],
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    message: str,
) -> None:
    themes = tmp_path / name
    themes.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), out, tiny_model_dir, "--themes", str(themes))) == 1
    err = capsys.readouterr().err
    # Checked before any stage runs: the error is the only line.
    assert err.strip().splitlines() == [f"ragtune: error: themes file {themes}{message}"]
    assert not out.exists()


def test_run_dir_of_an_incompatible_version(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"ragtune_version": "0.0.1", "stages": {"extract": {}}}))
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), out, tiny_model_dir)) == 1
    line = assert_one_error_line(capsys.readouterr().err)
    assert line == (
        f"ragtune: error: {out} was made by an incompatible ragtune version (0.0.1); "
        "use a new --out directory or delete this one"
    )
