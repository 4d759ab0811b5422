"""bench/large_corpus.py: the Debian FAQ's questions and answers, and a corpus that does not give the questions
away (no question heading, no table of contents, no cross-reference quoting a question's title)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import large_corpus
from bench.common import norm_words

# The layout of /usr/share/doc/debian/FAQ/debian-faq.en.txt.gz, non-breaking spaces included.
FAQ = """
                      The Debian GNU/Linux FAQ

Table of Contents

1. Definitions and overview
    1.1. What is this FAQ?
    1.2. How does one pronounce Debian and what does this word
    mean?
16. General information about the FAQ
    16.1. Availability

Chapter\u00a01.\u00a0Definitions and overview

1.1.\u00a0What is this FAQ?

    This document gives frequently asked questions with their answers
    about the Debian distribution and about the Debian project, and
    pointers to other documentation. See Section\u00a01.2, \u201cHow does one
    pronounce Debian and what does this word mean?\u201d for the name.

1.2.\u00a0How does one pronounce Debian and what does this word
mean?

    The project name is pronounced Deb'-ee-en, with a short e in Deb,
    and emphasis on the first syllable of the word.

1.3.\u00a0Is it short?

    Yes.

Chapter\u00a016.\u00a0General information about the FAQ

16.1.\u00a0Availability

    The latest version of this document can be viewed on the Debian
    WWW pages, and it is also available for download in plain text.
"""


def test_the_faq_gives_its_questions_with_their_answers() -> None:
    pairs, _ = large_corpus.faq_sections(FAQ)
    questions = [q for q, _ in pairs]
    # A heading over two lines is one question; "Availability" is no question; "Is it short?" has too short
    # an answer to count (a one-word context matches chunks by chance).
    assert questions == ["What is this FAQ?", "How does one pronounce Debian and what does this word mean?"]
    assert pairs[1][1].startswith("The project name is pronounced Deb'-ee-en")
    assert "Section 1.2 for the name" in pairs[0][1]


def test_the_corpus_text_holds_no_question_verbatim() -> None:
    pairs, body = large_corpus.faq_sections(FAQ)
    text = " ".join(norm_words(body))
    for question, _ in pairs:
        assert " ".join(norm_words(question)) not in text, question
    # The answers and the headings that are not questions stay; the table of contents goes.
    assert "pronounced deb ee en" in text and "16 1 availability" in text
    assert "table of contents" not in text


def test_missing_manuals_name_the_apt_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(large_corpus, "FAQ_TXT", tmp_path / "absent" / "debian-faq.en.txt.gz")
    with pytest.raises(SystemExit) as e:
        large_corpus.build(tmp_path / "out")
    assert "apt-get install -y debian-faq" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_missing_manuals_of_more_name_their_apt_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The default corpus's manuals are there; one of those --more adds is not.
    present = tmp_path / "present"
    present.mkdir()
    monkeypatch.setattr(large_corpus, "FAQ_TXT", present)
    monkeypatch.setattr(large_corpus, "HANDBOOK", present)
    monkeypatch.setattr(large_corpus, "PDFS", {"a.pdf": present})
    monkeypatch.setattr(large_corpus, "MORE_PDFS", {"b.pdf": present})
    monkeypatch.setattr(large_corpus, "SECURING", tmp_path / "absent")
    with pytest.raises(SystemExit) as e:
        large_corpus.build(tmp_path / "out", more=True)
    assert "apt-get install -y installation-guide-amd64" in str(e.value) and str(tmp_path / "absent") in str(e.value)
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_html_pages_lose_their_markup_and_navigation(tmp_path: Path) -> None:
    page = tmp_path / "p.html"
    page.write_text(
        '<html><head><title>T</title></head><body><ul class="docnav"><li>Prev</li><li>Next</li></ul>'
        '<div class="para">APT is a <code>vast</code> project.</div><div class="para">Second &amp; last.</div>'
        "<script>var x = 1;</script></body></html>",
        encoding="utf-8",
    )
    assert large_corpus.html_text(page) == "APT is a vast project.\nSecond & last.\n"
