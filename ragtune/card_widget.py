"""The Hub widget of the model card (a held-out question over excerpts of the user's chunks) and the card's
language guess: both read from the run's text, apart from the card's rendering in card.py."""

from __future__ import annotations

import re
from typing import Any

from .garbled import reads_clean
from .text import STOPWORDS, sentences, words

# The commonest English function words: a chunk sample in which they are at least this share of
# the words is English. Most other languages' texts score under 0.05.
ENGLISH_WORDS = frozenset("the of and to a in is that for it as with be by on are this or not from at an which".split())


def guess_language(texts: list[str]) -> str | None:
    """ "en" when the text reads as English, else None (the card then names no language).

    >>> guess_language(["The risk of the system is managed by the team and the board."])
    'en'
    >>> guess_language(["Der Schutz der Daten wird durch das Team sichergestellt."]) is None
    True
    """
    words = [w for t in texts for w in re.findall(r"[a-z]+", t.lower())]
    return "en" if words and sum(w in ENGLISH_WORDS for w in words) / len(words) >= 0.15 else None


def excerpt(text: str, focus: str = "", max_words: int = 45) -> str:
    """Whole sentences of `text`, at most `max_words` words: the sentence sharing most words with `focus` (else
    the first), then those after it and before it while they fit. "" when no whole sentence fits.

    >>> excerpt("Intro here. Logs must be kept for a year. Then more", focus="How long are logs kept?", max_words=9)
    'Logs must be kept for a year.'
    """
    # A whole sentence ends in a full stop; a heading or the cut-off end of a chunk does not.
    found = [t for t in sentences(text) if 4 <= len(t.split()) <= max_words and re.search(r"[.!?][)\"”’']?$", t)]
    if not found:
        return ""
    wanted = {w for w in words(focus) if w not in STOPWORDS}
    best = max(range(len(found)), key=lambda i: (len(wanted & set(words(found[i]))), -i)) if wanted else 0
    first, last = best, best
    size = lambda a, b: sum(len(t.split()) for t in found[a : b + 1])  # noqa: E731
    while last + 1 < len(found) and size(first, last + 1) <= max_words:
        last += 1
    while first > 0 and size(first - 1, last) <= max_words:
        first -= 1
    return " ".join(found[first : last + 1])


def card_widget(chunks: list[Any], held_out: list[Any], n_sentences: int = 3) -> dict[str, Any] | None:
    """The Hub's sentence-similarity widget: a held-out question (one that ends in "?"), an excerpt of its own
    chunk and of two other chunks, whole sentences, all of text that reads clean (no garbled font text).
    None when the run has no such question."""
    by_id = {c.id: c for c in chunks}
    # Whether a chunk reads clean, asked only of the chunks the widget may show: asked of every chunk it
    # took 20 ms a chunk, on every run (the save stage's key is made of this), reruns included.
    known: dict[str, bool] = {}

    def clean(cid: str) -> bool:
        if cid not in known:
            known[cid] = reads_clean(by_id[cid].text)
        return known[cid]

    for pair in held_out:
        question = " ".join(pair.query.split())
        if not (
            question.endswith("?")
            and 4 <= len(question.split()) <= 25
            and pair.chunk_id in by_id
            and clean(pair.chunk_id)
            and reads_clean(question)
        ):
            continue
        own = excerpt(by_id[pair.chunk_id].text, focus=question)
        texts = [own] + _spread_excerpts(chunks, pair.chunk_id, own, n_sentences - 1, clean)
        if len(texts) == n_sentences and all(reads_clean(t) for t in texts):
            return {"source_sentence": question, "sentences": texts}
    return None


def _spread_excerpts(chunks: list[Any], own_id: str, own: str, n: int, clean: Any) -> list[str]:
    """Excerpts of `n` clean chunks other than `own_id`, spread over the collection (so the widget does not
    show two neighbouring chunks): the first clean one from each of n + 1 evenly spaced places."""
    step = max(1, len(chunks) // (n + 1))
    out: list[str] = []
    for start in range(0, len(chunks), step):
        for c in chunks[start : start + step]:
            if c.id == own_id or not clean(c.id):
                continue
            text = excerpt(c.text)
            if text and text != own and text not in out:
                out.append(text)
                break
        if len(out) == n:
            break
    return out


def widget_reads_clean(widget: dict[str, Any] | None) -> bool:
    """Whether a widget is what card_widget makes: a question that ends in "?" over texts that read clean."""
    if not widget or not str(widget.get("source_sentence", "")).endswith("?"):
        return False
    # Short texts with no word to judge ("x") are not garbled; an old widget is only refused for what is.
    texts = [widget["source_sentence"], *widget.get("sentences", [])]
    return all(isinstance(t, str) and reads_clean(t, allow_unjudged=True) for t in texts)
