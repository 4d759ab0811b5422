"""Compare PDF text extractors on word quality and speed.

    python -m bench.extract_quality [PDF_DIR]

For each PDF and backend (pypdf default "plain" mode, pypdf "layout" mode,
pypdfium2), before ("raw") and after ragtune's cleaning ("clean"), prints:

  words    word tokens (letters, with inner hyphens/apostrophes, lower-cased)
  oov%     share of those tokens absent from the reference's word set; the
           reference is cleaned pypdfium2 (for pypdfium2's own rows: cleaned
           pypdf plain), so a broken, joined or mangled word counts here
  miss%    share of reference tokens absent from this extraction's word set
  join     tokens absent from the reference that are two reference words glued
           together ("ofthe")
  split    adjacent token pairs that are absent from the reference but whose
           concatenation is a reference word ("pr ovided")
  lig      tokens still holding a ligature glyph ("conﬁguration"; an ASCII
           tokenizer turns it into "con", "guration") or a "guration"-style
           fragment left where an extractor dropped the glyph
  junk%    share of tokens that look like raw glyph codes (fonts without a
           Unicode map) or contain control characters
  s/doc    seconds to extract the document (cleaning included for "clean")

Default PDF_DIR: /work/shared/docs, ../shared/docs next to the repo, or
resources/. Word-set comparisons are against another extractor, so read
them as disagreement, not absolute error.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ragtune.extract import (
    clean_document,
    garbled_share,
    pypdf_pages,
    pypdfium2_pages,
)
from ragtune.records import SkipCounter
from ragtune.text import words

REPO = Path(__file__).resolve().parents[1]

# Word endings left behind when an extractor drops a ligature glyph.
_LIGATURE_FRAGMENTS = re.compile(r"(?:guration|nancial|cient|ective|ection|uence)s?$")
_LIGATURE = re.compile("[\ufb00-\ufb06]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class Row:
    pdf: str
    backend: str
    stage: str
    tokens: list[str]
    garbled_share: float
    seconds: float


def _default_dir() -> Path:
    for d in (Path("/work/shared/docs"), REPO.parent / "shared" / "docs", REPO / "resources"):
        if d.is_dir() and any(d.glob("*.pdf")):
            return d
    raise SystemExit("no PDF folder found; pass one: python -m bench.extract_quality PDF_DIR")


def _backends() -> dict[str, Callable[[bytes, str, SkipCounter], list[str | None]]]:
    return {
        "pypdf-plain": lambda d, n, s: pypdf_pages(d, n, s, mode="plain"),
        "pypdf-layout": lambda d, n, s: pypdf_pages(d, n, s, mode="layout"),
        "pypdfium2": pypdfium2_pages,
    }


def _junk_share(pages: list[str | None]) -> float:
    tokens = "\n".join(p or "" for p in pages).split()
    bad = sum(1 for t in tokens if _CONTROL.search(t) or garbled_share(t) > 0)
    return bad / len(tokens) if tokens else 0.0


def measure(pdf: Path) -> list[Row]:
    data = pdf.read_bytes()
    rows = []
    for backend, read in _backends().items():
        t0 = time.perf_counter()
        raw = read(data, pdf.name, SkipCounter())
        t_raw = time.perf_counter() - t0
        cleaned = clean_document(raw, pdf.name, SkipCounter())
        t_clean = time.perf_counter() - t0
        for stage, pages, secs in (("raw", raw, t_raw), ("clean", cleaned, t_clean)):
            text = "\n".join(p or "" for p in pages)
            rows.append(Row(pdf.name, backend, stage, words(text), _junk_share(pages), secs))
    return rows


def _joins_and_splits(tokens: list[str], ref: set[str]) -> tuple[int, int]:
    # Only plain letter words can be glued or split; skip hyphenated compounds.
    joins = sum(
        1
        for t in tokens
        if t not in ref and t.isalpha() and any(t[:i] in ref and t[i:] in ref for i in range(2, len(t) - 1))
    )
    splits = sum(1 for a, b in zip(tokens, tokens[1:]) if (a not in ref or b not in ref) and a + b in ref)
    return joins, splits


def table(rows: list[Row]) -> str:
    header = f"{'pdf':<34} {'backend':<13} {'stage':<6} {'words':>7} {'oov%':>6} {'miss%':>6} {'join':>5} {'split':>5} {'lig':>5} {'junk%':>6} {'s/doc':>6}"
    out = [header, "-" * len(header)]
    by_pdf: dict[str, list[Row]] = {}
    for r in rows:
        by_pdf.setdefault(r.pdf, []).append(r)
    for pdf, rs in by_pdf.items():
        ref_rows = {(r.backend, r.stage): r for r in rs}
        for r in rs:
            other = "pypdf-plain" if r.backend == "pypdfium2" else "pypdfium2"
            ref = ref_rows[(other, "clean")].tokens
            ref_set, own_set = set(ref), set(r.tokens)
            n = max(1, len(r.tokens))
            oov = sum(1 for t in r.tokens if t not in ref_set) / n
            miss = sum(1 for t in ref if t not in own_set) / max(1, len(ref))
            joins, splits = _joins_and_splits(r.tokens, ref_set)
            frag = sum(
                1 for t in r.tokens if _LIGATURE.search(t) or (t not in ref_set and _LIGATURE_FRAGMENTS.match(t))
            )
            out.append(
                f"{pdf[:34]:<34} {r.backend:<13} {r.stage:<6} {len(r.tokens):>7} {100 * oov:>6.2f} "
                f"{100 * miss:>6.2f} {joins:>5} {splits:>5} {frag:>5} {100 * r.garbled_share:>6.2f} {r.seconds:>6.2f}"
            )
        out.append("")
    return "\n".join(out)


def top_disagreements(rows: list[Row], n: int = 8) -> str:
    """The most frequent cleaned-pypdf-plain words that pypdfium2 lacks, per PDF (for eyeballing)."""
    out = []
    for pdf in dict.fromkeys(r.pdf for r in rows):
        mine = next(r for r in rows if r.pdf == pdf and r.backend == "pypdf-plain" and r.stage == "clean")
        ref = set(next(r for r in rows if r.pdf == pdf and r.backend == "pypdfium2" and r.stage == "clean").tokens)
        common = Counter(t for t in mine.tokens if t not in ref).most_common(n)
        out.append(f"{pdf}: " + ", ".join(f"{w}×{c}" for w, c in common))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pdf_dir", type=Path, nargs="?", help="default: the shared docs, else resources/")
    args = ap.parse_args(argv[1:])
    folder = args.pdf_dir or _default_dir()
    pdfs = sorted(folder.glob("*.pdf"))
    if not pdfs:
        print(f"no .pdf files in {folder}", file=sys.stderr)
        return 1
    rows = [row for pdf in pdfs for row in measure(pdf)]
    print(f"PDFs from {folder}\n")
    print(table(rows))
    print("pypdf-plain (clean) words that pypdfium2 (clean) lacks, most frequent first:")
    print(top_disagreements(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
