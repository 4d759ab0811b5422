"""Tests for ragtune.extract: cleaning rules, real PDFs, and damaged inputs.

Real PDFs come from resources/ (read once per module); small PDFs are written
by `make_pdf` into tmp_path so each failure mode has a file of its own.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragtune import extract as ex
from ragtune.extract import ExtractError, Extraction, clean_text, drop_running_lines, extract_folder, list_documents
from ragtune.text import words
from tests.support.pdfs import assemble, pdf_string
from tests.support.unprivileged import run_unprivileged, shared_tmp_fixture  # noqa: F401 (the shared_tmp fixture)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
NIST = "nist_ai_600_1.pdf"
BLUEPRINT = "blueprint_ai_bill_of_rights.pdf"


# --- a tiny PDF writer ------------------------------------------------------------


def make_pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF whose page i shows the lines pages[i], top to bottom, in Helvetica.

    >>> make_pdf([["Hello"]])[:8]
    b'%PDF-1.4'
    """
    n = len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n)) + b"] /Count %d >>" % n,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding "
        b"<< /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [128 /fi] >> >>",
    ]
    for i, lines in enumerate(pages):
        ops = b"BT /F1 11 Tf 14 TL 72 760 Td " + b" ".join(pdf_string(ln) + b" Tj T*" for ln in lines) + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(ops) + ops + b"\nendstream")
    return assemble(objects)


_NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]


def report_pages(n: int) -> list[list[str]]:
    """n (<= 8) pages with a running header, a bare page number at the foot, and body text."""
    return [
        ["Acme Report 2024 Draft", f"Section {i} covers the con\ufb01guration of {_NAMES[i]} systems.",
         f"{_NAMES[i].title()} notes stay whole.", f"Figure {i} shows the {_NAMES[i + 1]} layout.", str(i)]
        for i in range(1, n + 1)
    ]  # fmt: skip


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def text_of(result: Extraction, source: str | None = None) -> str:
    return "\n".join(p.text for p in result.pages if source is None or p.source == source)


def skips(result: Extraction) -> dict[str, int]:
    return result.skipped.counts


# --- cleaning rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, want",
    [
        ("con\ufb01guration e\ufb00ort \ufb02ow o\ufb03ce", "configuration effort flow office"),
        ("the sys-\ntem works", "the system works"),
        ("AI-\ngenerated content", "AI-generated content"),
        (
            "see https://example.org/large-language-\nmodels-explained",
            "see https://example.org/large-language-models-explained",
        ),
        ("a\u00adb zero\u200bwidth", "ab zerowidth"),
        ("one\x16two\x03three", "one two three"),
        ("  many   spaces\t\there \n\n\n\nnext", "many spaces here\n\nnext"),
        ("\ufb01nal\r\nline\rend", "final\nline\nend"),
        ("full\uff37idth \u2460", "fullWidth 1"),
    ],
)
def test_clean_text(raw: str, want: str) -> None:
    assert clean_text(raw) == want


def test_hyphen_at_line_break_follows_the_documents_own_usage() -> None:
    # "third-party" elsewhere keeps the hyphen; "decision making" has both halves as words.
    vocab = ex.vocabulary_of("third-party risk and decision making, and recalibration")
    assert clean_text("a third-\nparty tool", vocab) == "a third-party tool"
    assert clean_text("decision-\nmaking", vocab) == "decision-making"
    assert clean_text("needs recalibra-\ntion", vocab) == "needs recalibration"
    assert clean_text("sensi-\ntive data", vocab) == "sensitive data"


def test_drop_running_lines_removes_headers_footers_and_edge_page_numbers() -> None:
    pages = [
        f"Acme Report\n{w} begins\n{w} goes on\nthen\n2024\n{w} ends\nfooter page {i}\n{i}"
        for i, w in enumerate(_NAMES[:5])
    ]
    out = drop_running_lines(pages)
    assert out[0] == "alpha begins\nalpha goes on\nthen\n2024\nalpha ends"
    assert all("Acme" not in t and "footer" not in t for t in out)


def test_drop_running_lines_keeps_short_documents_and_inner_numbers() -> None:
    assert drop_running_lines(["Title\na\nb\n12\nc\nd\ne"]) == ["Title\na\nb\n12\nc\nd\ne"]
    assert drop_running_lines(["iv\nPreface text"]) == ["Preface text"]
    assert drop_running_lines(["civil rights\nvi"]) == ["civil rights"]


