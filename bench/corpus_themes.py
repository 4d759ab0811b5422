"""The themes a run derives from a folder of documents when no --themes FILE is given (ragtune.themes.derive_lexicon),
per PDF and for the whole folder, with the number of chunks each theme marks.

    python -m bench.corpus_themes [FOLDER]    (default: resources/)

Chunks are cut as a default run cuts them (256 tokens of the bundled all-MiniLM-L6-v2's tokenizer, 32 overlap).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ragtune.config import Config
from ragtune.records import Chunk
from ragtune.themes import derive_lexicon, tag_chunks


def folder_chunks(folder: Path) -> list[Chunk]:
    from transformers import AutoTokenizer

    from ragtune.chunk import chunk_pages
    from ragtune.extract import extract_folder
    from ragtune.models import bundled_model_path

    cfg = Config(docs=folder)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    pages = extract_folder(folder).pages
    return chunk_pages(pages, tokenizer, cfg.chunk_tokens, cfg.chunk_overlap, 510, cfg.min_chunk_tokens).chunks


def show(name: str, chunks: list[Chunk]) -> None:
    lexicon = derive_lexicon([c.text for c in chunks])
    tagged = tag_chunks(chunks, lexicon)
    print(f"\n{name}: {len(chunks)} chunks, {len(chunks) - tagged.unthemed} themed, {tagged.unthemed} unthemed")
    for theme, n in tagged.per_theme.items():
        print(f"  {theme:<28} {n:>4} chunks   keywords: {', '.join(lexicon[theme])}")


def main(argv: list[str]) -> None:
    folder = Path(argv[0]) if argv else Path("resources")
    chunks = folder_chunks(folder)
    for source in sorted({c.source for c in chunks}):
        show(source, [c for c in chunks if c.source == source])
    show(f"{folder} (all)", chunks)


if __name__ == "__main__":
    main(sys.argv[1:])
