"""Why a file, page or line of the input was not read, in the words the console and report.md use."""

from __future__ import annotations

import re
from typing import Any

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


class _SkipFile(Exception):
    """Raised inside a reader when a whole file must be skipped; the message is the reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail
