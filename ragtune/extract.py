"""Folder -> pages: text from PDFs (pypdf, page numbers kept), .txt and .md files.

Text is cleaned so that words come out whole: ligatures are expanded, words
hyphenated across a line break rejoined, control characters and stray
whitespace normalised, lines of undecodable glyph codes dropped, lines a font
without a proper map garbled dropped (ragtune/garbled.py), and running
headers/footers and bare page numbers removed. Nothing is dropped silently:
every skipped file, page or line is counted in `Extraction.skipped`.

bench/extract_quality.py measures the backends. pypdf's default ("plain")
mode plus this cleaning agrees with pypdfium2 on 99.95-100% of words; its
"layout" mode splits words (99.3-99.6%) and takes twice as long, so plain
mode is the default. pypdfium2 is 5-15x faster and optional.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .config import DEFAULT_EXCLUDE
from .errors import ExtractError
from .records import Page, SkipCounter
from .rundir import run_kind

PDF_SUFFIXES = {".pdf"}
TEXT_SUFFIXES = {".txt", ".md"}

# Skip reasons, shared with the tests so the wording stays in one place.
SKIP_UNSUPPORTED = "unsupported file type (ignored)"
SKIP_EXCLUDED = "excluded by --exclude or --include (not read)"

SKIP_DUPLICATE = "duplicate document (same bytes as an earlier file; read once)"
SKIP_UNREADABLE_FILE = "unreadable file (check permissions)"
SKIP_EMPTY_FILE = "empty file (0 bytes)"
SKIP_NOT_PDF = "not a PDF despite its .pdf name (no %PDF header)"
SKIP_DAMAGED = "damaged PDF that pypdf cannot parse (try re-saving it, e.g. `qpdf in.pdf out.pdf`)"
SKIP_TRUNCATED = "truncated PDF (no %%EOF at the end; re-download it)"
SKIP_TRUNCATED_PARTIAL = "truncated PDF (no %%EOF at the end); kept the pages that could be read"
SKIP_ENCRYPTED = (
    "encrypted PDF that needs a password (decrypt it first, e.g. "
    "`qpdf --password=PASSWORD --decrypt in.pdf out.pdf`, and put the copy in the folder)"
)
SKIP_NEEDS_CRYPTO = "encrypted PDF that needs the cryptography package (`pip install cryptography`)"
SKIP_ZERO_PAGES = "PDF with zero pages"
SKIP_NO_TEXT = "PDF with no text layer (scanned? run OCR first, e.g. `ocrmypdf in.pdf out.pdf`)"
SKIP_PAGE_FAILED = "page whose text extraction failed (page skipped, rest of file kept)"
SKIP_ALL_PAGES_FAILED = "PDF whose pages all failed to extract (damaged? try re-saving it)"
SKIP_EMPTY_PAGE = "page with no text"
SKIP_GARBLED_PAGE = "page of undecodable glyph codes (font without a Unicode map; OCR the PDF to recover it)"
SKIP_GARBLED_LINE = "line of undecodable glyph codes (font without a Unicode map) dropped"
SKIP_MISMAPPED_PAGE = "page of garbled text (font without a proper map): OCR the PDF"
SKIP_MISMAPPED_LINE = "line of garbled text (font without a proper map): OCR the PDF"
SKIP_BINARY_TEXT = "text file that looks binary (not readable as text)"
SKIP_EMPTY_TEXT = "text file with no text"
SKIP_STRAY_BYTES = "stray bytes that are not UTF-8 in a UTF-8 text file (check those lines; re-save the file as UTF-8)"
# Found while listing the folder, before any file is read.
SKIP_UNREADABLE_FOLDER = "unreadable folder (check permissions; nothing in it was read)"
SKIP_BAD_LINK = "symbolic link that loops or points nowhere (not read)"
SKIP_LINKED_FOLDER = "symbolic link to a folder (not followed; pass that folder itself, or copy its files in)"
SKIP_SPECIAL_FILE = "not a regular file (a pipe, socket or device; not read)"
SKIP_RUN_FOLDER = "ragtune run folder (its reports and pairs are not documents; not read)"
SKIP_LINKED_SPECIAL = "symbolic link to something that is not a regular file (a device, pipe or socket; not read)"
# A "word" this long of letters, digits and base64's +/= is data (an embedded image, a hash list),
# not text: kept, a 2 MB one became 45,000 junk chunks. The longest real words and hex digests
# stay well under it; links are left alone; text in scripts written without spaces (Chinese,
# Thai) never matches.
MAX_WORD_CHARS = 100
SKIP_JUNK_WORD = (
    f"run of over {MAX_WORD_CHARS} letters and digits with no space (embedded base64 or encoded data, not text)"
)

# Reasons that skip a whole file (the others drop a page or a line of a kept file).
FILE_SKIPS = frozenset({
    SKIP_DUPLICATE, SKIP_UNREADABLE_FILE, SKIP_EMPTY_FILE, SKIP_NOT_PDF, SKIP_DAMAGED, SKIP_TRUNCATED,
    SKIP_ENCRYPTED, SKIP_NEEDS_CRYPTO, SKIP_ZERO_PAGES, SKIP_NO_TEXT, SKIP_ALL_PAGES_FAILED,
    SKIP_BINARY_TEXT, SKIP_EMPTY_TEXT, SKIP_EXCLUDED, SKIP_BAD_LINK, SKIP_SPECIAL_FILE, SKIP_LINKED_SPECIAL,
})  # fmt: skip

# How each reason is counted on the console and in report.md ("2 pages skipped").
_SKIP_UNITS = {
    SKIP_PAGE_FAILED: ("page", "skipped"), SKIP_EMPTY_PAGE: ("page", "skipped"),
    SKIP_GARBLED_PAGE: ("page", "skipped"), SKIP_GARBLED_LINE: ("line", "dropped"),
    SKIP_MISMAPPED_PAGE: ("page", "skipped"), SKIP_MISMAPPED_LINE: ("line", "dropped"),
    SKIP_TRUNCATED_PARTIAL: ("file", "read in part"), SKIP_STRAY_BYTES: ("file", "decoded in part as cp1252"),
    SKIP_UNREADABLE_FOLDER: ("folder", "skipped"), SKIP_LINKED_FOLDER: ("link", "not followed"),
    SKIP_RUN_FOLDER: ("folder", "skipped"),
    SKIP_LINKED_SPECIAL: ("link", "not followed"), SKIP_JUNK_WORD: ("run", "dropped"),
}  # fmt: skip


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def display_name(name: str) -> str:
    r"""A file name as one line of valid UTF-8 text: bytes that are not UTF-8 (kept by Python as
    surrogates) and control characters such as a newline are written as escapes.

    The name labels pages, chunks and report lines; the file itself is still read by its path.

    >>> display_name("caf\udce9.txt"), display_name("two\nlines.txt"), display_name("café.txt")
    ('caf\\xe9.txt', 'two\\nlines.txt', 'café.txt')
    """

    def escape(m: re.Match[str]) -> str:
        c = m.group()
        if "\udc80" <= c <= "\udcff":  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
            return f"\\x{ord(c) - 0xDC00:02x}"
        return c.encode("unicode_escape").decode("ascii") if ord(c) < 0xD800 else f"\\u{ord(c):04x}"

    return _UNPRINTABLE.sub(escape, name)


def describe_skips(skipped: dict[str, Any], names: int = 3) -> list[str]:
    """One line per skip reason: the count, the reason, and the first few files or pages.

    `skipped` is `SkipCounter.to_dict()` (as kept in manifest.json).

    >>> describe_skips({"counts": {SKIP_ZERO_PAGES: 2}, "examples": {SKIP_ZERO_PAGES: ["a.pdf", "b.pdf"]}})
    ['2 files skipped: PDF with zero pages: a.pdf, b.pdf']
    """
    lines = []
    for reason, n in skipped.get("counts", {}).items():
        unit, verb = _SKIP_UNITS.get(reason, ("file", "skipped"))
        examples = skipped.get("examples", {}).get(reason, [])
        # An example may carry the parser's error after the file name; keep the line short.
        shown = [e if len(e) <= 60 else e[:57] + "..." for e in examples[:names]]
        if n > len(shown) and shown:
            shown.append(f"and {n - len(shown)} more")
        lines.append(f"{n} {unit}{'s' if n != 1 else ''} {verb}: {reason}" + (f": {', '.join(shown)}" if shown else ""))
    return lines


def count_line(n_files: int, n_pages: int, skipped: dict[str, Any]) -> str:
    """What extraction read and lost, counted per unit, for the extract stage's line.

    >>> count_line(2, 119, {"counts": {SKIP_EXCLUDED: 1, SKIP_GARBLED_PAGE: 16, SKIP_GARBLED_LINE: 35}})
    '2 files read, 1 excluded; 119 pages with text; 16 pages and 35 lines unreadable'
    """
    per_unit: dict[str, int] = {}
    excluded = 0
    for reason, n in skipped.get("counts", {}).items():
        unit, verb = _SKIP_UNITS.get(reason, ("file", "skipped"))
        if reason == SKIP_EXCLUDED:
            excluded += n
        elif verb in ("skipped", "dropped"):  # not "read in part": those files were read
            per_unit[unit] = per_unit.get(unit, 0) + n
    plural = lambda n, unit: f"{n} {unit}{'s' if n != 1 else ''}"  # noqa: E731
    files = [plural(n_files, "file") + " read"] + ([f"{excluded} excluded"] if excluded else [])
    files += [f"{per_unit.pop('file')} skipped"] if "file" in per_unit else []
    parts = [", ".join(files), plural(n_pages, "page") + " with text"]
    lost = [plural(per_unit.pop(u), u) for u in ("page", "line") if u in per_unit]
    if lost:
        parts.append(" and ".join(lost) + " unreadable")
    if per_unit:  # folders and links that could not be read
        parts.append(" and ".join(plural(n, u) for u, n in per_unit.items()) + " not read")
    return "; ".join(parts)


@dataclass
class Extraction:
    """What extraction produced, and what it skipped and why."""

    pages: list[Page]
    files: list[str] = field(default_factory=list)
    skipped: SkipCounter = field(default_factory=SkipCounter)


class _SkipFile(Exception):
    """Raised inside a reader when a whole file must be skipped; the message is the reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


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
    from . import garbled

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


