"""Pages -> chunks, measured with real WordPiece tokenizers on the real NIST PDF and on hand-made pages."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ragtune.chunk import _hard_split, chunk_pages
from ragtune.records import Page

SUBJECTS = ["river", "farmer", "school", "bridge", "market", "doctor", "harbor", "library", "garden", "station"]


@pytest.fixture(scope="module")
def tokenizers(tiny_model_dir: Path) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from ragtune.models import bundled_model_path

    return {
        "tiny": AutoTokenizer.from_pretrained(str(tiny_model_dir)),
        "minilm": AutoTokenizer.from_pretrained(str(bundled_model_path())),
    }


@pytest.fixture(scope="module")
def minilm(tokenizers: dict[str, Any]) -> Any:
    return tokenizers["minilm"]


def count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def joined(pages: list[Page], source: str, numbers: tuple[int, ...] | None = None) -> str:
    """Whitespace-normalised text of a source's pages (all of them, or only `numbers`)."""
    kept = [p for p in pages if p.source == source and (numbers is None or p.page in numbers)]
    return " ".join(" ".join(p.text.split()) for p in kept)


def flat(text: str) -> str:
    return " ".join(text.split())


# --- real pages -----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["tiny", "minilm"])
@pytest.mark.parametrize(
    ("chunk_tokens", "overlap", "max_tokens"),
    [(64, 8, 126), (512, 32, 126), (200, 24, 254)],
    ids=["small", "capped-by-model", "large"],
)
def test_no_chunk_exceeds_max_tokens(
    nist_pages: list[Page], tokenizers: dict[str, Any], which: str, chunk_tokens: int, overlap: int, max_tokens: int
) -> None:
    tok = tokenizers[which]
    result = chunk_pages(nist_pages, tok, chunk_tokens, overlap, max_tokens, min_tokens=24)
    limit = min(chunk_tokens, max_tokens)
    # A 64-page PDF gives many chunks; none may be longer than the limit.
    assert len(result.chunks) > 20000 // (limit * 2)
    whole = joined(nist_pages, nist_pages[0].source)
    for c in result.chunks:
        n = count(tok, c.text)
        assert c.n_tokens == n, c.text[:60]
        assert 24 <= n <= limit, c.text[:60]
        # With [CLS] and [SEP] it still fits the model.
        assert len(tok(c.text)["input_ids"]) <= max_tokens + 2
        # Chunks are real text of the document (only whitespace may differ).
        assert flat(c.text) in whole
        assert c.source == "nist_ai_600_1.pdf"


def test_chunks_cover_the_document_in_order(nist_pages: list[Page], minilm: Any) -> None:
    result = chunk_pages(nist_pages, minilm, 128, 0, 254, min_tokens=0)
    whole = joined(nist_pages, nist_pages[0].source)
    # Without overlap, chunks appear in document order and together hold (almost) every word.
    pos = 0
    for c in result.chunks:
        at = whole.find(flat(c.text), pos)
        assert at >= pos, c.text[:60]
        pos = at + len(flat(c.text))
    dropped = sum(result.skipped.counts.values())
    n_words = sum(len(c.text.split()) for c in result.chunks)
    assert n_words >= len(whole.split()) - 40 * dropped


@pytest.mark.parametrize(
    "overlap",
    [
        0,
        16,
    ],
)
def test_recorded_pages_hold_the_chunk_text(nist_pages: list[Page], minilm: Any, overlap: int) -> None:
    result = chunk_pages(nist_pages, minilm, 96, overlap, 254, min_tokens=0)
    assert len(result.chunks) > 100
    wrong = [c for c in result.chunks if flat(c.text) not in joined(nist_pages, c.source, c.pages)]
    assert wrong == []
    # Page lists are sorted runs of real page numbers.
    numbers = {p.page for p in nist_pages}
    assert all(list(c.pages) == sorted(set(c.pages)) and set(c.pages) <= numbers for c in result.chunks)
    assert any(len(c.pages) > 1 for c in result.chunks)


def test_ids_are_stable_and_unique(nist_pages: list[Page], minilm: Any) -> None:
    first = chunk_pages(nist_pages, minilm, 64, 8, 126, 24)
    second = chunk_pages(list(nist_pages), minilm, 64, 8, 126, 24)
    ids = [c.id for c in first.chunks]
    assert ids == [c.id for c in second.chunks]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("c-") for i in ids)


def test_ids_do_not_depend_on_other_documents(minilm: Any) -> None:
    a = [Page("a.txt", 1, f"The {s} opened early today.") for s in SUBJECTS[:6]]
    b = [Page("b.txt", 1, "A different report about harbour tides and fishing boats.")]
    alone = chunk_pages(a, minilm, 20, 0, 126).chunks
    with_other = chunk_pages(b + a, minilm, 20, 0, 126).chunks
    assert [c.id for c in alone] == [c.id for c in with_other if c.source == "a.txt"]
    # Same text under another source name is another chunk.
    renamed = chunk_pages([Page("z.txt", p.page, p.text) for p in a], minilm, 20, 0, 126).chunks
    assert not {c.id for c in alone} & {c.id for c in renamed}


# --- hand-made pages ------------------------------------------------------------------


def one_sentence_pages(source: str, numbers: list[int]) -> tuple[list[Page], dict[str, int]]:
    pages, page_of = [], {}
    for i, n in enumerate(numbers):
        s = f"The {SUBJECTS[i]} opened early today."
        pages.append(Page(source, n, s))
        page_of[s] = n
    return pages, page_of


