"""bench/store_hybrid_agreement.py on a tiny run: its figures are shares, and its dense row proves the set-up.

The script compares Qdrant's side of an exported run with `ragtune.Retriever`. Asked for dense only, both
sides rank the same vectors, so anything below 1.000 there means the script (or the export) is broken.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runs import finished_tiny_run
from tests.test_search import write_pdfs

pytest.importorskip("qdrant_client", reason="pip install 'ragtune[qdrant]'")

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(?P<label>(dense|hybrid): .+?)\s+(?P<nums>(\d\.\d{3}\s+){3}\d\.\d{3})$")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    # One vector per chunk (passage_words 0): the run's own dense ranking is then the store's.
    root = tmp_path_factory.mktemp("agreement")
    return finished_tiny_run(root, write_pdfs(root / "docs"), tiny_model_dir, passage_words=0)


def agreement(run_dir: Path, *args: str) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.store_hybrid_agreement", str(run_dir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {}
    for line in out.stdout.splitlines():
        m = ROW.match(line.strip())
        if m:
            rows[m["label"]] = [float(x) for x in m["nums"].split()]
    return rows


def test_agreement_figures_are_shares_and_dense_agrees_exactly(run_dir: Path) -> None:
    before = sorted((p.relative_to(run_dir), p.stat().st_mtime_ns) for p in run_dir.rglob("*"))
    rows = agreement(run_dir)
    # 2 dense rows, 2 per fusion (rrf, dbsf), and ragtune's fusion of Qdrant's lists.
    assert len(rows) == 7, rows
    for label, (overlap, top1, hit_store, hit_ragtune) in rows.items():
        assert all(0.0 <= x <= 1.0 for x in (overlap, top1, hit_store, hit_ragtune)), label
    for label, (overlap, top1, hit_store, hit_ragtune) in rows.items():
        if label.startswith("dense"):
            # Same vectors on both sides (the run has no passages): the same top 5, the same hits.
            assert (overlap, top1) == (1.0, 1.0), label
            assert hit_store == hit_ragtune, label
    # The export's BM25 side is ragtune's BM25 (tests/test_stores.py): fused ragtune's way, the same ranking.
    minmax = next(v for k, v in rows.items() if k.startswith("hybrid: min-max"))
    assert minmax[0] >= 0.95, minmax
    # The run folder is only read.
    assert sorted((p.relative_to(run_dir), p.stat().st_mtime_ns) for p in run_dir.rglob("*")) == before
