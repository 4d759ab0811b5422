"""Extraction drops text a font without a proper map garbled ("0ederal 1overnment", "ebisting") and counts it,
on the real Blueprint PDF, while clean English pages and text in other languages lose nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ragtune.extract import SKIP_MISMAPPED_LINE, SKIP_MISMAPPED_PAGE, drop_mismapped, extract_folder
from ragtune.garbled import is_known, mostly_not_words, substitutions, unknown_share
from ragtune.records import SkipCounter
from tests.conftest import BLUEPRINT_PDF, NIST_PDF

# Words of the Blueprint's broken font, each seen several times in its pypdf text. (A word with two changed
# characters, "/becutive" for "Executive", is beyond the check: one stays in the text, see the report.)
GARBLED = re.compile(r"0ederal|ebisting|ebample|8ational|-omputer|contebt|e\[uit")


def _pdf_of(source: Path, indices: list[int], folder: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    folder.mkdir(parents=True, exist_ok=True)
    reader, writer = PdfReader(source), PdfWriter()
    for i in indices:
        writer.add_page(reader.pages[i])
    with (folder / source.name).open("wb") as f:
        writer.write(f)
    return folder


def test_the_blueprints_garbled_lines_are_dropped_and_counted(tmp_path: Path) -> None:
    # The font's substitution is learnt from the whole document, so the test reads all of it.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / BLUEPRINT_PDF.name).symlink_to(BLUEPRINT_PDF)
    result = extract_folder(tmp_path / "docs")
    text = "\n".join(p.text for p in result.pages)
    assert not GARBLED.search(text), GARBLED.findall(text)
    counts = result.skipped.to_dict()["counts"]
    assert counts.get(SKIP_MISMAPPED_LINE, 0) >= 50
    assert "OCR the PDF" in SKIP_MISMAPPED_LINE and "garbled text (font without a proper map)" in SKIP_MISMAPPED_LINE
    # The clean lines of those pages stay.
    assert "Blueprint for an AI Bill of Rights" in text and len(result.pages) == 55


def test_a_clean_pdf_loses_no_page_and_no_line(tmp_path: Path) -> None:
    result = extract_folder(_pdf_of(NIST_PDF, list(range(0, 64, 3)), tmp_path / "docs"))
    counts = result.skipped.to_dict()["counts"]
    assert SKIP_MISMAPPED_LINE not in counts and SKIP_MISMAPPED_PAGE not in counts
    assert len(result.pages) == 22


ENGLISH = (
    "The agency reviews the policies of the department every year and reports to the board. "
    "It is the duty of the staff to keep the records of each review for the public."
)


def test_a_page_mostly_of_words_that_are_not_words_goes_whole() -> None:
    junk = "\n".join(["qzxv blorf wuggle tramvik snorple fribbit gorkle"] * 6)
    raw: list[str | None] = [ENGLISH, junk + "\n" + "A short clean line of the report."]
    skipped = SkipCounter()
    raw, texts = drop_mismapped(raw, [t or "" for t in raw], "a.pdf", skipped)
    assert raw[1] is None and texts[1] == "" and texts[0] == ENGLISH
    assert skipped.to_dict()["counts"] == {SKIP_MISMAPPED_PAGE: 1}


def test_a_line_of_the_documents_substitution_goes_the_rest_stays() -> None:
    lines = ["the 0ederal rules for ebisting 0unds", "a 0ramework, for ebample", "this ebpert 0orm"]
    clean = "\n".join([ENGLISH] * 4)
    page = clean + "\n" + "\n".join(lines)
    skipped = SkipCounter()
    _, texts = drop_mismapped([page], [page], "a.pdf", skipped)
    assert texts[0] == clean
    assert skipped.to_dict()["counts"] == {SKIP_MISMAPPED_LINE: 3}


def test_text_in_another_language_is_never_judged() -> None:
    german = (
        "Die Behörde prüft jedes Jahr die Richtlinien der Abteilung und berichtet dem Vorstand. Es ist "
        "die Pflicht der Mitarbeiter, die Unterlagen jeder Prüfung für die Öffentlichkeit aufzubewahren."
    )
    skipped = SkipCounter()
    raw, texts = drop_mismapped([german], [german], "de.pdf", skipped)
    assert texts == [german] and raw == [german] and skipped.total() == 0


def test_a_line_of_jargon_and_names_is_not_mostly_not_words() -> None:
    assert not mostly_not_words("provenance methodologies (e.g., cryptography, watermarking, steganography,")
    assert mostly_not_words("qzxv blorf wuggle tramvik snorple fribbit gorkle")


@pytest.mark.parametrize("word", ["policies", "reassessed", "organizations", "incidents", "escalated"])
def test_inflected_english_words_are_words(word: str) -> None:
    assert is_known(word)


def test_a_typo_is_not_a_font_map() -> None:
    """One odd word explains nothing: a substitution needs several different words of the document."""
    assert substitutions([ENGLISH + " the 0ederal rules"]) == set()
    assert unknown_share("the 0ederal rules")[0] > 0


# --- what the console says about it -------------------------------------------------------------------------------


def test_the_extract_line_counts_per_unit() -> None:
    from ragtune import extract as ex

    skipped = {
        "counts": {
            ex.SKIP_EXCLUDED: 1,
            ex.SKIP_GARBLED_PAGE: 16,
            ex.SKIP_GARBLED_LINE: 35,
            SKIP_MISMAPPED_LINE: 56,
            ex.SKIP_UNSUPPORTED: 2,
            ex.SKIP_STRAY_BYTES: 1,
        }
    }
    assert ex.count_line(2, 119, skipped) == (
        "2 files read, 1 excluded, 2 skipped; 119 pages with text; 16 pages and 91 lines unreadable"
    )
    assert ex.count_line(1, 1, {"counts": {}}) == "1 file read; 1 page with text"


def test_default_exclusions_are_listed_only_when_verbose() -> None:
    import io

    from ragtune import extract as ex
    from ragtune.progress import ProgressReporter

    skipped = {
        "counts": {ex.SKIP_EXCLUDED: 1, SKIP_MISMAPPED_LINE: 3},
        "examples": {ex.SKIP_EXCLUDED: ["SOURCES.md"], SKIP_MISMAPPED_LINE: ["a.pdf p1"]},
    }
    quiet, loud = io.StringIO(), io.StringIO()
    ProgressReporter(stream=quiet).input_skipped(skipped)
    ProgressReporter(stream=loud, verbose=True).input_skipped(skipped)
    assert quiet.getvalue().splitlines() == [f"warning: 3 lines dropped: {SKIP_MISMAPPED_LINE}: a.pdf p1, and 2 more"]
    assert "SOURCES.md" in loud.getvalue() and len(loud.getvalue().splitlines()) == 2


def test_the_run_ends_with_one_recommendation_line(capsys: pytest.CaptureFixture[str]) -> None:
    from ragtune.cli import _print_advice, build_parser

    row = {"hit@1": 0.5, "hit@3": 0.6, "hit@5": 0.7, "hit@10": 0.8, "mrr@10": 0.6}
    metrics = {
        "base": row,
        "fine_tuned": row,
        "fine_tuned_passages": row | {"hit@5": 0.8},
        "bm25": row | {"hit@5": 0.9, "mrr@10": 0.8},
        "hybrid": row | {"hit@5": 0.95, "mrr@10": 0.85},
        "recommended_mode": "hybrid",
    }
    _print_advice(metrics, Path("runs/demo/report.html"))
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("Best on these held-out questions: hybrid")
    assert "ragtune.Retriever serves the hybrid" in line and line.endswith("runs/demo/report.html")
    assert build_parser().parse_args(["run", "DOCS", "--verbose"]).verbose
    # A run whose validation questions no retriever beat BM25 on serves BM25, and the line says so.
    _print_advice(metrics | {"recommended_mode": "bm25"}, Path("runs/demo/report.html"))
    assert "ragtune.Retriever serves BM25 alone. Why" in capsys.readouterr().out
