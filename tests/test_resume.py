"""A real training run killed with SIGTERM stops cleanly with a checkpoint, and the same command resumes it;
a checkpoint cut off mid-write or without weights is never resumed from."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_pipeline import Recorder, full_disk_at_model_save, tiny_config, write_docs

from ragtune import Config, Pipeline
from ragtune.errors import DiskFullError
from ragtune.records import Page
from tests.support.runs import training_args
from tests.support.signals import ragtune_env, signal_when

STEPS = 60


def _command(docs: Path, out: Path, model_dir: Path) -> list[str]:
    return [sys.executable, "-m", "ragtune", *training_args(docs, out, model_dir, STEPS)]


def _env(tmp_path: Path) -> dict[str, str]:
    return ragtune_env(tmp_path)


def test_sigterm_during_training_saves_a_checkpoint_and_the_rerun_resumes(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    docs = write_docs(tmp_path / "docs", nist_pages)
    out = tmp_path / "run"
    cmd = _command(docs, out, tiny_model_dir)
    # The first progress line means the Trainer is stepping.
    code, err = signal_when(
        cmd,
        _env(tmp_path),
        tmp_path,
        signal.SIGTERM,
        lambda line: line.startswith("[6/8] train") and " steps, " in line,
    )
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("ragtune: interrupted"), err
    checkpoints = sorted((out / "work" / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
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
    train = json.loads((out / "work" / "manifest.json").read_text())["stages"]["train"]
    assert train["steps"] == STEPS and train["resumed_at"] == stopped_at
    assert (out / "model" / "model.safetensors").is_file() and not (out / "work" / "checkpoints").exists()


# --- damaged checkpoints ---------------------------------------------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list[Page]) -> Config:
    """A run whose training finished with checkpoints at steps 2 and 4 of 4, and whose final model save failed."""
    root = tmp_path_factory.mktemp("stopped")
    cfg = tiny_config(write_docs(root / "docs", nist_pages), root / "run", tiny_model_dir)
    cfg = cfg.replace(max_steps=4, evals=2, patience=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        full_disk_at_model_save(mp)
        with pytest.raises(DiskFullError):
            Pipeline(cfg).run()
    assert sorted(p.name for p in (cfg.out / "work" / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    return cfg


def _copy(cfg: Config, tmp_path: Path) -> Config:
    out = tmp_path / cfg.out.name
    shutil.copytree(cfg.out, out)
    return cfg.replace(out=out)


@pytest.mark.parametrize(
    "damage, note",
    [
        # Killed while the Trainer was writing it: trainer_state.json, and the completion mark, never came.
        (
            {"checkpoint-4": ["trainer_state.json", "ragtune_checkpoint.json"]},
            "checkpoint-4 cannot be resumed from: it was cut off mid-write (no ragtune_checkpoint.json)",
        ),
        # A checkpoint without weights (a rotation killed half way through deleting it).
        (
            {"checkpoint-4": ["model.safetensors"]},
            "checkpoint-4 cannot be resumed from: model.safetensors missing or cut short",
        ),
    ],
    ids=["cut-off", "no-weights"],
)
def test_incomplete_checkpoint_is_skipped_for_the_previous_complete_one(
    stopped: Config, tmp_path: Path, damage: dict[str, list[str]], note: str
) -> None:
    cfg = _copy(stopped, tmp_path)
    for folder, names in damage.items():
        for name in names:
            (cfg.out / "work" / "checkpoints" / folder / name).unlink()
    rec = Recorder()
    Pipeline(cfg, rec).run()
    assert rec.notes == [f"{note}; resuming from checkpoint-2"]
    assert [done for done, _ in rec.progress["train"]] == [3, 4]
    train = json.loads((cfg.out / "work" / "manifest.json").read_text())["stages"]["train"]
    assert train["steps"] == 4 and train["resumed_at"] == 2
    assert (cfg.out / "model" / "model.safetensors").is_file() and not (cfg.out / "work" / "checkpoints").exists()


def test_no_complete_checkpoint_starts_the_stage_again(stopped: Config, tmp_path: Path) -> None:
    cfg = _copy(stopped, tmp_path)
    weights = cfg.out / "work" / "checkpoints" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # cut short
    (cfg.out / "work" / "checkpoints" / "checkpoint-4" / "trainer_state.json").unlink()
    rec = Recorder()
    Pipeline(cfg, rec).run()
    assert rec.notes == [
        "checkpoint-4 cannot be resumed from: it was cut off mid-write (no trainer_state.json); training starts again",
        "checkpoint-2 cannot be resumed from: model.safetensors missing or cut short; training starts again",
    ]
    assert [done for done, _ in rec.progress["train"]][-1] == 4
    train = json.loads((cfg.out / "work" / "manifest.json").read_text())["stages"]["train"]
    assert train["steps"] == 4 and train["resumed_at"] is None