def test_chunks_span_page_breaks_with_the_right_page_numbers(minilm: Any) -> None:
    # Each page is one 6-token sentence, so a 20-token chunk holds three pages.
    # Page 6 of a.txt is missing (say it was empty): numbers come from the pages, not their positions.
    a, _ = one_sentence_pages("a.txt", [3, 4, 5, 7])
    b, _ = one_sentence_pages("b.txt", [1, 2])
    b = [Page("b.txt", p.page, p.text.replace("opened", "closed")) for p in b]
    assert {count(minilm, p.text) for p in a + b} == {6}
    chunks = chunk_pages(a + b, minilm, 20, 0, 126).chunks
    assert [(c.source, c.pages) for c in chunks] == [
        ("a.txt", (3, 4, 5)),
        ("a.txt", (7,)),
        ("b.txt", (1, 2)),  # a new document starts a new chunk
    ]
    assert chunks[0].text.split("\n\n") == [p.text for p in a[:3]]


def test_a_chunk_inside_one_long_page_records_only_that_page(minilm: Any) -> None:
    long_page = " ".join(f"The {s} opened early today." for s in SUBJECTS)  # 60 tokens
    pages = [Page("a.txt", 1, "Short first page."), Page("a.txt", 2, long_page), Page("a.txt", 3, "Short last page.")]
    chunks = chunk_pages(pages, minilm, 20, 0, 126).chunks
    middle = [c for c in chunks if "opened" in c.text]
    assert len(middle) >= 3
    assert all(c.pages == (2,) for c in middle if "page" not in c.text.lower())
    assert {p for c in chunks for p in c.pages} == {1, 2, 3}


def test_overlapping_chunks_record_their_own_pages(minilm: Any) -> None:
    pages, page_of = one_sentence_pages("a.txt", [11, 12, 13, 14, 15, 16, 17])
    chunks = chunk_pages(pages, minilm, 20, 8, 126).chunks
    # Worked by hand: 3 pages of 6 tokens per chunk, and the last page of one chunk (6 <= 8 tokens) starts the next.
    assert [c.pages for c in chunks] == [(11, 12, 13), (13, 14, 15), (15, 16, 17)]
    for c in chunks:
        assert c.pages == tuple(sorted(n for s, n in page_of.items() if s in c.text))


def sentences_page(n: int) -> tuple[Page, list[str]]:
    words = ["alpha", "bravo", "delta", "echo", "golf", "hotel", "india", "kilo", "lima", "oscar", "papa", "romeo"]
    sents = [f"Item {words[i % 12]} {words[(i * 5 + 1) % 12]} is number {i}." for i in range(n)]
    return Page("s.txt", 1, " ".join(sents)), sents


def test_overlap_repeats_the_end_of_a_chunk_at_the_start_of_the_next(minilm: Any) -> None:
    page, sents = sentences_page(40)
    sent_tokens = max(count(minilm, s) for s in sents)
    plain = chunk_pages([page], minilm, 40, 0, 126).chunks
    lapped = chunk_pages([page], minilm, 40, 12, 126).chunks
    assert len(plain) >= 4

    def holds(c: Any) -> list[int]:
        return [i for i, s in enumerate(sents) if s in c.text]

    # Without overlap each sentence is in exactly one chunk.
    plain_ids = [i for c in plain for i in holds(c)]
    assert plain_ids == list(range(len(sents)))
    # With overlap, each chunk starts with the sentence(s) that ended the previous one,
    # never more than the overlap allows.
    assert len(lapped) > len(plain)
    for prev, nxt in zip(lapped, lapped[1:]):
        shared = set(holds(prev)) & set(holds(nxt))
        assert shared, (prev.text, nxt.text)
        assert min(holds(nxt)) in shared and max(holds(prev)) in shared
        assert sum(count(minilm, sents[i]) for i in shared) <= max(12, sent_tokens)
    assert sorted({i for c in lapped for i in holds(c)}) == list(range(len(sents)))


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_text_without_separators_is_hard_split(tokenizers: dict[str, Any], which: str) -> None:
    tok = tokenizers[which]
    # CJK text has no spaces or punctuation; each character is one WordPiece token.
    rng = random.Random(0)
    text = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(300))
    assert count(tok, text) == 300
    chunks = chunk_pages([Page("zh.txt", 1, text)], tok, 64, 0, 40).chunks
    assert [c.n_tokens for c in chunks] == [40] * 7 + [20]
    assert "".join(c.text for c in chunks) == text


def test_hard_split_windows_by_tokens(minilm: Any) -> None:
    rng = random.Random(1)
    text = " ".join(rng.choice(SUBJECTS) for _ in range(95))
    pieces = _hard_split(text, minilm, 30)
    assert [count(minilm, p) for p in pieces] == [30, 30, 30, 5]
    # Windows are cut at token boundaries: only the spaces between windows are lost.
    assert " ".join(pieces) == text


def test_too_short_and_duplicate_chunks_are_counted(minilm: Any) -> None:
    body = "Zero trust architecture assumes no implicit trust is granted to assets or user accounts."
    notice = "This publication is available free of charge from the issuing agency website."
    pages = [
        Page("a.txt", 1, body),
        Page("b.txt", 1, notice),
        Page("c.txt", 1, "  THIS publication is available free of charge\nfrom the issuing agency website. "),
        Page("d.txt", 1, "Draft."),
        Page("e.txt", 1, notice),
    ]
    result = chunk_pages(pages, minilm, 64, 0, 126, min_tokens=5)
    assert [c.source for c in result.chunks] == ["a.txt", "b.txt"]
    # Repeated boilerplate (also in other case and spacing) is kept once; "Draft." is too short.
    assert result.skipped.counts == {"duplicate chunk text": 2, "chunk too short": 1}
    assert result.skipped.examples["chunk too short"] == ["d.txt: 'Draft.'"]
    assert [e.split(":")[0] for e in result.skipped.examples["duplicate chunk text"]] == ["c.txt", "e.txt"]
