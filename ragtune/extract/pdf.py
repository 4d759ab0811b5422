"""The PDF backends: pypdf (plain or layout mode) and the optional, faster pypdfium2."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from typing import Iterator

from ..errors import ExtractError
from ..records import SkipCounter
from .clean import (
    clean_text,
    drop_garbled_lines,
    drop_mismapped,
    drop_running_lines,
    garbled_share,
    normalise_chars,
    vocabulary_of,
)
from .skips import (
    SKIP_DAMAGED,
    SKIP_EMPTY_FILE,
    SKIP_ENCRYPTED,
    SKIP_GARBLED_LINE,
    SKIP_GARBLED_PAGE,
    SKIP_NEEDS_CRYPTO,
    SKIP_NOT_PDF,
    SKIP_PAGE_FAILED,
    SKIP_TRUNCATED,
    _SkipFile,
)

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