# --- PDF backends ---------------------------------------------------------------


@contextlib.contextmanager
def quiet_pypdf() -> Iterator[None]:
    """Silence pypdf's repair chatter ("Ignoring wrong pointing object") for a block.

    The logger level and warning filters are restored afterwards, so importing
    or calling ragtune never reconfigures the caller's logging.
    """
    logger = logging.getLogger("pypdf")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(old)


def _check_pdf_bytes(data: bytes) -> None:
    if not data:
        raise _SkipFile(SKIP_EMPTY_FILE)
    if b"%PDF-" not in data[:1024]:
        raise _SkipFile(SKIP_NOT_PDF)


def _is_truncated(data: bytes) -> bool:
    # PDF structure after the last %%EOF is an update that was cut short.
    end = data.rfind(b"%%EOF")
    return end < 0 or re.search(rb"\bobj\b|endobj|stream|xref|trailer", data[end:]) is not None


def pypdf_pages(data: bytes, name: str, skipped: SkipCounter, mode: str = "plain") -> list[str | None]:
    """Raw text of each page with pypdf (None for a page that failed to extract).

    Raises _SkipFile when the whole file cannot be read.
    """
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    with quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise _SkipFile(SKIP_ENCRYPTED)
            n_pages = len(reader.pages)
        except _SkipFile:
            raise
        except DependencyError:
            raise _SkipFile(SKIP_NEEDS_CRYPTO) from None
        except FileNotDecryptedError:
            raise _SkipFile(SKIP_ENCRYPTED) from None
        except Exception as e:  # pypdf raises many exception types on damaged files
            reason = SKIP_TRUNCATED if _is_truncated(data) else SKIP_DAMAGED
            raise _SkipFile(reason, f"{type(e).__name__}: {e}"[:120]) from None
        texts: list[str | None] = []
        for i in range(n_pages):
            try:
                texts.append(reader.pages[i].extract_text(extraction_mode=mode) or "")
            except Exception as e:  # one bad page must not cost the rest of the file
                skipped.add(SKIP_PAGE_FAILED, f"{name} p{i + 1}: {type(e).__name__}")
                texts.append(None)
            if i % _PAGES_PER_CACHE == _PAGES_PER_CACHE - 1:
                # pypdf keeps every object it has parsed (decoded content streams
                # included); dropping them now and then keeps memory for a
                # 2,000-page file near that of a 32-page one. Fonts are re-read.
                reader.resolved_objects.clear()
    return texts


