"""End to end with the real all-MiniLM-L6-v2 on a real PDF, a few training steps."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NIST_PDF, REPO

pytestmark = pytest.mark.e2e

METRIC_KEYS = {"hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"}


# The first 20 of NIST AI 600-1's 64 pages, written back as a PDF: the real document's layout and prose (its
# confabulation section included), at a third of the chunks to generate from and encode in every test here.
E2E_PAGES = 20


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    from pypdf import PdfReader, PdfWriter

    docs = tmp_path_factory.mktemp("docs")
    writer = PdfWriter()
    for page in PdfReader(NIST_PDF).pages[:E2E_PAGES]:
        writer.add_page(page)
    writer.write(docs / NIST_PDF.name)
    out = tmp_path_factory.mktemp("run") / "demo"
    cmd = [
        sys.executable,
        "-m",
        "ragtune",
        "run",
        str(docs),
        "--out",
        str(out),
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--validations",
        "1",
        # Passages without overlap: a third less to encode than the default stride, and still passages.
        "--passage-stride",
        "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, out


def test_cli_run_prints_every_stage_and_the_table(e2e_run) -> None:
    proc, _ = e2e_run
    for i, stage in enumerate(("extract", "chunk", "theme", "generate", "split", "train", "evaluate", "save"), 1):
        assert f"[{i}/8] {stage}" in proc.stderr
    assert "Traceback" not in proc.stderr
    header = next(line for line in proc.stdout.splitlines() if "hit@1" in line)
    assert header.split() == ["hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"]
    assert any(line.startswith("fine-tuned") for line in proc.stdout.splitlines())


def test_run_dir_holds_a_loadable_model_and_metrics(e2e_run) -> None:
    from sentence_transformers import SentenceTransformer

    _, out = e2e_run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("base", "fine_tuned", "bm25"):
        assert set(metrics[key]) == METRIC_KEYS
        assert all(0.0 <= v <= 1.0 for v in metrics[key].values())
    assert isinstance(metrics["improved"], bool)
    assert (out / "model" / "model.safetensors").exists()
    card = (out / "model" / "README.md").read_text()
    assert card.startswith("---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n")
    assert str(out) not in card and "/tmp" not in card
    model = SentenceTransformer(str(out / "model"), device="cpu")
    chunks = [json.loads(line) for line in (out / "index" / "chunks.jsonl").read_text().splitlines()]
    import faiss
    import numpy as np

    index = faiss.read_index(str(out / "index" / "index.faiss"))
    owner = np.load(out / "index" / "rows.npy")
    # A row per chunk first, then a row per passage, each mapped back to its chunk.
    assert index.ntotal == len(owner) > len(chunks)
    assert owner[: len(chunks)].tolist() == list(range(len(chunks)))
    assert set(owner.tolist()) == set(range(len(chunks)))
    # The saved index answers a question about a passage with that passage's chunk, as a plain FAISS user reads it.
    target = next(c for c in chunks if "confabulation" in c["text"].lower())
    query = model.encode([target["text"]], normalize_embeddings=True)
    _, ids = index.search(query, 1)
    assert chunks[owner[ids[0][0]]]["id"] == target["id"]


def test_rerun_reuses_every_stage(e2e_run) -> None:
    _, out = e2e_run
    docs = Path(json.loads((out / "config.json").read_text())["docs"])
    cmd = [
        sys.executable,
        "-m",
        "ragtune",
        "run",
        str(docs),
        "--out",
        str(out),
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--validations",
        "1",
        "--passage-stride",
        "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("unchanged, reused") == 8


def test_push_dry_run_lists_the_model_without_network(e2e_run) -> None:
    _, out = e2e_run
    proc = subprocess.run(
        [sys.executable, "-m", "ragtune", "push", str(out), "someone/ragtune-test", "--dry-run"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"HF_ENDPOINT": "http://127.0.0.1:9", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "model.safetensors" in proc.stdout and "README.md" in proc.stdout


def test_guard_marks_a_harmful_run_not_improved_and_push_refuses_it(e2e_run, tmp_path: Path) -> None:
    # The template questions with a learning rate 100x too high wreck the model;
    # validation and the mix with the base are off, so the wrecked model is what gets saved.
    _, first = e2e_run
    out = tmp_path / "harmful"
    shutil.copytree(first, out)
    docs = json.loads((out / "config.json").read_text())["docs"]
    cmd = [
        sys.executable,
        "-m",
        "ragtune",
        "run",
        docs,
        "--out",
        str(out),
        "--generator",
        "template",
        "--lr",
        "5e-3",
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--val-fraction",
        "0",
        "--no-wise",
        "--passage-stride",
        "0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["improved"] is False
    assert metrics["fine_tuned"]["mrr@10"] < metrics["base"]["mrr@10"]
    assert "NOT IMPROVED" in proc.stdout
    assert "NOT IMPROVED" in (out / "report.md").read_text()
    push = subprocess.run(
        [sys.executable, "-m", "ragtune", "push", str(out), "someone/harmful"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_unused", "PATH": ""},
    )
    assert push.returncode == 1
    assert push.stderr.strip().splitlines() == [
        "ragtune: error: not pushing: metrics.json does not show the fine-tuned model beating the base model "
        "(improved=false); pass --force to push anyway"
    ]
