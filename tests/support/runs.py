"""A quick `ragtune run` over real prose: the flags, the documents and the argv that the CLI tests share."""

from __future__ import annotations

from pathlib import Path

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
