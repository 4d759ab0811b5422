"""LlamaIndex's `EmbeddingQAFinetuneDataset`, both ways: a run's held-out (or training) questions go out,
and any labelled set comes back in to be scored, as this JSON:

    {"queries": {qid: text}, "corpus": {node_id: text}, "relevant_docs": {qid: [node_id]}, "mode": "text"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import DatasetError
from .fileio import read_json, write_json
from .metrics import MRR_AT, model_rankings, rank_metrics, rounded
from .models import load_model, pick_device, resolve_base_model
from .names import BASE, EVALUATION_SET, FINE_TUNED, upgrade_metrics
from .records import Chunk, Pair, RunDirError, read_jsonl
from .rundir import check_out_file
from .runfiles import RunFiles
from .search import _require, base_model_of

DATASET_KS = (1, 3, 5, 10)
# The keys of a LlamaIndex EmbeddingQAFinetuneDataset JSON, as `export --llamaindex` writes it.
LLAMAINDEX_KEYS = frozenset({"queries", "corpus", "relevant_docs"})


@dataclass(frozen=True)
class Export:
    path: Path
    split: str
    n_queries: int
    n_corpus: int


# The side of the run's split (RunFiles.split) each --split value reads.
SPLIT_SIDES = {"test": "test", "train": "train"}


def export_llamaindex(run_dir: Path, path: Path, split: str = "test") -> Export:
    """Write a split's pairs as a LlamaIndex dataset; query ids are "{split}-{line}" in the split's file.

    The test corpus is every chunk, so metrics on it match ragtune's own evaluation;
    the train corpus is only the chunks its questions point at, so no held-out text leaks into it.
    "eval", ragtune 0.3's name of the test split, still reads it.
    """
    split = "test" if split == "eval" else split
    if split not in SPLIT_SIDES:
        raise ValueError(f"split must be 'test' or 'train', not {split!r}")
    run_dir = Path(run_dir)
    # Overwrite only an earlier export (or another dataset of its kind), never a file of the user's.
    check_out_file(Path(path), "--llamaindex", LLAMAINDEX_KEYS)
    files = RunFiles(run_dir)
    _require(run_dir, [p.relative_to(run_dir).as_posix() for p in (files.chunks, files.split(SPLIT_SIDES[split]))])
    chunks = read_jsonl(files.chunks, Chunk)
    pairs = read_jsonl(files.split(SPLIT_SIDES[split]), Pair)
    used = {p.chunk_id for p in pairs}
    corpus = {c.id: c.text for c in chunks if split == "test" or c.id in used}
    if not used <= corpus.keys():
        raise RunDirError(
            f"{files.split(SPLIT_SIDES[split])} points at chunks missing from chunks.jsonl; rerun `ragtune run` into this folder"
        )
    queries = {f"{split}-{n}": p.query for n, p in enumerate(pairs)}
    relevant = {f"{split}-{n}": [p.chunk_id] for n, p in enumerate(pairs)}
    write_json(Path(path), {"queries": queries, "corpus": corpus, "relevant_docs": relevant, "mode": "text"})
    return Export(Path(path), split, len(queries), len(corpus))


def _count(n: int, noun: str, plural: str = "") -> str:
    """A count with its noun, for one-line errors.

    >>> _count(1, "id"), _count(2, "id"), _count(0, "query", "queries")
    ('1 id', '2 ids', '0 queries')
    """
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _str_map(obj: Any, key: str, path: Path) -> dict[str, str]:
    value = obj[key]
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise DatasetError(f'{path}: "{key}" must be an object mapping ids to strings')
    return value


def load_llamaindex_dataset(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]]]:
    """(queries, corpus, relevant_docs) from an EmbeddingQAFinetuneDataset JSON file, checked.

    >>> load_llamaindex_dataset(Path("qa.json"))  # doctest: +SKIP
    ({'q1': 'what is zero trust?'}, {'n1': 'Zero trust …'}, {'q1': ['n1']})
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text; expected LlamaIndex EmbeddingQAFinetuneDataset JSON") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    keys = ("queries", "corpus", "relevant_docs")
    if not isinstance(obj, dict) or not all(k in obj for k in keys):
        raise DatasetError(
            f"{path} is not a LlamaIndex EmbeddingQAFinetuneDataset: "
            'expected an object with "queries", "corpus" and "relevant_docs"'
        )
    if obj.get("mode", "text") != "text":
        raise DatasetError(f'{path} has mode {obj["mode"]!r}; only text datasets ("mode": "text") are supported')
    queries, corpus = _str_map(obj, "queries", path), _str_map(obj, "corpus", path)
    relevant = obj["relevant_docs"]
    if not isinstance(relevant, dict) or not all(
        isinstance(v, list) and all(isinstance(d, str) for d in v) for v in relevant.values()
    ):
        raise DatasetError(f'{path}: "relevant_docs" must be an object mapping query ids to lists of corpus ids')
    if not queries or not corpus:
        counts = f"{_count(len(queries), 'query', 'queries')} and {_count(len(corpus), 'corpus text')}"
        raise DatasetError(f"{path} has {counts}; it needs both")
    # Every query needs an answer in the corpus, or its metrics would be 0 for no reason.
    unanswered = [q for q in queries if not relevant.get(q)]
    if unanswered:
        raise DatasetError(
            f"{path}: {_count(len(unanswered), 'query id')} without relevant_docs (e.g. {unanswered[0]!r})"
        )
    stray = [q for q in relevant if q not in queries]
    if stray:
        raise DatasetError(f"{path}: relevant_docs names {_count(len(stray), 'unknown query id')} (e.g. {stray[0]!r})")
    dangling = sorted({d for docs in relevant.values() for d in docs if d not in corpus})
    if dangling:
        raise DatasetError(
            f"{path}: relevant_docs points at {_count(len(dangling), 'id')} not in the corpus (e.g. {dangling[0]!r})"
        )
    return queries, corpus, {q: list(relevant[q]) for q in queries}


