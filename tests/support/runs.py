"""A quick `ragtune run` over real prose: the flags, the documents and the argv that the CLI tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ragtune import Config, Pipeline
from ragtune.records import Page

# Small and quick: one optimiser step, no validation or weight mixing.
FAST = ["--max-steps", "1", "--batch-size", "4", "--device", "cpu", "--val-fraction", "0", "--no-wise"]


def good_docs(folder: Path, nist_pages: list[Page]) -> Path:
    """Three .txt files of NIST prose (about 2,900 words): enough to train on."""
    folder.mkdir(parents=True, exist_ok=True)
    text = {p.page: p.text for p in nist_pages}
    for i, numbers in enumerate([(5, 6), (7, 8), (9, 10)]):
        (folder / f"part{i}.txt").write_text("\n\n".join(text[n] for n in numbers), encoding="utf-8")
    return folder


def run_args(docs: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    return ["run", str(docs), "--out", str(out), "--base-model", str(model_dir), *FAST, *extra]


def pairs_args(pairs_file: Path, out: Path, model_dir: Path, *extra: str) -> list[str]:
    """`ragtune pairs` arguments: one training step of the model on the CPU (`extra` adds flags, or overrides)."""
    return [
        "pairs",
        str(pairs_file),
        "--out",
        str(out),
        "--base-model",
        str(model_dir),
        "--max-steps",
        "1",
        "--device",
        "cpu",
        *extra,
    ]


def training_args(docs: Path, out: Path, model_dir: Path, steps: int, *extra: str) -> list[str]:
    """`ragtune run` arguments for a tiny model that trains `steps` steps on 64-token chunks with no early stop:
    long enough to interrupt, as the resume and interruption tests do."""
    return [
        *("run", str(docs), "--out", str(out), "--base-model", str(model_dir), "--max-steps", str(steps)),
        *("--batch-size", "4", "--chunk-tokens", "64", "--chunk-overlap", "8", "--device", "cpu", "--patience", "0"),
        *extra,
    ]


def finished_tiny_run(root: Path, docs: Path, model_dir: Path, **changes: Any) -> Path:
    """A finished tiny run in ROOT/run (2 training steps, 64-token chunks), HF_HOME kept inside ROOT.

    No validation by default: it would keep the base weights of the tiny model, and the tests that
    share such a run need a tuned model that differs from the base.
    """
    settings: dict[str, Any] = {
        "max_steps": 2,
        "batch_size": 4,
        "chunk_tokens": 64,
        "chunk_overlap": 8,
        "device": "cpu",
        "val_fraction": 0,
    } | changes
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        cfg = Config(docs=docs, out=root / "run", base_model=str(model_dir), **settings)
        Pipeline(cfg).run()
    return cfg.out
