"""The walkthrough notebook runs top to bottom in a real Jupyter kernel (nbclient), on the tiny model and one
PDF to stay fast, and shows its plots; the committed notebook keeps the outputs of a real MiniLM run."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.conftest import NIST_PDF, REPO

NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"


def outputs(cell: nbformat.NotebookNode) -> tuple[str, list[bytes]]:
    """A code cell's text and its PNG images."""
    text, images = [], []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text.append(out["text"])
        data = out.get("data", {})
        text.append(data.get("text/plain", ""))
        if "image/png" in data:
            images.append(base64.b64decode(data["image/png"]))
    return "".join(text), images


def test_committed_notebook_keeps_its_outputs_and_plots() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "run the notebook and save it with its outputs"
    text = "".join(outputs(c)[0] for c in code)
    images = [img for c in code for img in outputs(c)[1]]
    # The evaluate stage's line; the metrics table itself was printed as JSON when the outputs were saved.
    assert "[7/8] evaluate" in text and "hit@5" in text
    assert len(images) >= 2 and all(img[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    # No error output was saved, and no path of the machine it ran on.
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text


def test_walkthrough_notebook_runs_in_a_kernel(tmp_path: Path, tiny_model_dir: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(NIST_PDF, docs)
    # Same cells as the notebook, on smaller inputs: the tiny model instead of MiniLM (as papermill injects).
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(
        first + 1,
        nbformat.v4.new_code_cell(
            f"cfg = cfg.replace(docs=Path({str(docs)!r}), out=Path({str(tmp_path / 'run')!r}), "
            f"base_model={str(tiny_model_dir)!r}, max_steps=2, batch_size=4, chunk_tokens=96)"
        ),
    )
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "".join(outputs(c)[0] for c in code)
    images = [img for c in code for img in outputs(c)[1]]
    # RunResult.table(): a row per retriever, a column per metric.
    assert re.search(r"^fine-tuned +0\.\d{3} ", text, flags=re.MULTILINE) and "hit@5" in text
    # Other libraries' progress bars are quiet; ragtune's stage lines stay.
    assert "it/s]" not in text and "[8/8] save" in text
    assert " -> nist_ai_600_1.pdf p(" in text
    # The Retriever cell and the plain-FAISS cell each print three chunks; the plots cell shows the PNGs.
    assert text.count("nist_ai_600_1.pdf p(") >= 5 + 3 + 3
    assert len(images) >= 2 and images[0] == (tmp_path / "run" / "plots" / "retrievers.png").read_bytes()
