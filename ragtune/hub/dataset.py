"""The run's question pairs as a Hub dataset: its files and card, and the model card that names it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import HubError
from ..records import Chunk, Pair, RunDirError, read_jsonl
from ..repo_ids import dataset_repo_id
from ..runfiles import RunFiles


def dataset_files(run_dir: Path, repo_id: str) -> dict[str, bytes]:
    """The pairs dataset repo's files: README.md, train.jsonl and eval.jsonl, as bytes.

    Each JSONL line resolves a pair's chunk id to its text, so the dataset stands alone:
    {"query": "…", "chunk_id": "c-1a2b…", "chunk_text": "…", "source": "a.pdf", "pages": [3], "kind": "keyphrase"}
    """
    run_dir = Path(run_dir)
    files = RunFiles(run_dir)
    paths = (files.chunks, files.split("train"), files.split("test"))
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise HubError(
            f"--with-data needs {', '.join(missing)} in {run_dir}: rerun `ragtune run` into it, "
            "or push without --with-data"
        )
    try:
        chunks = {c.id: c for c in read_jsonl(files.chunks, Chunk)}
        # The dataset's split names (eval.jsonl) as published so far; the run names its held-out side "test".
        splits = {s: read_jsonl(files.split(side), Pair) for s, side in (("train", "train"), ("eval", "test"))}
    except RunDirError as e:
        raise HubError(f"cannot push the pairs: {e}") from None
    out: dict[str, bytes] = {}
    for split, pairs in splits.items():
        dangling = sorted({p.chunk_id for p in pairs} - chunks.keys())
        if dangling:
            raise HubError(
                f"cannot push the pairs: {files.split('test' if split == 'eval' else split)} points at "
                f"{len(dangling)} chunk id(s) missing from chunks.jsonl (e.g. {dangling[0]!r}); "
                f"rerun `ragtune run` into {run_dir}"
            )
        rows = [
            {
                "query": p.query,
                "chunk_id": p.chunk_id,
                "chunk_text": chunks[p.chunk_id].text,
                "source": chunks[p.chunk_id].source,
                "pages": list(chunks[p.chunk_id].pages),
                "kind": p.kind,
            }
            for p in pairs
        ]
        out[f"{split}.jsonl"] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    readme = _dataset_card(repo_id, splits, sorted({c.source for c in chunks.values()}))
    return {"README.md": readme.encode(), **out}


def _size_category(n: int) -> str:
    """The Hub's size_categories bucket for `n` rows.

    >>> _size_category(999), _size_category(1000), _size_category(250_000)
    ('n<1K', '1K<n<10K', '100K<n<1M')
    """
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return label
    return "1M<n<10M"


def _dataset_card(repo_id: str, splits: dict[str, list], sources: list[str]) -> str:
    """The pairs dataset's README: front matter the Hub reads, then what the rows are."""
    generators = sorted({p.generator for pairs in splits.values() for p in pairs if p.generator})
    by = f"ragtune's `{'`, `'.join(generators)}` generator" if generators else "ragtune's generator"
    counts = "\n".join(f"| {s} | {len(pairs)} | {len({p.chunk_id for p in pairs})} |" for s, pairs in splits.items())
    return f"""---
task_categories:
- sentence-similarity
- text-retrieval
tags:
- ragtune
- synthetic
size_categories:
- {_size_category(sum(len(p) for p in splits.values()))}
configs:
- config_name: default
  data_files:
  - split: train
    path: train.jsonl
  - split: eval
    path: eval.jsonl
---

# {dataset_repo_id(repo_id)}

Synthetic questions written by {by} over the source documents listed below, each paired
with the chunk of text it should retrieve. They fine-tuned and evaluated the embedding model
[{repo_id}](https://huggingface.co/{repo_id}); the eval questions are about chunks it never trained on.

Source documents: {", ".join(sources) or "(none)"}

| split | questions | chunks |
|---|---:|---:|
{counts}

Fields: `query`, `chunk_id`, `chunk_text`, `source`, `pages` (1-based page numbers), `kind` (question style).
"""


def card_with_dataset(card: str, dataset_id: str) -> str:
    """The model card with `dataset_id` listed under `datasets:` in its YAML front matter.

    >>> print(card_with_dataset("---\\nlibrary_name: x\\n---\\n# m\\n", "alice/m-pairs"), end="")
    ---
    datasets:
    - alice/m-pairs
    library_name: x
    ---
    # m
    """
    import yaml

    match = re.match(r"---\n(.*?)^---[ \t]*\n", card, re.S | re.M)
    if match is None:
        return f"---\ndatasets:\n- {dataset_id}\n---\n" + card
    front = match[1]
    try:
        meta = yaml.safe_load(front) or {}
    except yaml.YAMLError:
        raise HubError(
            "the model card's YAML front matter does not parse; fix model/README.md or push without --with-data"
        ) from None
    existing = meta.get("datasets") if isinstance(meta, dict) else None
    listed = [existing] if isinstance(existing, str) else list(existing or [])
    # Drop a top-level datasets: block (inline or as a list), then write the merged list first.
    front = re.sub(r"^datasets:[^\n]*\n(?:[ \t-][^\n]*\n)*", "", front, flags=re.M)
    listed += [dataset_id] if dataset_id not in listed else []
    block = "datasets:\n" + "".join(f"- {d}\n" for d in listed)
    return "---\n" + block + front + card[match.end(1) :]
