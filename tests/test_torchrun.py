"""`torchrun --nproc_per_node=2 -m ragtune run`: two CPU processes (gloo), rank 0 alone writes the run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ragtune.records import Page
from tests.test_pipeline import write_docs


def test_run_under_torchrun_trains_with_two_processes(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    docs, out = write_docs(tmp_path / "docs", nist_pages), tmp_path / "run"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "ragtune",
            "run",
            str(docs),
            "--out",
            str(out),
            "--base-model",
            str(tiny_model_dir),
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--chunk-tokens",
            "64",
            "--chunk-overlap",
            "8",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    # Rank 0 alone ran the stages; had rank 1 not joined training, DDP would have hung until the timeout.
    # (Counting the stages' own lines: progress lines share their prefix.)
    stage_lines = [line for line in log.splitlines() if line.startswith("[") and ("s  " in line or "reused" in line)]
    assert sum(line.startswith("[1/8] extract") for line in stage_lines) == 1
    assert sum(line.startswith("[6/8] train") and "steps on cpu" in line for line in stage_lines) == 1
    assert "2 steps on cpu" in log
    # Both ranks return rank 0's result, so the CLI prints its table twice.
    assert log.count("Retrieval on ") == 2
    assert (out / "model" / "config.json").is_file() and (out / "index" / "index.faiss").is_file()
    assert not (out / "work" / "model.tmp").exists() and not (out / "work" / "checkpoints").exists()

    from sentence_transformers import SentenceTransformer

    vec = SentenceTransformer(str(out / "model"), device="cpu").encode(["zero trust"])
    assert vec.shape == (1, 32)
