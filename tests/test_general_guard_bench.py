"""bench/general_guard.py on a finished run's files: both models on the shipped general set, and what the run's
metrics.json recorded of the guard, under the names the guard writes today and those of older runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ragtune.records import Chunk, write_jsonl
from ragtune.runfiles import RunFiles


def _run(tmp_path: Path, tiny_model_dir: Path, general: dict | None) -> Path:
    run = tmp_path / "run"
    files = RunFiles(run)
    files.work.mkdir(parents=True)
    files.config.write_text(json.dumps({"base_model": str(tiny_model_dir), "seed": 0}))
    write_jsonl(
        files.chunks, [Chunk(f"c{i}", "d.pdf", (1,), f"zero trust policy number {i}", 6) for i in range(5)], Chunk
    )
    shutil.copytree(tiny_model_dir, files.model)
    if general is not None:
        files.metrics.write_text(json.dumps({"general": general}))
    return run


@pytest.mark.parametrize("shipped_key", ["fine_tuned", "tuned"])
def test_it_reports_both_models_and_the_guard_the_run_recorded(tmp_path, tiny_model_dir, capsys, shipped_key) -> None:
    from bench.general_guard import report
    from ragtune.training.forgetting import load_general_set

    entry = {"fired": True, "acted": True, "kept": 0.5, shipped_key: {"hit@5": 0.9, "mrr@10": 0.812}}
    report(_run(tmp_path, tiny_model_dir, entry), resamples=50)
    out = capsys.readouterr().out
    n = len(load_general_set().queries)
    assert f"{n} general questions over {len(load_general_set().ids) + 5} passages" in out
    # The model folder is a copy of the base: nothing moved.
    assert "MRR@10 change +0.0000" in out and "0 questions ranked higher, 0 lower" in out
    assert "fired True, acted True, kept 50% of the change; shipped MRR@10 0.812" in out


def test_a_run_without_a_guard_entry_says_so(tmp_path, tiny_model_dir, capsys) -> None:
    from bench.general_guard import report

    report(_run(tmp_path, tiny_model_dir, None), resamples=10)
    assert "no 'general' entry" in capsys.readouterr().out
