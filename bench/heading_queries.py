"""Queries people wrote, from any run's own documents: each numbered section heading asks for its section.

    python -m bench.heading_queries RUN_DIR OUT_DIR
    python -m bench.shared_bench OUT_DIR --bench OUT_DIR/questions.csv --chunking chars1000 --passage-words 0 \
        --model RUN_DIR/model

A heading ("4.2. Configuring the network") was written by the document's author, not by ragtune's generators,
and asks for the text under it. OUT_DIR gets the run's config.json, its pages with every heading line taken out
(work/pages.jsonl, so that no retriever finds a section by its own heading, and no table of contents either), and
questions.csv in ../shared/bench's format: the heading's words as the question, the first CONTEXT_WORDS words of
its section as the context (bench/common.py's relevance rule then finds the chunks that hold them).

A heading is a line of a page that starts with a section number, then 2 to 12 words that start with a capital
letter and do not end a sentence; a line with dot leaders or an ending page number is a table of contents line
(taken out, never a question). Its section is the page's text up to the next heading, and it counts only with at
least MIN_WORDS words. The same heading text twice asks nothing specific: it is dropped.

Does this yardstick see what the run's own held-out questions cannot (a tuned model falling below the base on
questions people write)? docs/benchmarks.md compares it with the Debian FAQ's questions on the same runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

_NUMBERED = re.compile(r"^\s*(\d+(?:\.\d+)*)\.?\s+(\S.*?)\s*$")
_TOC = re.compile(r"(?:\.\s?){3,}|\s\d+$")
MIN_WORDS = 40
CONTEXT_WORDS = 80


def _contents_line(line: str) -> bool:
    """A table-of-contents line: a section number, then dot leaders or an ending page number."""
    return bool(_NUMBERED.match(line) and _TOC.search(line))


def heading_title(line: str) -> str | None:
    """The title of a heading line, or None.

    >>> [heading_title(x) for x in ("4.2. Configuring the network", "3 Package priorities", "1. Run apt update.")]
    ['Configuring the network', 'Package priorities', None]
    >>> [heading_title(x) for x in ("5.6 Fields . . . . . 39", "2 cups of flour", "12 Oct 2020")]
    [None, None, None]
    """
    m = _NUMBERED.match(line)
    if not m or _contents_line(line):
        return None
    title = m.group(2)
    words = title.split()
    if not 2 <= len(words) <= 12 or not title[0].isupper() or title[-1] in ".:;,!?" or words[0].isdigit():
        return None
    # "12 Oct 2020", "3 GB of RAM": a number then a short lower-case or numeric rest is not a section.
    if sum(w[0].isupper() or w.isdigit() for w in words) == len(words) and any(w.isdigit() for w in words):
        return None
    return title


def sections(pages: list[dict]) -> tuple[list[tuple[str, str]], list[dict]]:
    """(heading title, section text) of every heading with a long enough section, and the pages without their
    heading and table-of-contents lines."""
    found: list[tuple[str, str]] = []
    stripped = []
    for page in pages:
        lines = page["text"].split("\n")
        kept: list[str] = []
        current: tuple[str, list[str]] | None = None
        for line in lines:
            title = heading_title(line)
            if title is not None or _contents_line(line):
                if current is not None:
                    found.append((current[0], " ".join(current[1])))
                current = (title, []) if title is not None else None
                continue
            kept.append(line)
            if current is not None:
                current[1].append(line)
        if current is not None:
            found.append((current[0], " ".join(current[1])))
        stripped.append(page | {"text": "\n".join(kept)})
    counts = Counter(t.lower() for t, _ in found)
    usable = [(t, body) for t, body in found if counts[t.lower()] == 1 and len(body.split()) >= MIN_WORDS]
    return usable, stripped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    pages_file = args.run_dir / "work" / "pages.jsonl"
    if not pages_file.is_file():
        print(f"error: {pages_file} is missing: RUN_DIR must be a ragtune run folder", file=sys.stderr)
        return 1
    pages = [json.loads(line) for line in pages_file.read_text(encoding="utf-8").splitlines() if line]
    found, stripped = sections(pages)
    (args.out_dir / "work").mkdir(parents=True, exist_ok=True)
    shutil.copy(args.run_dir / "config.json", args.out_dir / "config.json")
    with (args.out_dir / "work" / "pages.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(p, ensure_ascii=False) + "\n" for p in stripped)
    with (args.out_dir / "questions.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "contexts"])
        for title, body in found:
            writer.writerow([title, repr([" ".join(body.split()[:CONTEXT_WORDS])])])
    print(f"{len(found)} headings with a section of {MIN_WORDS}+ words, from {len(pages)} pages -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