def test_garbled_glyph_lines_are_detected_but_ordinary_text_is_not() -> None:
    garbled = ["=YWO\x03ZKXOVS]^]\x03KV]Y\x03\\KS]ON\x03^RO", "CY_ ]RY_VN XY^ PKMO NS]M\\SWSXK^SYX Lc"]
    ordinary = ["See [NISTPRIV] and SP 800-207.", "snake_case names, e.g. user_id", "GV-1.1-001 (AI RMF)"]
    assert all(ex.garbled_share(ln) >= 0.3 for ln in garbled)
    assert all(ex.garbled_share(ln) == 0 for ln in ordinary)


@pytest.mark.parametrize(
    "data",
    [
        "café “quoted” naïve".encode("utf-8"),
        "café “quoted” naïve".encode("utf-8-sig"),
        "café “quoted” naïve".encode("utf-16"),
        "café “quoted” naïve".encode("utf-16-be"),
        "café “quoted” naïve".encode("cp1252"),
    ],
)
def test_decode_text_handles_common_encodings(data: bytes) -> None:
    assert ex.decode_text(data) == "café “quoted” naïve"


def test_utf8_with_stray_bytes_stays_utf8_and_says_where() -> None:
    # Issue 16: four stray bytes used to make the whole file cp1252 ("café" -> "cafÃ©").
    raw = "Le café est prêt.\n".encode() + b"Quote \x93this\x94 now\n" + "naïve\n".encode() + b"price 5\x80 \xe9t\xe9\n"
    text, stray = ex.decode_text_counted(raw)
    assert text == "Le café est prêt.\nQuote “this” now\nnaïve\nprice 5€ été\n"
    assert stray == {2: 2, 4: 3}


def test_text_without_any_utf8_stays_single_byte_and_quiet() -> None:
    assert ex.decode_text_counted("Café “naïve” résumé\n".encode("cp1252")) == ("Café “naïve” résumé\n", {})
    # 0x81 is undefined in cp1252, so the file is latin-1.
    assert ex.decode_text_counted(b"caf\xe9 \x81") == ("café \x81", {})


def test_stray_bytes_in_a_text_file_are_a_counted_warning(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "Zero trust café.\n".encode() + b"It \x93works\x94.\n")
    write(tmp_path, "clean.md", "Résumé of the plan.".encode())
    write(tmp_path, "windows.txt", "Naïve “plan” here.".encode("cp1252"))
    result = extract_folder(tmp_path)
    assert text_of(result, "notes.txt") == "Zero trust café.\nIt “works”."
    assert skips(result) == {ex.SKIP_STRAY_BYTES: 1}
    assert result.skipped.examples[ex.SKIP_STRAY_BYTES] == ["notes.txt: 2 bytes on line 2"]
    assert ex.describe_skips(result.skipped.to_dict()) == [
        f"1 file decoded in part as cp1252: {ex.SKIP_STRAY_BYTES}: notes.txt: 2 bytes on line 2"
    ]


def test_binary_file_with_stray_bytes_is_only_skipped_as_binary(tmp_path: Path) -> None:
    write(tmp_path, "blob.txt", ("é".encode() + bytes(range(1, 32)) + b"\xff") * 40)
    write(tmp_path, "ok.md", b"fine")
    assert skips(extract_folder(tmp_path)) == {ex.SKIP_BINARY_TEXT: 1}


# --- real PDFs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Extraction:
    return extract_folder(RESOURCES)


def test_real_pdfs_are_all_read(real: Extraction) -> None:
    # resources/ also holds text files (SOURCES.md …); every PDF in it is read.
    assert sorted(f for f in real.files if f.endswith(".pdf")) == [BLUEPRINT, NIST]
    # SOURCES.md is left out by the default --exclude; nothing else is skipped whole.
    assert real.skipped.examples[ex.SKIP_EXCLUDED] == ["SOURCES.md"]
    assert not set(real.skipped.counts) & (ex.FILE_SKIPS - {ex.SKIP_EXCLUDED})


def test_fi_ligature_is_kept_as_fi(real: Extraction) -> None:
    text = text_of(real, NIST)
    assert text.count("Configuration") >= 50
    assert "misconfiguration" in text.lower()
    assert not re.search(r"(?<![A-Za-z])guration", text)
    assert not re.search("[\ufb00-\ufb06]", text)