_PAGES_PER_CACHE = 32


def pypdfium2_pages(data: bytes, name: str, skipped: SkipCounter) -> list[str | None]:
    """Raw text of each page with pypdfium2 (faster; an optional dependency)."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ExtractError("the pypdfium2 extractor needs `pip install pypdfium2`") from None
    try:
        doc = pdfium.PdfDocument(data, password="")
    except Exception as e:
        msg = str(e)
        if "password" in msg.lower():
            raise _SkipFile(SKIP_ENCRYPTED) from None
        reason = SKIP_TRUNCATED if _is_truncated(data) else SKIP_DAMAGED.replace("pypdf", "pypdfium2")
        raise _SkipFile(reason, f"{type(e).__name__}: {msg}"[:120]) from None
    texts: list[str | None] = []
    try:
        for i in range(len(doc)):
            try:
                page = doc[i]
                textpage = page.get_textpage()
                texts.append(textpage.get_text_range())
                textpage.close()
                page.close()
            except Exception as e:  # one bad page must not cost the rest of the file
                skipped.add(SKIP_PAGE_FAILED, f"{name} p{i + 1}: {type(e).__name__}")
                texts.append(None)
    finally:
        doc.close()
    return texts


def clean_document(
    raw: list[str | None], name: str, skipped: SkipCounter, max_page_garbled: float = 0.25
) -> list[str | None]:
    """Clean the raw pages of one PDF as a whole (shared vocabulary and running lines).

    Failed pages (None) stay None so page numbers keep their place; so do
    pages where `max_page_garbled` or more of the tokens are raw glyph codes.
    Lines that are mostly glyph codes are dropped from the other pages.
    """
    raw = list(raw)
    texts: list[str] = []
    for i, t in enumerate(raw, start=1):
        # A page this garbled has no usable text left between the junk lines.
        if t and garbled_share(t) >= max_page_garbled:
            skipped.add(SKIP_GARBLED_PAGE, f"{name} p{i}")
            raw[i - 1] = t = None
        t, n_garbled = drop_garbled_lines(t or "")
        if n_garbled:
            skipped.add(SKIP_GARBLED_LINE, f"{name} p{i}", n=n_garbled)
        texts.append(t)
    # The vocabulary must see words as clean_text will ("speciﬁc" -> "specific").
    texts = [normalise_chars(t) for t in texts]
    raw, texts = drop_mismapped(raw, texts, name, skipped)
    vocabulary = vocabulary_of("\n".join(texts))
    cleaned = drop_running_lines([clean_text(t, vocabulary) for t in texts])
    return [None if r is None else c for r, c in zip(raw, cleaned)]


# --- text files -------------------------------------------------------------------


def decode_text(raw: bytes) -> str:
    """Decode a .txt/.md file: BOMs first, then UTF-8, then cp1252 (latin-1 last).

    A UTF-8 file with a few stray bytes that are not UTF-8 stays UTF-8; only the
    stray bytes are read as cp1252 (`decode_text_counted` says where they were).

    >>> decode_text("caf\\u00e9".encode("utf-16")), decode_text(b"caf\\xe9 \\x93q\\x94")
    ('café', 'café “q”')
    >>> decode_text("café ".encode() + b"\\x93q\\x94")
    'café “q”'
    """
    return decode_text_counted(raw)[0]


# A byte that is not UTF-8, as errors="surrogateescape" keeps it (U+DC80-U+DCFF).
_STRAY_BYTE = re.compile(r"[\udc80-\udcff]")
# A character that took several bytes of valid UTF-8.
_UTF8_MULTIBYTE = re.compile(r"[^\x00-\x7f\udc80-\udcff]")


def _cp1252_byte(m: re.Match[str]) -> str:
    byte = bytes([ord(m.group()) - 0xDC00])
    try:
        return byte.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return byte.decode("latin-1")


def decode_text_counted(raw: bytes) -> tuple[str, dict[int, int]]:
    """`decode_text`, and {line number: stray bytes} for the lines of a UTF-8 file whose
    bytes that are not UTF-8 were read one by one as cp1252.

    >>> decode_text_counted("naïve\\n".encode() + b"caf\\xe9 \\x93q\\x94\\n")
    ('naïve\\ncafé “q”\\n', {2: 3})
    """
    boms = [(b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
            (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]  # fmt: skip
    for bom, enc in boms:
        if raw.startswith(bom):
            return raw.decode(enc, errors="replace"), {}
    # UTF-16 without a BOM: every other byte of ASCII text is zero.
    if len(raw) >= 4 and raw.count(0) >= len(raw) // 3:
        return raw.decode("utf-16-le" if raw[1] == 0 else "utf-16-be", errors="replace"), {}
    try:
        return raw.decode("utf-8"), {}
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="surrogateescape")
    if not _UTF8_MULTIBYTE.search(text):
        # ASCII and bytes that are not UTF-8, nothing else: a single-byte encoding throughout.
        try:
            return raw.decode("cp1252"), {}
        except UnicodeDecodeError:
            return raw.decode("latin-1"), {}
    # Valid multi-byte UTF-8 too: a UTF-8 file with stray bytes (often cp1252 punctuation
    # pasted in). Reading all of it as cp1252 would garble every accent ("café" ->
    # "cafÃ©"), so only the stray bytes are; a cp1252 file decodes the same this way,
    # except where two of its bytes happen to form a UTF-8 character.
    stray = {n: k for n, line in enumerate(text.split("\n"), start=1) if (k := len(_STRAY_BYTE.findall(line)))}
    return _STRAY_BYTE.sub(_cp1252_byte, text), stray


def _looks_binary(text: str) -> bool:
    bad = sum(1 for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn") and c not in "\n\r\t\f")
    return bad > 0.1 * max(1, len(text)) or text.count("\ufffd") > 0.1 * max(1, len(text))


# --- the folder ---------------------------------------------------------------------


def list_documents(folder: Path, skipped: SkipCounter | None = None) -> tuple[list[Path], list[Path]]:
    """Supported files under `folder` (recursively, sorted) and the unsupported ones.

    Hidden files and folders (".git", ".DS_Store") are not documents and are left out.
    What cannot be listed or is no file to read (an unreadable subfolder, a symbolic
    link that loops, dangles or leads to a folder, a pipe) is counted in `skipped`.
    """
    if not folder.exists():
        if folder.is_symlink():
            raise ExtractError(f"{folder} is a symbolic link that loops or points nowhere; pass the folder itself")
        from .errors import did_you_mean_path

        raise ExtractError(
            f"{folder} does not exist{did_you_mean_path(folder)}; pass the folder holding your .pdf, .txt or .md files"
        )
    if folder.is_file():
        files = [folder]
    elif not folder.is_dir():
        raise ExtractError(f"{folder} is neither a file nor a folder")
    else:
        files = _walk(folder, skipped if skipped is not None else SkipCounter())
    supported = [p for p in files if p.suffix.lower() in PDF_SUFFIXES | TEXT_SUFFIXES]
    other = [p for p in files if p.suffix.lower() not in PDF_SUFFIXES | TEXT_SUFFIXES]
    return supported, other


def _walk(folder: Path, skipped: SkipCounter) -> list[Path]:
    """Files under `folder`, sorted, hidden names left out; links to files are followed,
    links to folders are not (they could loop), ragtune's own run folders are not read.
    Whatever else is found is counted."""
    files: list[Path] = []
    todo = [folder]
    while todo:
        here = todo.pop()
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except OSError as e:
            if here == folder:
                raise ExtractError(
                    f"cannot list {folder} ({e.strerror or type(e).__name__}); check its permissions"
                ) from None
            skipped.add(
                SKIP_UNREADABLE_FOLDER, f"{display_name(here.relative_to(folder).as_posix())}/: {type(e).__name__}"
            )
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = here / entry.name
            if entry.is_dir(follow_symlinks=False):
                if run_kind(path) is not None:
                    skipped.add(SKIP_RUN_FOLDER, f"{path.relative_to(folder).as_posix()}/")
                else:
                    todo.append(path)
                continue
            try:
                is_file, is_dir = entry.is_file(), entry.is_dir()
            except OSError:  # a link that loops ("Too many levels of symbolic links")
                is_file = is_dir = False
            if is_file:
                files.append(path)
                continue
            reason = _link_reason(path, is_dir) if entry.is_symlink() else SKIP_SPECIAL_FILE
            skipped.add(reason, display_name(path.relative_to(folder).as_posix()))
    return sorted(files)


def _link_reason(path: Path, is_dir: bool) -> str:
    """Why a symbolic link that leads to no regular file is not read: a folder, a device or pipe, or nothing."""
    if is_dir:
        return SKIP_LINKED_FOLDER
    try:
        path.stat()
    except OSError:  # dangling, or a loop ("Too many levels of symbolic links")
        return SKIP_BAD_LINK
    return SKIP_LINKED_SPECIAL  # /dev/zero, a pipe, a socket


_LONG_TOKEN = re.compile(rf"\S{{{MAX_WORD_CHARS + 1},}}")
_JUNK_RUN = re.compile(rf"[A-Za-z0-9+/=]{{{MAX_WORD_CHARS + 1},}}")


def drop_junk_words(text: str, name: str, skipped: SkipCounter) -> str:
    """`text` without runs of letters and digits too long to be words, each counted in `skipped`.

    A link is left whole, however long: reference lists hold links with 100-character slugs.

    >>> c = SkipCounter(); drop_junk_words("see " + "QUJD" * 40 + " here", "a.txt", c), c.counts[SKIP_JUNK_WORD]
    ('see   here', 1)
    >>> drop_junk_words("https://example.org/" + "a" * 120, "a.txt", c) == "https://example.org/" + "a" * 120
    True
    """

    def drop(m: re.Match[str]) -> str:
        skipped.add(SKIP_JUNK_WORD, f"{name}: {len(m.group()):,} characters")
        return " "

    def clean(m: re.Match[str]) -> str:
        token = m.group()
        if "://" in token or token.lower().startswith("www."):
            return token
        return _JUNK_RUN.sub(drop, token)

    return _LONG_TOKEN.sub(clean, text)


def _pdf_texts(data: bytes, name: str, extractor: str, skipped: SkipCounter) -> list[str | None]:
    _check_pdf_bytes(data)
    raw = pypdfium2_pages(data, name, skipped) if extractor == "pypdfium2" else pypdf_pages(data, name, skipped)
    if not raw:
        raise _SkipFile(SKIP_ZERO_PAGES)
    texts = [t if t is None else drop_junk_words(t, name, skipped) for t in clean_document(raw, name, skipped)]
    if not any(texts):
        raise _SkipFile(SKIP_ALL_PAGES_FAILED if all(t is None for t in raw) else SKIP_NO_TEXT)
    if _is_truncated(data):
        skipped.add(SKIP_TRUNCATED_PARTIAL, name)
    return texts


def _where_stray(stray: dict[int, int]) -> str:
    """
    >>> _where_stray({3: 1}), _where_stray({3: 2, 9: 1, 12: 1, 20: 4, 31: 1})
    ('1 byte on line 3', '9 bytes on lines 3, 9, 12 and 2 more')
    """
    n, lines = sum(stray.values()), sorted(stray)
    where = f"line {lines[0]}" if len(lines) == 1 else "lines " + ", ".join(map(str, lines[:3]))
    return f"{n} byte{'s' if n != 1 else ''} on {where}" + (f" and {len(lines) - 3} more" if len(lines) > 3 else "")


def _text_file_texts(data: bytes, name: str, skipped: SkipCounter) -> list[str | None]:
    text, stray = decode_text_counted(data)
    if _looks_binary(text):
        raise _SkipFile(SKIP_BINARY_TEXT)
    text = clean_text(drop_junk_words(text, name, skipped)).strip()
    if not text:
        raise _SkipFile(SKIP_EMPTY_TEXT)
    if stray:
        skipped.add(SKIP_STRAY_BYTES, f"{name}: {_where_stray(stray)}")
    return [text]


def _read_one(path: Path, name: str, extractor: str, result: Extraction, seen: dict[str, str]) -> None:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _SkipFile(SKIP_UNREADABLE_FILE, f"{type(e).__name__}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:
        raise _SkipFile(SKIP_DUPLICATE, f"= {seen[digest]}")
    seen[digest] = name
    is_pdf = path.suffix.lower() in PDF_SUFFIXES
    texts = (
        _pdf_texts(data, name, extractor, result.skipped) if is_pdf else _text_file_texts(data, name, result.skipped)
    )
    for i, text in enumerate(texts, start=1):
        if text:
            result.pages.append(Page(source=name, page=i, text=text))
        elif text is not None:
            result.skipped.add(SKIP_EMPTY_PAGE, f"{name} p{i}")
    result.files.append(name)


def matches(rel: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether a relative path matches a glob, by its whole path or its file name, ignoring case.

    >>> matches("sub/SOURCES.md", ["sources*"]), matches("sub/a.pdf", ["sub/*.pdf"]), matches("a.pdf", ["*.md"])
    (True, True, False)
    """
    import fnmatch

    rel = rel.lower()
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p.lower()) or fnmatch.fnmatch(name, p.lower()) for p in patterns)


