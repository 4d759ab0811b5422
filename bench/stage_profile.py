"""Time and peak memory of each stage as the corpus grows, and each stage's growth exponent.

    python -m bench.stage_profile [--pages 60,120,240] [--docs DIR] [ragtune run flags…]

Builds a corpus of N pages from the PDFs in DOCS (default ../shared/docs), taking pages in turn from each
file so every size mixes all of them (distinct pages first; past the pages there are, pages repeat, and
the chunk stage drops the repeated text as duplicates), runs `ragtune run` on it in a fresh process per
size (with the real base model unless --base-model says otherwise, 3 training steps by default), and
prints the seconds and peak resident MiB of each stage from metrics.json's "stages", and the log-log
slope of seconds against chunks between the smallest and the largest size: about 1 is linear, 2 quadratic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED_DOCS = Path(__file__).resolve().parents[2] / "shared" / "docs"


def build_corpus(docs: Path, pages: int, out: Path) -> int:
    """A PDF of `pages` pages in `out`, taken in turn from each PDF in `docs`; the pages written."""
    from pypdf import PdfReader, PdfWriter

    readers = [PdfReader(str(p)) for p in sorted(docs.glob("*.pdf"))]
    if not readers:
        raise SystemExit(f"no PDF in {docs}")
    order = [(r, i) for i in range(max(len(r.pages) for r in readers)) for r in readers if i < len(r.pages)]
    writer = PdfWriter()
    for n in range(pages):
        reader, i = order[n % len(order)]
        writer.add_page(reader.pages[i])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"corpus_{pages}.pdf", "wb") as f:
        writer.write(f)
    return pages


def run_size(docs: Path, pages: int, work: Path, flags: list[str]) -> dict:
    """One `ragtune run` over `pages` pages in a fresh process; metrics.json and the manifest's counts."""
    corpus, out = work / f"docs_{pages}", work / f"run_{pages}"
    build_corpus(docs, pages, corpus)
    cmd = [sys.executable, "-m", "ragtune", "run", str(corpus), "--out", str(out), *flags]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())["stages"]
    return {
        "pages": manifest["extract"]["n_pages"],
        "chunks": manifest["chunk"]["n_chunks"],
        "questions": manifest["generate"]["n_pairs"],
        "stages": metrics["stages"],
        "hit@5": metrics["after"]["hit@5"],
    }


def slope(x0: float, y0: float, x1: float, y1: float) -> float | None:
    """The log-log slope between two points (None where a time is too small to tell)."""
    if min(x0, x1, y0, y1) <= 0 or x0 == x1 or min(y0, y1) < 0.05:
        return None
    return math.log(y1 / y0) / math.log(x1 / x0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", default="60,120,240", help="corpus sizes in pages, comma-separated")
    p.add_argument("--docs", type=Path, default=SHARED_DOCS, help="folder of PDFs to build the corpora from")
    p.add_argument("--keep", type=Path, help="build the corpora and runs here (default: a temporary folder)")
    args, flags = p.parse_known_args()
    if "--max-steps" not in flags:
        flags += ["--max-steps", "3"]
    work = args.keep or Path(tempfile.mkdtemp(prefix="ragtune-profile-"))
    sizes = [int(n) for n in args.pages.split(",")]
    import torch

    print(f"# {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; flags {flags}")
    rows = [run_size(args.docs, n, work, flags) for n in sizes]
    stages = list(rows[0]["stages"])
    print("per stage: wall seconds / CPU seconds / peak resident MiB")
    print(f"{'pages':>6}{'chunks':>7}{'questions':>10}  " + "".join(f"{s:>21}" for s in stages))
    for r in rows:
        cells = "".join(
            f"{r['stages'][s]['seconds']:>7.1f}/{r['stages'][s].get('cpu_seconds', 0):>6.1f}/{r['stages'][s]['peak_rss_mib']:>6.0f}"
            for s in stages
        )
        print(f"{r['pages']:>6}{r['chunks']:>7}{r['questions']:>10}  {cells}")
    first, last = rows[0], rows[-1]
    print(f"growth exponent, log-log slope against chunks ({first['chunks']} -> {last['chunks']}): wall, CPU")
    for s in stages + ["total"]:
        cells = []
        for key in ("seconds", "cpu_seconds"):
            y0, y1 = (
                sum(r["stages"][x].get(key, 0) for x in stages) if s == "total" else r["stages"][s].get(key, 0)
                for r in (first, last)
            )
            k = slope(first["chunks"], y0, last["chunks"], y1)
            cells.append("  -  " if k is None else f"{k:5.2f}")
        print(f"  {s:<9} {cells[0]}  {cells[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
