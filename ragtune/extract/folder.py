"""Folder -> pages: which files are documents, and each one read with its backend and cleaned."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..config import DEFAULT_EXCLUDE
from ..errors import ExtractError, did_you_mean_path
from ..records import Page, SkipCounter
from ..rundir import run_kind
from .clean import clean_text
from .pdf import _check_pdf_bytes, _is_truncated, clean_document, pypdf_pages, pypdfium2_pages
from .skips import (
    MAX_WORD_CHARS,
    SKIP_ALL_PAGES_FAILED,
    SKIP_BAD_LINK,
    SKIP_BINARY_TEXT,
    SKIP_DUPLICATE,
    SKIP_EMPTY_PAGE,
    SKIP_EMPTY_TEXT,
    SKIP_EXCLUDED,
    SKIP_JUNK_WORD,
    SKIP_LINKED_FOLDER,
    SKIP_LINKED_SPECIAL,
    SKIP_NO_TEXT,
    SKIP_RUN_FOLDER,
    SKIP_SPECIAL_FILE,
    SKIP_STRAY_BYTES,
    SKIP_TRUNCATED_PARTIAL,
    SKIP_UNREADABLE_FILE,
    SKIP_UNREADABLE_FOLDER,
    SKIP_UNSUPPORTED,
    SKIP_ZERO_PAGES,
    _SkipFile,
    describe_skips,
    display_name,
)
from .textfiles import _looks_binary, decode_text_counted

PDF_SUFFIXES = {".pdf"}
TEXT_SUFFIXES = {".txt", ".md"}


@dataclass
class Extraction:
    """What extraction produced, and what it skipped and why."""

    pages: list[Page]
    files: list[str] = field(default_factory=list)
    skipped: SkipCounter = field(default_factory=SkipCounter)
    # Size and the first 16 hex digits of the sha256 of every file read, or (-1, "unreadable (OSError's name)"):
    # what the extract stage's key holds of each document, so that a run reads the folder once.
    read: dict[Path, tuple[int, str]] = field(default_factory=dict)


@dataclass
class Listing:
    """The files under a folder, listed once (`select_documents`): those extraction reads, those it only
    lists (unsupported or excluded), and what the listing itself skipped."""

    folder: Path
    supported: list[Path]
    other: list[Path]
    excluded: list[Path]
    skipped: SkipCounter


def list_folder(folder: Path, include: tuple[str, ...] = (), exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> Listing:
    """The documents under `folder`, or an ExtractError when it has nothing to read (see `select_documents`)."""
    skipped = SkipCounter()
    supported, other, excluded = select_documents(folder, include, exclude, skipped)
    return Listing(folder, supported, other, excluded, skipped)


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
        result.read[path] = (-1, f"unreadable ({type(e).__name__})")
        raise _SkipFile(SKIP_UNREADABLE_FILE, f"{type(e).__name__}") from None
    digest = hashlib.sha256(data).hexdigest()
    result.read[path] = (len(data), digest[:16])  # as fileio.sha256_digest has it
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
    listing: Listing | None = None,
) -> Extraction:
    """Read every supported file under `folder` into pages (page numbers start at 1).

    A file that cannot be read is skipped and counted with the reason, never
    raised; files whose bytes repeat an earlier file are read once. Raises
    ExtractError only when the folder as a whole is unusable. `listing` is the folder's, when the caller
    has listed it already (`list_folder` with the same include and exclude).

    >>> extract_folder(Path("resources")).pages[0].page  # doctest: +SKIP
    1
    """
    if extractor not in ("pypdf", "pypdfium2"):
        raise ExtractError(f"unknown extractor {extractor!r}; use pypdf or pypdfium2")
    listing = listing or list_folder(folder, include, exclude)
    supported, other, excluded = listing.supported, listing.other, listing.excluded
    # A copy: the listing's own counts stay as listed, however often it is extracted.
    listed = listing.skipped
    result = Extraction(
        pages=[], skipped=SkipCounter(dict(listed.counts), {k: list(v) for k, v in listed.examples.items()})
    )
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