def select_documents(
    folder: Path,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
    skipped: SkipCounter | None = None,
) -> tuple[list[Path], list[Path], list[Path]]:
    """(supported, other, excluded) files under `folder`, or an ExtractError when the folder has
    nothing to read: missing, empty, no supported file, or every one excluded.

    With `include`, only supported files matching one of its globs are read; a file
    matching `exclude` is not read unless `include` names it. What the listing
    skipped (see `list_documents`) is counted in `skipped`.
    """
    listed = skipped if skipped is not None else SkipCounter()
    supported, other = list_documents(folder, listed)
    base = folder if folder.is_dir() else folder.parent
    rel = {p: p.relative_to(base).as_posix() for p in supported}
    keep = [p for p in supported if (matches(rel[p], include) if include else not matches(rel[p], exclude))]
    excluded = [p for p in supported if p not in keep]
    if not keep:
        if folder.is_file() and not supported:
            raise ExtractError(f"{folder} is not a .pdf, .txt or .md file")
        if excluded:
            names = ", ".join(display_name(rel[p]) for p in excluded[:3]) + (", ..." if len(excluded) > 3 else "")
            raise ExtractError(f"every supported file in {folder} is excluded ({names}); change --include or --exclude")
        # A folder whose documents all sit in unreadable subfolders is not empty.
        found = "; ".join(describe_skips(listed.to_dict()))
        if not other and not found:
            raise ExtractError(f"{folder} is empty; put the .pdf, .txt or .md files to train on in it")
        if not other:
            raise ExtractError(f"{folder} has no .pdf, .txt or .md file that can be read: {found}")
        names = ", ".join(display_name(p.name) for p in other[:3]) + (", ..." if len(other) > 3 else "")
        raise ExtractError(
            f"{folder} has no .pdf, .txt or .md files ({len(other)} other files: {names})"
            + (f"; {found}" if found else "")
            + _convert_hint(other)
        )
    return keep, other, excluded


