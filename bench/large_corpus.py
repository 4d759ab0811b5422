"""A large corpus of our own with questions written by people: the Debian FAQ's questions over ~1,100 pages of
Debian manuals, or ~1,550 with --more.

    python -m bench.large_corpus [--out /tmp/h36-large] [--more]

writes OUT/corpus/ (the documents ragtune reads) and OUT/questions.csv (question, contexts: the format of
../shared/bench, so `python -m bench.shared_bench RUN --bench OUT/questions.csv` scores on it).

The questions are the Debian FAQ's own section headings (written by its authors, not by ragtune's
generators); a question's context is the answer text under its heading, and bench/common.py's relevance rule
decides which chunks hold it. The yardstick stays honest only if no question sits verbatim in the text that
is indexed and trained on, so the FAQ goes into the corpus without its table of contents, without its
question headings and without the question titles its cross-references quote ("Section 5.1, “What …?”"
becomes "Section 5.1"); the script then checks every document it wrote for every question and drops (and
counts) any question still found verbatim. The other manuals join as distractors: their PDFs as shipped, the
Debian Administrator's Handbook (HTML only) as one text file per HTML page. --more adds four manuals as further
distractors, for the ~1,500 pages issue 33 sizes its time budget at: the installation guide, the Guide for Debian
Maintainers and the project's history (PDF), and the Securing Debian Manual (HTML, a text file per page); the files
of the default corpus stay as they are.

Deterministic: the same installed packages give the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

from bench.common import norm_words

APT = "sudo apt-get install -y debian-faq debian-reference-en debian-handbook developers-reference debian-policy maint-guide"
FAQ_TXT = Path("/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz")
HANDBOOK = Path("/usr/share/doc/debian-handbook/html/en-US")
# The distractor manuals that ship as PDF (gzipped or not), under the name they get in the corpus.
PDFS = {
    "debian-reference.pdf": Path("/usr/share/debian-reference/debian-reference.en.pdf"),
    "developers-reference.pdf": Path("/usr/share/developers-reference/developers-reference.pdf"),
    "debian-policy.pdf": Path("/usr/share/doc/debian-policy/policy.pdf.gz"),
    "fhs-3.0.pdf": Path("/usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz"),
    "maint-guide.pdf": Path("/usr/share/doc/maint-guide/maint-guide.en.pdf"),
}
# What --more adds.
MORE_APT = "sudo apt-get install -y installation-guide-amd64 debmake-doc debian-history harden-doc"
MORE_PDFS = {
    "installation-guide.pdf": Path("/usr/share/doc/installation-guide-amd64/en/install.en.pdf.gz"),
    "debmake-doc.pdf": Path("/usr/share/doc/debmake-doc/debmake-doc.en.pdf"),
    "project-history.pdf": Path("/usr/share/doc/debian-history/docs/project-history.en.pdf"),
}
SECURING = Path("/usr/share/doc/harden-doc/html/en-US")
# A text file is one "page" to ragtune; for the page count a printed page holds about this many characters.
CHARS_PER_PAGE = 3000
# An answer this short matches chunks by chance (the hit rule accepts a run as long as the whole context).
MIN_ANSWER_WORDS = 15

_HEADING = re.compile(r"^(\d+(?:\.\d+)+)\. (\S.*)$")  # "3.1.2. Will there be …" at column 0
_CHAPTER = re.compile(r"^Chapter \d+\. ")
_XREF = re.compile(r"((?:Section|Chapter) [\d.]*\d),\s+“[^”]*”", re.S)


class _Text(HTMLParser):
    """An HTML page's text, a line per block, without scripts, styles or the navigation bars."""

    BLOCKS = {"p", "div", "br", "li", "pre", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "table"}
    SKIP = {"script", "style", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag in self.SKIP or (tag in ("ul", "div") and cls.split()[:1] in (["docnav"], ["navheader"])):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP or (self.skip and tag in ("ul", "div") and self._closing_skip(tag)):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def _closing_skip(self, tag: str) -> bool:
        # Navigation bars hold no nested ul/div in these pages: the first close ends them.
        return True

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).split("\n"))
        return "\n".join(line for line in lines if line) + "\n"


def html_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.text()