def evaluate_dataset(
    model: Any,
    queries: dict[str, str],
    corpus: dict[str, str],
    relevant: dict[str, list[str]],
    ks: Sequence[int] = DATASET_KS,
) -> dict[str, float]:
    """hit@k and MRR@10 of `model` retrieving from the whole corpus (same index settings as a run)."""
    ids, qids = list(corpus), list(queries)
    ranked = model_rankings(model, list(corpus.values()), ids, [queries[q] for q in qids], max(max(ks), MRR_AT))
    return rank_metrics(ranked, [set(relevant[q]) for q in qids], ks)


def evaluate_on_dataset(model_path_or_run_dir: str | Path, dataset_path: Path, device: str = "") -> dict[str, float]:
    """Metrics (hit@1/3/5/10, MRR@10) of a model, or a run's tuned model, on a LlamaIndex dataset file."""
    queries, corpus, relevant = load_llamaindex_dataset(Path(dataset_path))
    model = load_model(resolve_base_model(model_path_or_run_dir), pick_device(device))
    return evaluate_dataset(model, queries, corpus, relevant)


def add_dataset_metrics(run_dir: Path, dataset_path: Path, device: str = "") -> dict[str, Any]:
    """Evaluate a run's base and tuned models on an external evaluation set (a LlamaIndex dataset); record it in
    metrics.json.

    metrics.json gains (or has replaced) one entry, written atomically; the entry is returned:

        "evaluation_set": {"file": "qa.json", "n_queries": 40, "n_corpus": 120,
                           "base": {"hit@1": …, "mrr@10": …}, "fine_tuned": {…}}

    Both models search the whole dataset corpus with the same index settings, so
    "base" and "fine_tuned" compare like with like. A metrics.json in an older ragtune's names is rewritten in these.
    """
    run_dir, dataset_path = Path(run_dir), Path(dataset_path)
    # Check the file and the run before loading any model, so a mistake fails fast.
    queries, corpus, relevant = load_llamaindex_dataset(dataset_path)
    _require(run_dir, ["metrics.json", "model/config.json", "config.json"])
    metrics = upgrade_metrics(read_json(run_dir / "metrics.json"))
    if not isinstance(metrics, dict):
        raise RunDirError(f"{run_dir / 'metrics.json'} is not a JSON object; rerun `ragtune run` into {run_dir}")
    chosen = pick_device(device)
    entry: dict[str, Any] = {"file": dataset_path.name, "n_queries": len(queries), "n_corpus": len(corpus)}
    for key, source in ((BASE, base_model_of(run_dir)), (FINE_TUNED, str(run_dir / "model"))):
        entry[key] = evaluate_dataset(load_model(source, chosen), queries, corpus, relevant)
    metrics[EVALUATION_SET] = entry = rounded(entry)  # as metrics.json holds it: 4 digits
    write_json(run_dir / "metrics.json", metrics)
    return entry
