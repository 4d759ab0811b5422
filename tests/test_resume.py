"""A real training run killed with SIGTERM stops cleanly with a checkpoint, and the same command resumes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from ragtune.records import Page
from test_pipeline import write_docs

REPO = Path(__file__).resolve().parents[1]
STEPS = 60


def _command(docs: Path, out: Path, model_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ragtune", "run", str(docs), "--out", str(out), "--base-model", str(model_dir),
            "--max-steps", str(STEPS), "--batch-size", "4", "--chunk-tokens", "64", "--chunk-overlap", "8",
            "--device", "cpu", "--patience", "0"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_sigterm_during_training_saves_a_checkpoint_and_the_rerun_resumes(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    docs = write_docs(tmp_path / "docs", nist_pages)
    out = tmp_path / "run"
    cmd = _command(docs, out, tiny_model_dir)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
                            cwd=tmp_path)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        # The first progress line means the Trainer is stepping.
        if "train     step" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    code = proc.wait(timeout=120)
    err = "".join(seen) + rest
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("ragtune: interrupted"), err
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, err
    stopped_at = int(checkpoints[-1].name.split("-")[1])
    assert 0 < stopped_at < STEPS
    assert not (out / "model").exists() and not (out / "metrics.json").exists()

    again = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"(resumed at step {stopped_at})" in again.stderr
    # The stages before training were reused, not redone.
    for stage in ("extract", "chunk", "generate", "split"):
        assert any(stage in line and "unchanged, reused" in line for line in again.stderr.splitlines()), stage
    train = json.loads((out / "manifest.json").read_text())["stages"]["train"]
    assert train["steps"] == STEPS and train["resumed_at"] == stopped_at
    assert (out / "model" / "model.safetensors").is_file() and not (out / "checkpoints").exists()
