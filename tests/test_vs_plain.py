"""bench/vs_plain.py's plain pipeline, the contender ragtune is timed against end to end: it reads real PDF pages,
trains, and saves a model that loads (the tiny BERT stands in for MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.conftest import NIST_PDF


def test_the_plain_pipeline_trains_a_model_from_pdfs_and_saves_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    from pypdf import PdfReader, PdfWriter
    from sentence_transformers import SentenceTransformer

    from bench.vs_plain import plain_pipeline

    docs = tmp_path / "docs"
    docs.mkdir()
    writer = PdfWriter()
    for page in PdfReader(NIST_PDF).pages[10:16]:
        writer.add_page(page)
    writer.write(docs / NIST_PDF.name)
    hit5 = plain_pipeline(docs, tmp_path / "out", str(tiny_model_dir))
    assert 0.0 <= hit5 <= 1.0
    text = ["Confabulation is the production of confidently stated but false content."]
    before = SentenceTransformer(str(tiny_model_dir), device="cpu").encode(text)
    after = SentenceTransformer(str(tmp_path / "out" / "model"), device="cpu").encode(text)
    # One epoch of MNRL moved the weights: the saved model is the trained one, not the base.
    assert not np.allclose(before, after)
