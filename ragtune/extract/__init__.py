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

The package: skips.py (why something was not read), clean.py (one page's text), pdf.py and textfiles.py
(the readers), folder.py (which files are documents, and the folder read)."""

from __future__ import annotations

from ..errors import ExtractError
from .clean import (
    clean_text,
    drop_garbled_lines,
    drop_mismapped,
    drop_running_lines,
    garbled_share,
    join_hyphenated,
    normalise_chars,
    vocabulary_of,
)
from .folder import (
    CONVERTIBLE,
    PDF_SUFFIXES,
    TEXT_SUFFIXES,
    Extraction,
    Listing,
    drop_junk_words,
    extract_folder,
    list_documents,
    list_folder,
    matches,
    select_documents,
)
from .pdf import _PAGES_PER_CACHE, clean_document, pypdf_pages, pypdfium2_pages, quiet_pypdf
from .skips import (
    FILE_SKIPS,
    MAX_WORD_CHARS,
    SKIP_ALL_PAGES_FAILED,
    SKIP_BAD_LINK,
    SKIP_BINARY_TEXT,
    SKIP_DAMAGED,
    SKIP_DUPLICATE,
    SKIP_EMPTY_FILE,
    SKIP_EMPTY_PAGE,
    SKIP_EMPTY_TEXT,
    SKIP_ENCRYPTED,
    SKIP_EXCLUDED,
    SKIP_GARBLED_LINE,
    SKIP_GARBLED_PAGE,
    SKIP_JUNK_WORD,
    SKIP_LINKED_FOLDER,
    SKIP_LINKED_SPECIAL,
    SKIP_MISMAPPED_LINE,
    SKIP_MISMAPPED_PAGE,
    SKIP_NEEDS_CRYPTO,
    SKIP_NO_TEXT,
    SKIP_NOT_PDF,
    SKIP_PAGE_FAILED,
    SKIP_RUN_FOLDER,
    SKIP_SPECIAL_FILE,
    SKIP_STRAY_BYTES,
    SKIP_TRUNCATED,
    SKIP_TRUNCATED_PARTIAL,
    SKIP_UNREADABLE_FILE,
    SKIP_UNREADABLE_FOLDER,
    SKIP_UNSUPPORTED,
    SKIP_ZERO_PAGES,
    count_line,
    describe_skips,
    display_name,
)
from .textfiles import decode_text, decode_text_counted

__all__ = [
    "CONVERTIBLE",
    "ExtractError",
    "Extraction",
    "FILE_SKIPS",
    "MAX_WORD_CHARS",
    "PDF_SUFFIXES",
    "SKIP_ALL_PAGES_FAILED",
    "SKIP_BAD_LINK",
    "SKIP_BINARY_TEXT",
    "SKIP_DAMAGED",
    "SKIP_DUPLICATE",
    "SKIP_EMPTY_FILE",
    "SKIP_EMPTY_PAGE",
    "SKIP_EMPTY_TEXT",
    "SKIP_ENCRYPTED",
    "SKIP_EXCLUDED",
    "SKIP_GARBLED_LINE",
    "SKIP_GARBLED_PAGE",
    "SKIP_JUNK_WORD",
    "SKIP_LINKED_FOLDER",
    "SKIP_LINKED_SPECIAL",
    "SKIP_MISMAPPED_LINE",
    "SKIP_MISMAPPED_PAGE",
    "SKIP_NEEDS_CRYPTO",
    "SKIP_NOT_PDF",
    "SKIP_NO_TEXT",
    "SKIP_PAGE_FAILED",
    "SKIP_RUN_FOLDER",
    "SKIP_SPECIAL_FILE",
    "SKIP_STRAY_BYTES",
    "SKIP_TRUNCATED",
    "SKIP_TRUNCATED_PARTIAL",
    "SKIP_UNREADABLE_FILE",
    "SKIP_UNREADABLE_FOLDER",
    "SKIP_UNSUPPORTED",
    "SKIP_ZERO_PAGES",
    "TEXT_SUFFIXES",
    "_PAGES_PER_CACHE",
    "clean_document",
    "clean_text",
    "count_line",
    "decode_text",
    "decode_text_counted",
    "describe_skips",
    "display_name",
    "drop_garbled_lines",
    "drop_junk_words",
    "drop_mismapped",
    "drop_running_lines",
    "extract_folder",
    "Listing",
    "list_folder",
    "garbled_share",
    "join_hyphenated",
    "list_documents",
    "matches",
    "normalise_chars",
    "pypdf_pages",
    "pypdfium2_pages",
    "quiet_pypdf",
    "select_documents",
    "vocabulary_of",
]
