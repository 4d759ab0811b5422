"""Questions analysts wrote over financial filings: FinanceBench (Islam et al. 2023, patronus-ai/financebench),
as a corpus and a `--bench` CSV.

    python -m bench.financebench FINANCEBENCH_DIR --out DIR [--min-questions 3] [--max-pages 130]

FINANCEBENCH_DIR is a checkout of https://github.com/patronus-ai/financebench (its data/ and pdfs/). Each of its 150
open questions was written by a financial analyst about one filing (10-K, 10-Q, 8-K or earnings release) and cites
the evidence it needs, quoted from the filing's pages. The script takes the filings with at least --min-questions
questions and at most --max-pages pages whose PDF the checkout holds, copies them to DIR/corpus/, and writes
DIR/questions.csv (question, contexts: each question's evidence, the format of ../shared/bench), so that

    python -m ragtune run DIR/corpus --out RUN && python -m bench.shared_bench RUN --bench DIR/questions.csv

scores on them, every filing a distractor for the others' questions. ragtune never trains on these questions or
their evidence, and ships neither (FinanceBench's licence is its own).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("financebench", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--min-questions", type=int, default=3)
    ap.add_argument("--max-pages", type=int, default=130)
    args = ap.parse_args()
    source = args.financebench / "data" / "financebench_open_source.jsonl"
    if not source.is_file():
        print(f"financebench: {source} not found; pass a checkout of patronus-ai/financebench", file=sys.stderr)
        return 2
    import pypdf

    rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    per_doc = Counter(r["doc_name"] for r in rows)
    chosen = []
    for name, n in sorted(per_doc.items()):
        pdf = args.financebench / "pdfs" / f"{name}.pdf"
        if n < args.min_questions or not pdf.is_file() or pdf.stat().st_size == 0:
            continue
        pages = len(pypdf.PdfReader(pdf).pages)
        if pages <= args.max_pages:
            chosen.append((name, n, pages))
    corpus = args.out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, _, _ in chosen:
        shutil.copyfile(args.financebench / "pdfs" / f"{name}.pdf", corpus / f"{name}.pdf")
    names = {name for name, _, _ in chosen}
    with (args.out / "questions.csv").open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["question", "contexts", "doc_name", "question_type"])
        for r in rows:
            if r["doc_name"] in names:
                contexts = [e["evidence_text"] for e in r["evidence"] if e["evidence_text"].strip()]
                out.writerow([r["question"], repr(contexts), r["doc_name"], r["question_type"]])
    for name, n, pages in chosen:
        print(f"{name}: {pages} pages, {n} questions")
    print(
        f"financebench: {len(chosen)} filings, {sum(p for _, _, p in chosen)} pages, "
        f"{sum(n for _, n, _ in chosen)} questions -> {corpus}, {args.out / 'questions.csv'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
