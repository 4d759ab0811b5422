"""Cleaning one page's text so that words come out whole, and dropping the lines that are not text."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from .. import garbled
from ..records import SkipCounter
from .skips import SKIP_MISMAPPED_LINE, SKIP_MISMAPPED_PAGE

# --- cleaning one page -------------------------------------------------------

# NFKC expands these too; spelling them out documents the "conﬁguration" fix.
_LIGATURES = {
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
}  # fmt: skip
# Zero-width characters and soft hyphens carry no text; deleting them rejoins words.
_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
# Control characters usually stand in for punctuation or spaces (an undecodable
# glyph), so they become spaces rather than vanish and glue words together.
# Private-use code points are symbol-font bullets with no meaning as text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")
# A hyphen at the end of a line, with the letters on each side. The lookbehind
# makes each letter run a single match start, which keeps long tokens linear.
_LINE_BREAK_HYPHEN = re.compile(r"(?<![^\W\d_])([^\W\d_]+)-[ \t]*\n[ \t]*([^\W\d_]+)")
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")
# "12", "Page 3 of 9", or a lower-case roman numeral (i to xxxix) of front matter.
_BARE_PAGE_NUMBER = re.compile(
    r"^\s*(?:(?i:page\s+)?\d{1,4}(?:\s+(?i:of)\s+\d{1,4})?|(?=[ivx])x{0,3}(?:ix|iv|v?i{0,3}))\s*$"
)


def clean_text(text: str, vocabulary: set[str] | None = None) -> str:
    """Normalise one page of extracted text.

    `vocabulary` (lower-cased words of the whole document) helps decide whether
    a hyphen at a line break splits one word or joins two; by default the
    page's own words are used.

    >>> clean_text("con\\ufb01guration of the sys-\\ntem")
    'configuration of the system'
    >>> clean_text("third-\\nparty third party")
    'third-party third party'
    """
    text = normalise_chars(text)
    text = join_hyphenated(text, vocabulary if vocabulary is not None else vocabulary_of(text))
    lines = [re.sub(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def normalise_chars(text: str) -> str:
    """Expand ligatures, apply NFKC, unify line ends, and blank out control characters.

    >>> normalise_chars("e\\ufb03cient\\x16 done\\r\\n")
    'efficient  done\\n'
    """
    for lig, rep in _LIGATURES.items():
        text = text.replace(lig, rep)
    # pypdfium2 marks a hyphen at a line end with U+FFFE and joins the lines.
    text = re.sub(r"\ufffe(?=[^\W\d_])", "-\n", text).replace("\ufffe", "-")
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _INVISIBLE.sub("", text)
    return _CONTROL.sub(" ", text)


def vocabulary_of(text: str) -> set[str]:
    """Lower-cased words of `text`, leaving out the halves of words split at a line break.

    >>> sorted(vocabulary_of("the sys-\\ntem"))
    ['the']
    """
    # A set built from an iterator: a long document never holds a list of all its words.
    return {m.group().lower() for m in _WORD.finditer(_LINE_BREAK_HYPHEN.sub(" ", text))}


def join_hyphenated(text: str, vocabulary: set[str]) -> str:
    """Rejoin words split by a hyphen at a line break, keeping real compound hyphens.

    The joined form wins when the document uses it elsewhere, the hyphenated
    form when the document uses that, or when both halves are words of their
    own; otherwise the halves are fragments of one word ("recalibra-tion").
    Hyphens inside URLs and after acronyms ("AI-generated") are kept.

    >>> join_hyphenated("recalibra-\\ntion and AI-\\ngenerated", set())
    'recalibration and AI-generated'
    """

    def repl(m: re.Match[str]) -> str:
        left, right = m.group(1), m.group(2)
        # The rest of the token before the letters ("https://x.org/large-").
        prefix = re.split(r"\s", m.string[max(0, m.start() - 200) : m.start()])[-1]
        joined, hyphenated = (left + right).lower(), f"{left}-{right}".lower()
        url_like = "/" in prefix or "." in prefix or "www" in prefix.lower()
        acronym = len(left) > 1 and left.isupper()
        if joined in vocabulary and hyphenated not in vocabulary and not url_like:
            return left + right
        keep = url_like or acronym or right[0].isupper() or hyphenated in vocabulary
        keep = keep or (left.lower() in vocabulary and right.lower() in vocabulary)
        return f"{left}-{right}" if keep else left + right

    return _LINE_BREAK_HYPHEN.sub(repl, text)


# --- lines of undecodable glyph codes -----------------------------------------

# A font without a Unicode map makes extractors emit raw glyph codes: letters
# come out shifted into upper case and ASCII punctuation ("=YWO ZKXOVS]^]" for
# "Some panelists"). Real words rarely mix capitals with []\^_` inside them.
# Shifted lower case lands on K-Z, []\^_` and a-d; shifted capitals on digits
# and +,-./:;<=>?@.
_GLYPH_JUNK = re.compile(
    r"[A-Z][\[\\\]^_`]|[\[\\\]^_`][A-Z]"  # "CY_", "^RO"
    r"|(?<![A-Z])[A-Z]{2,}[a-d]$"  # "YWZKXc" (a shifted "y" at the end)
    r"|^\d(?:[A-Z]{4,}|[a-z]{4,})"  # "9PPSMO", "2orrifying"
    r"|^[<=>?@][A-Za-z]|[A-Za-z][<=>@][A-Za-z]"  # "=hoa", "?se", "Air>ags"
)


# URLs, e-mail addresses and identifiers ("HWAM_CapabilityDescription") are
# ordinary text even though they mix capitals with "_", "=" or "@".
_URL_OR_EMAIL = re.compile(r"://|^www\.|^[^/\s]+\.[^/\s]+/|^[\w.+-]+@[\w-]+(?:\.[\w-]+)+$")
_IDENTIFIER = re.compile(r"(?=.*[a-z]{3})[\w.-]+")


def _is_glyph_junk(token: str) -> bool:
    # Brackets and punctuation at a token's edges are ordinary ("[NISTPRIV]", "(see", "Note:").
    token = token.lstrip("[({\"'“‘").rstrip("])}.,;:!?\"'”’")
    if _URL_OR_EMAIL.search(token) or _IDENTIFIER.fullmatch(token):
        return False
    return _GLYPH_JUNK.search(token) is not None


def garbled_share(text: str) -> float:
    """Share of whitespace-separated tokens in `text` that look like raw glyph codes.

    >>> garbled_share("The =YWO ZKXOVS]^] said"), garbled_share("see [NIST] and snake_case")
    (0.5, 0.0)
    """
    tokens = [t for t in re.split(r"[\s\x00-\x08\x0b-\x1f]+", text) if t]
    return sum(map(_is_glyph_junk, tokens)) / len(tokens) if tokens else 0.0


def drop_garbled_lines(text: str, max_share: float = 0.3) -> tuple[str, int]:
    """Remove lines where `max_share` or more of the tokens are raw glyph codes.

    Returns the text and how many lines went.

    >>> drop_garbled_lines("Readable line\\nCY_ ]RY_VN XY^ PKMO")
    ('Readable line', 1)
    """
    lines = text.split("\n")
    kept = [ln for ln in lines if garbled_share(ln) < max_share]
    return "\n".join(kept), len(lines) - len(kept)


def drop_mismapped(
    raw: list[str | None], texts: list[str], name: str, skipped: SkipCounter
) -> tuple[list[str | None], list[str]]:
    """Drop the lines of one PDF that a font without a proper map garbled ("0ederal 1overnment", "ebisting"):
    lines with a word the document's own substitution explains, or mostly not words of the language. A page
    left with fewer than half its lines is dropped whole. English text only (see ragtune.garbled)."""
    if not garbled.is_english(" ".join(texts[:20])):
        return raw, texts
    pairs = garbled.substitutions(texts)

    def is_bad(line: str) -> bool:
        return bool(line.strip()) and (
            bool(pairs and garbled.garbled_words(line, pairs)) or garbled.mostly_not_words(line)
        )

    raw, out = list(raw), []
    for i, text in enumerate(texts, start=1):
        lines = text.split("\n")
        bad = [is_bad(ln) for ln in lines]
        if not any(bad):
            out.append(text)
            continue
        kept = [ln for ln, b in zip(lines, bad) if not b]
        if sum(bool(ln.strip()) for ln in kept) < sum(bad):
            skipped.add(SKIP_MISMAPPED_PAGE, f"{name} p{i}")
            raw[i - 1] = None
            out.append("")
        else:
            skipped.add(SKIP_MISMAPPED_LINE, f"{name} p{i}", n=sum(bad))
            out.append("\n".join(kept))
    return raw, out


# --- running headers and footers ------------------------------------------------


def _edge_lines(text: str, n: int = 3) -> list[str]:
    lines = [ln for ln in text.split("\n") if ln.strip()]
    return lines[:n] + lines[-n:]


def _normalise_edge(line: str) -> str:
    # Page numbers inside running headers change from page to page.
    return re.sub(r"\d+", "#", line.strip().lower())


def drop_running_lines(texts: list[str], min_share: float = 0.5) -> list[str]:
    """Remove bare page numbers and header/footer lines repeated on most pages.

    A line among the first or last three of a page counts as running when
    (digits ignored) it recurs at the edges of at least `min_share` of the
    pages (and of at least 3). Bare page numbers ("12", "iv", "Page 3 of 9")
    go from the same edge lines; numbers inside the page (table cells) stay.

    >>> drop_running_lines(["NIST SP 1\\nalpha\\n1", "NIST SP 1\\nbeta\\n2", "NIST SP 1\\ngamma\\n3"])
    ['alpha', 'beta', 'gamma']
    """
    running: set[str] = set()
    if len(texts) >= 3:
        tally = Counter(_normalise_edge(ln) for t in texts for ln in set(_edge_lines(t)))
        running = {ln for ln, c in tally.items() if ln and c >= max(3, min_share * len(texts))}
    out = []
    for t in texts:
        edge = set(_edge_lines(t))
        kept = [
            ln
            for ln in t.split("\n")
            if not (ln in edge and (_BARE_PAGE_NUMBER.match(ln) or _normalise_edge(ln) in running))
        ]
        out.append(re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip())
    return out