def faq_sections(text: str) -> tuple[list[tuple[str, str]], str]:
    """The FAQ's (question, answer) pairs, and its body without the table of contents, the question headings
    and the question titles its cross-references quote."""
    lines = text.replace("\u00a0", " ").split("\n")
    start = next(i for i, line in enumerate(lines) if _CHAPTER.match(line))
    body: list[str] = []
    pairs: list[tuple[str, list[str]]] = []
    i = start
    while i < len(lines):
        m = _HEADING.match(lines[i])
        if not m:
            if pairs:
                pairs[-1][1].append(lines[i])
            body.append(lines[i])
            i += 1
            continue
        heading = [m.group(2)]
        i += 1
        while i < len(lines) and lines[i].strip() and not lines[i].startswith(" "):
            heading.append(lines[i].strip())
            i += 1
        title = " ".join(heading)
        if "?" in title:
            pairs.append((title, []))
        else:
            # Not a question ("16.3. Availability"): its heading stays, and the text under it answers nothing.
            pairs.append(("", []))
            body.append(f"{m.group(1)}. {title}")
    cleaned = _XREF.sub(r"\1", "\n".join(body))
    out = []
    for question, answer in pairs:
        words = " ".join(" ".join(answer).split())
        if question and len(words.split()) >= MIN_ANSWER_WORDS:
            out.append((question, _XREF.sub(r"\1", words)))
    return out, cleaned


def _pdf_pages_and_text(path: Path) -> tuple[int, str]:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return len(reader.pages), "\n".join(page.extract_text() or "" for page in reader.pages)


def _html_manual(src: Path, prefix: str, corpus: Path, texts: dict[str, str]) -> None:
    """Each page of the HTML manual in `src` but its table of contents as one text file, PREFIX-STEM.txt."""
    for page in sorted(src.glob("*.html")):
        if page.name == "index.html":  # the table of contents
            continue
        name = f"{prefix}-{page.stem}.txt"
        texts[name] = html_text(page)
        (corpus / name).write_text(texts[name], encoding="utf-8")


def build(out: Path, more: bool = False) -> dict[str, int]:
    missing = [str(p) for p in [FAQ_TXT, HANDBOOK, *PDFS.values()] if not p.exists()]
    if missing:
        raise SystemExit(f"large_corpus: {missing[0]} not found; install the manuals first: {APT}")
    missing = [str(p) for p in [SECURING, *MORE_PDFS.values()] if more and not p.exists()]
    if missing:
        raise SystemExit(f"large_corpus: {missing[0]} not found; install the manuals --more adds first: {MORE_APT}")
    corpus = out / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    corpus.mkdir(parents=True)
    pairs, faq_body = faq_sections(gzip.decompress(FAQ_TXT.read_bytes()).decode("utf-8"))
    (corpus / "debian-faq.txt").write_text(faq_body, encoding="utf-8")
    texts = {"debian-faq.txt": faq_body}
    _html_manual(HANDBOOK, "handbook", corpus, texts)
    if more:
        _html_manual(SECURING, "securing", corpus, texts)
    pdf_pages = 0
    for name, src in (PDFS | MORE_PDFS if more else PDFS).items():
        data = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
        (corpus / name).write_bytes(data)
        n, texts[name] = _pdf_pages_and_text(corpus / name)
        pdf_pages += n
    # No question may sit verbatim in what is indexed (an exact-match retriever would win trivially).
    haystack = " " + " ".join(" ".join(norm_words(t)) for t in texts.values()) + " "
    kept = [(q, a) for q, a in pairs if f" {' '.join(norm_words(q))} " not in haystack]
    with (out / "questions.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "contexts"])
        for q, a in kept:
            w.writerow([q, repr([a])])
    text_chars = sum(len(t) for name, t in texts.items() if name.endswith(".txt"))
    return {
        "documents": len(texts),
        "pdf_pages": pdf_pages,
        "text_pages": round(text_chars / CHARS_PER_PAGE),
        "questions": len(kept),
        "dropped_verbatim": len(pairs) - len(kept),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/h36-large"))
    ap.add_argument("--more", action="store_true", help="add four manuals, ~1,550 pages in all (see above)")
    args = ap.parse_args()
    n = build(args.out, more=args.more)
    print(
        f"large_corpus: {n['documents']} documents in {args.out / 'corpus'}, about "
        f"{n['pdf_pages'] + n['text_pages']} pages ({n['pdf_pages']} PDF pages, text of about {n['text_pages']} "
        f"more at {CHARS_PER_PAGE} characters a page); {n['questions']} questions in {args.out / 'questions.csv'} "
        f"({n['dropped_verbatim']} dropped: found verbatim in the corpus)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
