"""Pages -> chunks, sized in tokens of the base model's tokenizer.

Pages of one document are joined so a chunk can span a page break; each chunk
records every page it touches. No chunk is longer than `max_tokens`, so the
model never silently truncates what it embeds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from .models import quiet_libraries
from .records import Chunk, Page, SkipCounter

_PAGE_SEPARATOR = "\n\n"


@dataclass
class Chunking:
    chunks: list[Chunk]
    skipped: SkipCounter = field(default_factory=SkipCounter)


def chunk_id(source: str, text: str) -> str:
    """A stable id from the chunk's source and text.

    >>> chunk_id("a.pdf", "hello")
    'c-bc380567fef34de9'
    """
    return "c-" + hashlib.sha1(f"{source}\0{text}".encode()).hexdigest()[:16]


def _pages_spanned(starts: list[int], start: int, end: int, numbers: list[int]) -> tuple[int, ...]:
    # starts[i] is the character offset of page numbers[i] in the joined text.
    return tuple(
        n for i, n in enumerate(numbers) if starts[i] < end and (i + 1 == len(starts) or starts[i + 1] > start)
    )


def _hard_split(text: str, tokenizer: Any, max_tokens: int) -> list[str]:
    """Split text with no usable separators into pieces of at most max_tokens."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    pieces = []
    for i in range(0, len(offsets), max_tokens):
        window = offsets[i : i + max_tokens]
        pieces.append(text[window[0][0] : window[-1][1]])
    return pieces


# Measuring a whole page in tokens is expected to exceed the model limit; the warning is noise.
@quiet_libraries()
def chunk_pages(
    pages: list[Page],
    tokenizer: Any,
    chunk_tokens: int,
    overlap: int,
    max_tokens: int,
    min_tokens: int = 0,
) -> Chunking:
    """Split pages into chunks of about `chunk_tokens` tokens (never above `max_tokens`).

    Chunks shorter than `min_tokens` and exact duplicates (repeated boilerplate)
    are dropped and counted.
    """
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    size = min(chunk_tokens, max_tokens)

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=min(overlap, size // 2 - 1),
        length_function=n_tokens,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
        strip_whitespace=True,
    )
    result = Chunking(chunks=[])
    seen: set[str] = set()
    for source, group in groupby(pages, key=lambda p: p.source):
        doc_pages = list(group)
        starts, parts, pos = [], [], 0
        for p in doc_pages:
            starts.append(pos)
            parts.append(p.text)
            pos += len(p.text) + len(_PAGE_SEPARATOR)
        joined = _PAGE_SEPARATOR.join(parts)
        numbers = [p.page for p in doc_pages]
        # Offsets are found by searching forward, not taken from LangChain's
        # start_index: that one subtracts the overlap as if it were characters,
        # and our overlap is in tokens.
        cursor = 0
        for text in splitter.split_text(joined):
            pieces = [text] if n_tokens(text) <= max_tokens else _hard_split(text, tokenizer, max_tokens)
            for piece in pieces:
                piece = piece.strip()
                found = joined.find(piece, cursor)
                start = found if found >= 0 else cursor
                cursor = start + 1
                end = start + len(piece)
                n = n_tokens(piece)
                if n < min_tokens:
                    result.skipped.add("chunk too short", f"{source}: {piece[:40]!r}")
                    continue
                key = " ".join(piece.lower().split())
                if key in seen:
                    result.skipped.add("duplicate chunk text", f"{source}: {piece[:40]!r}")
                    continue
                seen.add(key)
                result.chunks.append(
                    Chunk(
                        id=chunk_id(source, piece),
                        source=source,
                        pages=_pages_spanned(starts, start, end, numbers),
                        text=piece,
                        n_tokens=n,
                    )
                )
    return result
