"""The walkthrough notebook runs top to bottom (on the tiny model and one PDF, to stay fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import NIST_PDF, REPO

NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"


def test_walkthrough_notebook_runs(tmp_path: Path, tiny_model_dir: Path, capsys) -> None:
    nb = json.loads(NOTEBOOK.read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(cells) >= 3
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(NIST_PDF, docs)
    namespace: dict = {}
    exec(compile(cells[0], "cell-0", "exec"), namespace)
    # Same API calls as the notebook, on smaller inputs: the tiny model instead of MiniLM.
    namespace["cfg"] = namespace["cfg"].replace(
        docs=docs, out=tmp_path / "run", base_model=str(tiny_model_dir), max_steps=2, batch_size=4, chunk_tokens=96
    )
    for i, src in enumerate(cells[1:], 1):
        exec(compile(src, f"cell-{i}", "exec"), namespace)
    out = capsys.readouterr().out
    assert '"after"' in out and "hit@5" in out
    assert " -> nist_ai_600_1.pdf p(" in out
    # The Retriever cell and the plain-FAISS cell each print three chunks.
    assert out.count("nist_ai_600_1.pdf p(") >= 5 + 3 + 3
    assert len(namespace["best"]) == 3 and len(set(namespace["best"])) == 3