def test_words_are_not_split_or_glued_at_line_breaks(real: Extraction) -> None:
    text = text_of(real, NIST)
    for compound in ("AI-generated", "third-party", "state-of-the-art", "pre-deployment"):
        assert compound in text
    for glued in ("AIgenerated", "thirdparty", "ofthe", "predeployment", "wpcontent"):
        assert glued not in text
    assert "recalibration" in text_of(real, BLUEPRINT)


def test_page_numbers_are_one_based_and_ordered(real: Extraction) -> None:
    nist = [p.page for p in real.pages if p.source == NIST]
    assert nist[0] == 1 and nist == sorted(set(nist)) and max(nist) == 64
    first = next(p for p in real.pages if p.source == NIST and p.page == 6)
    # The printed page number ("2") sits at the top of PDF page 6 and must be gone.
    assert not first.text.startswith("2")


def test_no_printed_page_numbers_remain(real: Extraction) -> None:
    # NIST AI 600-1 prints page number n on PDF page n + 4, as a line of its own.
    for p in real.pages:
        if p.source == NIST and p.page > 5:
            assert str(p.page - 4) not in p.text.split("\n"), p.page
            assert not re.fullmatch(r"\d{1,3}", p.text.split("\n")[0])


def test_no_control_characters_survive(real: Extraction) -> None:
    assert not any(re.search(r"[\x00-\x08\x0b-\x1f\x7f]", p.text) for p in real.pages)


def test_blueprint_accounts_for_all_71_pages(real: Extraction) -> None:
    pages = [p.page for p in real.pages if p.source == BLUEPRINT]
    garbled = real.skipped.counts.get(ex.SKIP_GARBLED_PAGE, 0)
    # Its endnotes use fonts without a Unicode map; those pages are counted, not kept.
    assert len(pages) + garbled == 71
    assert pages == list(range(1, len(pages) + 1)) and len(pages) >= 50
    assert "ebample" in text_of(real, BLUEPRINT) or "example" in text_of(real, BLUEPRINT)
    assert "=YWO" not in text_of(real, BLUEPRINT)


def test_nist_has_no_lines_mistaken_for_glyph_codes(real: Extraction) -> None:
    examples = real.skipped.examples.get(ex.SKIP_GARBLED_LINE, [])
    assert not [e for e in examples if e.startswith(NIST)]


def test_blueprint_reads_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    write(tmp_path, BLUEPRINT, (RESOURCES / BLUEPRINT).read_bytes())
    logger = logging.getLogger("pypdf")
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.DEBUG):
        result = extract_folder(tmp_path)
    assert result.files == [BLUEPRINT]
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert "wrong pointing" not in capfd.readouterr().err
    assert logger.level == logging.INFO  # restored, not left silenced
    logger.setLevel(logging.NOTSET)


# --- built PDFs and folders -----------------------------------------------------------


def test_text_pdf_loses_header_footer_and_page_numbers(tmp_path: Path) -> None:
    write(tmp_path, "report.pdf", make_pdf(report_pages(4)))
    result = extract_folder(tmp_path)
    assert [p.page for p in result.pages] == [1, 2, 3, 4]
    assert (
        result.pages[1].text
        == "Section 2 covers the configuration of gamma systems.\nGamma notes stay whole.\nFigure 2 shows the delta layout."
    )
    assert result.files == ["report.pdf"] and result.skipped.total() == 0


def test_pypdfium2_backend_gives_the_same_words(tmp_path: Path) -> None:
    pytest.importorskip("pypdfium2")  # an optional extra
    write(tmp_path, "report.pdf", make_pdf(report_pages(4)))
    a, b = extract_folder(tmp_path), extract_folder(tmp_path, extractor="pypdfium2")
    assert words(text_of(a)) == words(text_of(b))


def test_missing_pypdfium2_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "report.pdf", make_pdf(report_pages(1)))
    monkeypatch.setitem(sys.modules, "pypdfium2", None)
    with pytest.raises(ExtractError, match="pip install pypdfium2"):
        extract_folder(tmp_path, extractor="pypdfium2")