# Office and web files ragtune does not read, and a one-line way to turn them into files it does.
CONVERTIBLE = {
    ".docx": "Word",
    ".doc": "Word",
    ".odt": "Word",
    ".rtf": "Word",
    ".pptx": "PowerPoint",
    ".ppt": "PowerPoint",
    ".odp": "PowerPoint",
    ".html": "HTML",
    ".htm": "HTML",
}


def _convert_hint(other: list[Path]) -> str:
    """How to read Word, PowerPoint or HTML files: convert them to PDF first (pages then become locations).

    >>> _convert_hint([Path("a.docx"), Path("b.DOCX"), Path("c.htm")])
    '; ragtune reads no HTML or Word files: convert them to PDF first, e.g. `soffice --headless --convert-to pdf --outdir DOCS *.docx *.htm` (LibreOffice)'
    >>> _convert_hint([Path("a.xlsx")])
    ''
    """
    suffixes = sorted({p.suffix.lower() for p in other if p.suffix.lower() in CONVERTIBLE})
    if not suffixes:
        return ""
    kinds = sorted({CONVERTIBLE[suffix] for suffix in suffixes})
    return (
        f"; ragtune reads no {' or '.join(kinds)} files: convert them to PDF first, e.g. "
        f"`soffice --headless --convert-to pdf --outdir DOCS {' '.join('*' + x for x in suffixes)}` (LibreOffice)"
    )


