"""bench.financebench: a FinanceBench checkout -> the filings with enough questions, and their questions in the
format bench.shared_bench scores, each finding its evidence in the filing's chunks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import financebench
from bench.common import chars1000_chunks, load_bench, relevant_sets
from ragtune.extract import extract_folder
from tests.support.statements import ROWS, YEARS, filing_pdf


def _evidence() -> str:
    """The statement as a filing's page quotes it (FinanceBench's evidence_text)."""
    lines = ["Years ended " + " ".join(YEARS)]
    lines += [" ".join([label, *(f"$ {f}" for f in figures)]) for label, figures in ROWS]
    return "\n".join(lines)


def _record(doc: str, question: str, evidence: str) -> dict:
    page = {"evidence_text": evidence, "doc_name": doc, "evidence_page_num": 1, "evidence_text_full_page": evidence}
    return {"doc_name": doc, "question": question, "question_type": "metrics-generated", "evidence": [page]}


def test_filings_with_enough_questions_become_a_corpus_and_a_bench_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "financebench"
    (checkout / "data").mkdir(parents=True)
    (checkout / "pdfs").mkdir()
    (checkout / "pdfs" / "ACME_2022_10K.pdf").write_bytes(filing_pdf())
    (checkout / "pdfs" / "SOLO_2022_10K.pdf").write_bytes(filing_pdf())
    (checkout / "pdfs" / "GONE_2022_10K.pdf").write_bytes(b"")  # a file the checkout did not fetch
    records = [_record("ACME_2022_10K", f"What was ACME's {what} in FY2022?", _evidence()) for what in "abc"]
    records += [_record("SOLO_2022_10K", "What was SOLO's net income?", _evidence())]
    records += [_record("GONE_2022_10K", f"Question {i}?", _evidence()) for i in range(3)]
    (checkout / "data" / "financebench_open_source.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    out = tmp_path / "set"
    monkeypatch.setattr(sys, "argv", ["financebench", str(checkout), "--out", str(out)])
    assert financebench.main() == 0
    # Only the filing with three questions and a PDF is taken.
    assert sorted(p.name for p in (out / "corpus").iterdir()) == ["ACME_2022_10K.pdf"]
    bench = load_bench(out / "questions.csv")
    assert [q for q, _ in bench] == [
        "What was ACME's a in FY2022?",
        "What was ACME's b in FY2022?",
        "What was ACME's c in FY2022?",
    ]
    # The evidence finds the statement's chunks under bench/common.py's relevance rule, and not the prose.
    chunks = chars1000_chunks(extract_folder(out / "corpus").pages)
    relevant = relevant_sets(chunks, bench)
    by_id = {c.id: c for c in chunks}
    assert all(relevant) and all("Total net sales" in by_id[cid].text for r in relevant for cid in r)


def test_a_folder_that_is_no_checkout_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["financebench", str(tmp_path), "--out", str(tmp_path / "set")])
    assert financebench.main() == 2
    err = capsys.readouterr().err
    assert "patronus-ai/financebench" in err and err.count("\n") == 1