def test_blank_pdf_is_skipped_as_having_no_text_layer(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(3):
        w.add_blank_page(612, 792)
    buf = io.BytesIO()
    w.write(buf)
    write(tmp_path, "scan.pdf", buf.getvalue())
    write(tmp_path, "ok.txt", b"some text")
    result = extract_folder(tmp_path)
    assert result.files == ["ok.txt"]
    assert skips(result) == {ex.SKIP_NO_TEXT: 1}
    assert "OCR" in ex.SKIP_NO_TEXT


def test_zero_page_pdf_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "empty.pdf", make_pdf([]))
    write(tmp_path, "ok.md", b"# Title\ntext")
    assert skips(extract_folder(tmp_path)) == {ex.SKIP_ZERO_PAGES: 1}


def _encrypted(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Secret words here."]]))))
    w.encrypt(user_password, "owner-pw", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_encrypted_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    write(tmp_path, "open.pdf", _encrypted(""))
    result = extract_folder(tmp_path)
    assert result.files == ["open.pdf"] and "Secret words here." in text_of(result)


def test_encrypted_pdf_with_password_is_skipped_with_a_hint(tmp_path: Path) -> None:
    write(tmp_path, "locked.pdf", _encrypted("hunter2"))
    write(tmp_path, "ok.txt", b"text")
    result = extract_folder(tmp_path)
    assert skips(result) == {ex.SKIP_ENCRYPTED: 1}
    assert result.skipped.examples[ex.SKIP_ENCRYPTED] == ["locked.pdf"]
    assert "qpdf --password" in ex.SKIP_ENCRYPTED


def test_encrypted_pdf_needing_cryptography_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    def needs_crypto(self: PdfReader, password: str) -> None:
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(PdfReader, "decrypt", needs_crypto)
    write(tmp_path, "aes.pdf", _encrypted(""))
    write(tmp_path, "ok.txt", b"text")
    assert skips(extract_folder(tmp_path)) == {ex.SKIP_NEEDS_CRYPTO: 1}


def test_corrupt_pdf_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "bad.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n")
    write(tmp_path, "ok.txt", b"text")
    result = extract_folder(tmp_path)
    assert skips(result) == {ex.SKIP_DAMAGED: 1} and result.files == ["ok.txt"]


def test_truncated_real_pdf_is_skipped(tmp_path: Path) -> None:
    data = (RESOURCES / NIST).read_bytes()
    write(tmp_path, "cut.pdf", data[: len(data) // 2])
    write(tmp_path, "ok.txt", b"text")
    assert skips(extract_folder(tmp_path)) == {ex.SKIP_TRUNCATED: 1}


def test_truncated_pdf_keeps_readable_pages_and_says_so(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    # An incremental update cut short: the earlier revision still reads.
    w = PdfWriter(io.BytesIO(make_pdf(report_pages(4))), incremental=True)
    w.add_metadata({"/Title": "Draft"})
    buf = io.BytesIO()
    w.write(buf)
    write(tmp_path, "cut.pdf", buf.getvalue()[:-30])
    result = extract_folder(tmp_path)
    assert [p.page for p in result.pages] == [1, 2, 3, 4]
    assert skips(result) == {ex.SKIP_TRUNCATED_PARTIAL: 1}


def test_page_that_fails_is_skipped_and_the_rest_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pypdf import PageObject

    original = PageObject.extract_text

    def flaky(self: PageObject, *args: object, **kwargs: object) -> str:
        text = original(self, *args, **kwargs)
        if "gamma systems" in text:
            raise KeyError("/Font")
        return text

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    write(tmp_path, "report.pdf", make_pdf(report_pages(3)))
    result = extract_folder(tmp_path)
    assert [p.page for p in result.pages] == [1, 3]
    assert skips(result) == {ex.SKIP_PAGE_FAILED: 1}
    assert result.skipped.examples[ex.SKIP_PAGE_FAILED] == ["report.pdf p2: KeyError"]


def test_non_pdf_files_are_ignored_and_listed(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", b"alpha text")
    write(tmp_path, "photo.png", b"\x89PNG....")
    write(tmp_path, "sub/notes.docx", b"PK\x03\x04")
    write(tmp_path, ".DS_Store", b"\x00\x01")
    write(tmp_path, ".git/config", b"[core]")
    result = extract_folder(tmp_path)
    assert skips(result) == {ex.SKIP_UNSUPPORTED: 2}
    assert sorted(result.skipped.examples[ex.SKIP_UNSUPPORTED]) == ["photo.png", "sub/notes.docx"]


def test_pdf_suffix_on_other_content_and_empty_files(tmp_path: Path) -> None:
    write(tmp_path, "page.pdf", b"<html><body>not a pdf</body></html>")
    write(tmp_path, "zero.pdf", b"")
    write(tmp_path, "ok.txt", b"text")
    assert skips(extract_folder(tmp_path)) == {ex.SKIP_NOT_PDF: 1, ex.SKIP_EMPTY_FILE: 1}


def test_text_files_in_odd_encodings_read_alike(tmp_path: Path) -> None:
    text = "Café “naïve” résumé\n"
    for name, enc in [("u8.txt", "utf-8"), ("u8bom.md", "utf-8-sig"), ("u16.txt", "utf-16"), ("win.txt", "cp1252")]:
        write(tmp_path, name, text.encode(enc))
    result = extract_folder(tmp_path)
    assert len(result.files) == 4 and {p.text for p in result.pages} == {"Café “naïve” résumé"}
    assert all(p.page == 1 for p in result.pages)


def test_control_characters_in_text_files_become_spaces(tmp_path: Path) -> None:
    write(tmp_path, "ctl.txt", b"alpha\x00beta\x07gamma\x1b delta\r\nnext\x0cpage")
    assert text_of(extract_folder(tmp_path)) == "alpha beta gamma delta\nnext\npage"


def test_binary_file_named_txt_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "blob.txt", bytes(range(1, 32)) * 50)
    write(tmp_path, "ok.md", b"fine")
    assert skips(extract_folder(tmp_path)) == {ex.SKIP_BINARY_TEXT: 1}


def big_pdf(n_pages: int) -> bytes:
    """A PDF of `n_pages` pages of four varied lines each, written with pypdf (compressed content streams)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    n = NameObject
    w = PdfWriter()
    font = w._add_object(
        DictionaryObject({n("/Type"): n("/Font"), n("/Subtype"): n("/Type1"), n("/BaseFont"): n("/Helvetica")})
    )
    words = _NAMES + ["kappa", "sigma"]
    for i in range(n_pages):
        page = w.add_blank_page(612, 792)
        page[n("/Resources")] = DictionaryObject({n("/Font"): DictionaryObject({n("/F1"): font})})
        # Words vary from page to page so that no line looks like a running header.
        lines = " ".join(
            f"({words[(i + j) % 11]} {words[i * j % 11]} section {i}.{j} covers {words[(i + 3 * j) % 11]} risk.) Tj T*"
            for j in range(4)
        )
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 10 Tf 12 TL 72 740 Td {lines} ET".encode())
        page[n("/Contents")] = w._add_object(content)
        page.compress_content_streams()
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_very_large_pdf_is_read_in_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    from pypdf import PageObject

    from ragtune.records import SkipCounter

    data = big_pdf(2000)
    cached: list[int] = []
    original = PageObject.extract_text

    def spy(self: PageObject, *args: object, **kwargs: object) -> str:
        cached.append(len(self.pdf.resolved_objects))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", spy)
    raw = ex.pypdf_pages(data, "big.pdf", SkipCounter())
    assert len(raw) == 2000 and all(raw)
    # pypdf's cache of parsed objects (content streams included) is emptied every
    # few pages instead of growing with the file; it starts with the page tree.
    assert max(cached[2 * ex._PAGES_PER_CACHE :]) <= 2 * ex._PAGES_PER_CACHE
    # Cleaning works on the whole document but holds no per-word list of it: its
    # peak stays a small multiple of the text (a list of all words made it ~19x).
    size = sum(len(t or "") for t in raw)
    tracemalloc.start()
    try:
        texts = ex.clean_document(raw, "big.pdf", SkipCounter())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * size, (peak, size)
    assert sum(map(bool, texts)) == 2000 and "section 1999.3 covers" in texts[-1]


def test_duplicate_documents_are_read_once(tmp_path: Path) -> None:
    pdf = make_pdf(report_pages(3))
    write(tmp_path, "a.pdf", pdf)
    write(tmp_path, "copy/a (1).pdf", pdf)
    write(tmp_path, "n.txt", b"same")
    write(tmp_path, "n2.txt", b"same")
    result = extract_folder(tmp_path)
    assert result.files == ["a.pdf", "n.txt"]
    assert skips(result) == {ex.SKIP_DUPLICATE: 2}
    assert len(result.pages) == 4


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: d, "is empty"),
        (lambda d: write(d, "x.png", b"png").parent, "has no .pdf, .txt or .md files"),
    ],
)
def test_unusable_folders_raise_a_one_line_error(tmp_path: Path, setup: Callable[[Path], Path], message: str) -> None:
    with pytest.raises(ExtractError, match=message) as err:
        extract_folder(setup(tmp_path))
    assert "\n" not in str(err.value)


def test_unknown_extractor_is_an_extract_error(tmp_path: Path) -> None:
    write(tmp_path, "a.txt", b"text")
    with pytest.raises(ExtractError, match="unknown extractor"):
        extract_folder(tmp_path, extractor="tika")


def test_unreadable_files_folders_and_bad_links_are_counted(shared_tmp: Path) -> None:
    # As root every file is readable, so this runs as an unprivileged user (tests/support/unprivileged.py).
    docs = shared_tmp / "docs"
    write(docs, "good.txt", b"Zero trust networks verify every request.")
    write(docs, "secret.txt", b"Nobody may read this.").chmod(0)
    write(docs, "slides.pptx", b"PK\x03\x04").chmod(0)
    write(docs, "locked/inner.txt", b"Hidden away.")
    (docs / "locked").chmod(0)
    write(docs, "elsewhere/more.md", b"Linked folder text.")
    (docs / "x.pdf").symlink_to("x.pdf")  # a link to itself
    (docs / "gone.md").symlink_to("missing.md")
    (docs / "sub").mkdir()
    (docs / "sub" / "linked").symlink_to("../elsewhere", target_is_directory=True)
    code = f"""if True:
        import json
        from pathlib import Path
        from ragtune.config import Config
        from ragtune.extract import extract_folder
        from ragtune.pipeline import _docs_fingerprint
        result = extract_folder(Path({str(docs)!r}))
        print(json.dumps({{"files": result.files, "skipped": result.skipped.to_dict(),
                          "fingerprint": _docs_fingerprint(Config(docs=Path({str(docs)!r})))}}))
    """
    ran = run_unprivileged(["-c", code], shared_tmp)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    out = json.loads(ran.stdout)
    assert out["files"] == ["elsewhere/more.md", "good.txt"]
    assert out["skipped"]["counts"] == {
        ex.SKIP_UNREADABLE_FOLDER: 1,
        ex.SKIP_BAD_LINK: 2,
        ex.SKIP_LINKED_FOLDER: 1,
        ex.SKIP_UNSUPPORTED: 1,
        ex.SKIP_UNREADABLE_FILE: 1,
    }
    examples = out["skipped"]["examples"]
    assert examples[ex.SKIP_UNREADABLE_FOLDER] == ["locked/: PermissionError"]
    assert sorted(examples[ex.SKIP_BAD_LINK]) == ["gone.md", "x.pdf"]
    assert examples[ex.SKIP_LINKED_FOLDER] == ["sub/linked"]
    assert examples[ex.SKIP_UNREADABLE_FILE] == ["secret.txt: PermissionError"]
    fingerprint = {name: digest for name, _, digest in out["fingerprint"]}
    assert fingerprint["secret.txt"] == "unreadable (PermissionError)"
    # An unsupported file is never read, not even to fingerprint it: its size and time stand for it.
    assert fingerprint["slides.pptx"].startswith("mtime:")
    assert len(fingerprint["good.txt"]) == 16
    lines = ex.describe_skips(out["skipped"])
    assert f"1 folder skipped: {ex.SKIP_UNREADABLE_FOLDER}: locked/: PermissionError" in lines
    assert f"1 link not followed: {ex.SKIP_LINKED_FOLDER}: sub/linked" in lines


def test_a_pipe_named_txt_is_counted_not_read(tmp_path: Path) -> None:
    import os

    write(tmp_path, "ok.txt", b"Some text.")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would wait forever
    result = extract_folder(tmp_path)
    assert result.files == ["ok.txt"] and result.skipped.examples[ex.SKIP_SPECIAL_FILE] == ["pipe.txt"]


def test_a_folder_whose_only_documents_are_unreadable_says_so(shared_tmp: Path) -> None:
    docs = shared_tmp / "docs"
    write(docs, "locked/inner.txt", b"Hidden away.")
    (docs / "locked").chmod(0)
    code = f"from pathlib import Path; from ragtune.extract import extract_folder; extract_folder(Path({str(docs)!r}))"
    ran = run_unprivileged(["-c", code], shared_tmp)
    assert ran.stderr.strip().splitlines()[-1] == (
        f"ragtune.errors.ExtractError: {docs} has no .pdf, .txt or .md file that can be read: "
        f"1 folder skipped: {ex.SKIP_UNREADABLE_FOLDER}: locked/: PermissionError"
    )
    docs.chmod(0)
    ran = run_unprivileged(["-c", code], shared_tmp)
    assert ran.stderr.strip().splitlines()[-1] == (
        f"ragtune.errors.ExtractError: cannot list {docs} (Permission denied); check its permissions"
    )


def test_list_documents_splits_supported_from_other(tmp_path: Path) -> None:
    write(tmp_path, "b.PDF", b"%PDF")
    write(tmp_path, "a.md", b"x")
    write(tmp_path, "c.csv", b"x")
    supported, other = list_documents(tmp_path)
    assert [p.name for p in supported] == ["a.md", "b.PDF"] and [p.name for p in other] == ["c.csv"]


# --- property: any bytes give an Extraction or an ExtractError ---------------------------

_SEED_PDF = make_pdf(report_pages(2))


@st.composite
def mangled_pdfs(draw: st.DrawFn) -> bytes:
    data = bytearray(_SEED_PDF)
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=40))
        else:
            del data[at : at + draw(st.integers(1, 60))]
    return bytes(data)


@settings(max_examples=60, deadline=None)
@given(
    pdf=st.one_of(st.binary(max_size=400), mangled_pdfs(), st.binary(max_size=200).map(lambda b: b"%PDF-1.4\n" + b)),
    txt=st.binary(max_size=200),
)
def test_any_input_gives_a_documented_outcome(tmp_path_factory: pytest.TempPathFactory, pdf: bytes, txt: bytes) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    write(folder, "doc.pdf", pdf)
    write(folder, "doc.txt", txt)
    try:
        result = extract_folder(folder)
    except ExtractError:  # documented, though two files are present, so unexpected here
        pytest.fail("a folder with supported files must not raise")
    file_skips = sum(n for reason, n in result.skipped.counts.items() if reason in ex.FILE_SKIPS)
    assert len(result.files) + file_skips == 2
    assert all(p.text.strip() and p.page >= 1 and p.source in result.files for p in result.pages)
    assert set(result.skipped.counts) <= {v for k, v in vars(ex).items() if k.startswith("SKIP_")}


def test_a_folders_own_readme_and_sources_are_left_out_unless_included(tmp_path: Path) -> None:
    from ragtune.extract import SKIP_EXCLUDED

    (tmp_path / "sub").mkdir()
    for name in ("README.md", "SOURCES.md", "report.txt", "sub/notes.md", "sub/draft.txt"):
        (tmp_path / name).write_text(f"Words of {name} about zero trust networks.", encoding="utf-8")
    read = lambda **kw: sorted({p.source for p in extract_folder(tmp_path, **kw).pages})  # noqa: E731
    assert read() == ["report.txt", "sub/draft.txt", "sub/notes.md"]
    result = extract_folder(tmp_path)
    assert result.skipped.counts[SKIP_EXCLUDED] == 2
    assert sorted(result.skipped.examples[SKIP_EXCLUDED]) == ["README.md", "SOURCES.md"]
    # --exclude adds globs, on the path or the file name, in any case.
    assert read(exclude=("sub/*",)) == ["README.md", "SOURCES.md", "report.txt"]
    assert read(exclude=("DRAFT.TXT", "README*", "SOURCES*")) == ["report.txt", "sub/notes.md"]
    # --include reads only what it names, and wins over an exclusion.
    assert read(include=("SOURCES.md", "*.txt")) == ["SOURCES.md", "report.txt", "sub/draft.txt"]


def test_excluding_every_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("About this folder.", encoding="utf-8")
    with pytest.raises(ExtractError, match=r"every supported file in .* is excluded \(README.md\); change --include"):
        extract_folder(tmp_path)


def test_progress_counts_the_files_read(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.md"):
        (tmp_path / name).write_text(f"Words of {name}.", encoding="utf-8")
    calls: list[tuple[int, int]] = []
    extract_folder(tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