def extract_folder(
    folder: Path,
    extractor: str = "pypdf",
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
    progress: Callable[[int, int], None] | None = None,
) -> Extraction:
    """Read every supported file under `folder` into pages (page numbers start at 1).

    A file that cannot be read is skipped and counted with the reason, never
    raised; files whose bytes repeat an earlier file are read once. Raises
    ExtractError only when the folder as a whole is unusable.

    >>> extract_folder(Path("resources")).pages[0].page  # doctest: +SKIP
    1
    """
    if extractor not in ("pypdf", "pypdfium2"):
        raise ExtractError(f"unknown extractor {extractor!r}; use pypdf or pypdfium2")
    result = Extraction(pages=[])
    supported, other, excluded = select_documents(folder, include, exclude, result.skipped)
    base = folder if folder.is_dir() else folder.parent
    for p in other:
        result.skipped.add(SKIP_UNSUPPORTED, display_name(p.relative_to(base).as_posix()))
    for p in excluded:
        result.skipped.add(SKIP_EXCLUDED, display_name(p.relative_to(base).as_posix()))
    seen: dict[str, str] = {}
    for done, path in enumerate(supported):
        if progress is not None:
            progress(done, len(supported))
        name = display_name(path.relative_to(base).as_posix())
        try:
            _read_one(path, name, extractor, result, seen)
        except _SkipFile as s:
            result.skipped.add(s.reason, f"{name}: {s.detail}" if s.detail else name)
    if progress is not None:
        progress(len(supported), len(supported))
    return result
