"""What the bench scripts share: the third-party questions and their relevance rule, a finished run loaded for
scoring, the scores themselves, ragtune's own training call, and the order of timed rounds.

Scripts run from the repository root as `python -m bench.NAME`, so `ragtune` and `bench` import without any
path set-up. Each script imports from here, never from another script.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import random
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ragtune.config import Config
from ragtune.fileio import read_json
from ragtune.metrics import MRR_AT, model_rankings, rank_metrics
from ragtune.records import Chunk, Page, Pair, read_jsonl
from ragtune.runfiles import RunFiles

SHINGLE = 5
MIN_RUN = 30
DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench" / "nist_ragas_test100.csv"

Suites = dict[str, tuple[list[str], list[Any]]]


def norm_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", unicodedata.normalize("NFKC", text).lower())


def _shingles(ws: list[str]) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + SHINGLE]) for i in range(len(ws) - SHINGLE + 1)}


def _longest_run(a: list[str], b: list[str]) -> int:
    # Longest common substring over words (dynamic programming, small inputs).
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def is_hit(chunk_words: list[str], chunk_sh: set, context: str) -> bool:
    cw = norm_words(context)
    sh = _shingles(cw)
    if sh and len(sh & chunk_sh) >= 0.5 * len(sh):
        return True
    return bool(sh & chunk_sh) and _longest_run(cw, chunk_words) >= min(MIN_RUN, len(cw))


def load_bench(path: Path) -> list[tuple[str, list[str]]]:
    with path.open(encoding="utf-8") as f:
        return [(r["question"], list(ast.literal_eval(r["contexts"]))) for r in csv.DictReader(f)]


def relevant_sets(chunks: list[Chunk], bench: list[tuple[str, list[str]]]) -> list[set[str]]:
    prepared = [(c.id, norm_words(c.text)) for c in chunks]
    prepared = [(cid, ws, _shingles(ws)) for cid, ws in prepared]
    return [{cid for cid, ws, sh in prepared if any(is_hit(ws, sh, ctx) for ctx in ctxs)} for _, ctxs in bench]


def question_suites(chunks: list[Chunk], held: list[Pair], bench_file: Path | None) -> Suites:
    """The run's held-out questions and, when `bench_file` exists, the third-party questions that have a relevant
    chunk (those without one are counted out), each as (queries, relevant chunk ids)."""
    suites: Suites = {"held-out": ([p.query for p in held], [p.chunk_id for p in held])}
    if bench_file is not None and bench_file.exists():
        bench = load_bench(bench_file)
        rel = relevant_sets(chunks, bench)
        keep = [i for i, r in enumerate(rel) if r]
        suites["bench"] = ([bench[i][0] for i in keep], [rel[i] for i in keep])
    return suites


def run_seq_length(run: Path) -> int:
    """The max_seq_length the run trained and scored at (its chunk stage's)."""
    return int(read_json(run / "work" / "manifest.json")["stages"]["chunk"]["max_seq_length"])


def load_run(run: Path, bench_file: Path | None) -> tuple[Config, list[Chunk], list[Pair], Suites]:
    """A finished run's Config, chunks and training pairs, and the question suites to score on (`bench_file` None:
    the held-out questions only, for a caller that scores nothing)."""
    settings = read_json(run / "config.json")
    # config.json also records what is not a setting (the ragtune version that wrote it).
    fields = {f.name for f in dataclasses.fields(Config)}
    cfg = Config(
        **{
            k: (tuple(v) if isinstance(v, list) else v)
            for k, v in settings.items()
            if k in fields and k not in ("docs", "out", "themes_file", "pairs_files")
        },
        docs=Path(settings["docs"]),
    )
    chunk_list = read_jsonl(run / "work" / "chunks.jsonl", Chunk)
    pairs = read_jsonl(run / "work" / "pairs_train.jsonl", Pair)
    if (run / "work" / "pairs_lexical.jsonl").exists():
        pairs += read_jsonl(run / "work" / "pairs_lexical.jsonl", Pair)
    held = read_jsonl(RunFiles(run).split("test"), Pair)
    if bench_file is not None and not bench_file.exists():
        print(f"# {bench_file} not found: scoring the held-out questions only (give --bench)", file=sys.stderr)
    return cfg, chunk_list, pairs, question_suites(chunk_list, held, bench_file)


def scores(model: Any, chunks: list[Chunk], suites: Suites) -> dict[str, float]:
    """hit@5 and MRR@10 of `model` on each suite, one vector per chunk and with passages of 20 words."""
    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    out = {}
    for name, (queries, relevant) in suites.items():
        for label, words in (("", 0), (" passages", 20)):
            m = rank_metrics(model_rankings(model, texts, ids, queries, MRR_AT, words), relevant, (5,))
            out[f"{name}{label} hit@5"] = m["hit@5"]
            out[f"{name}{label} mrr@10"] = m[f"mrr@{MRR_AT}"]
    return out


def ragtune_train(
    model: Any, cfg: Config, pairs: list[Pair], chunks: dict[str, Chunk], run_dir: Path, work: Path
) -> Any:
    """ragtune's train stage: the same call and validation set-up as ragtune.stages.train."""
    # Imported here: the scripts that only score never pay for the trainer's imports.
    from ragtune.stages.train import VALIDATION_CORPUS
    from ragtune.training.trainer import fine_tune
    from ragtune.training.validation import Validation

    val = read_jsonl(run_dir / "work" / "pairs_val.jsonl", Pair)
    held = {p.chunk_id for p in read_jsonl(RunFiles(run_dir).split("test"), Pair)}
    own = {p.chunk_id for p in val}
    others = sorted(cid for cid in chunks if cid not in held and cid not in own)
    random.Random(cfg.seed).shuffle(others)
    keep = own | set(others[: max(0, VALIDATION_CORPUS - len(own))])
    corpus = [c for cid, c in chunks.items() if cid in keep]
    validation = (
        Validation(
            [p.query for p in val],
            [p.kind or p.generator for p in val],
            [p.chunk_id for p in val],
            [c.id for c in corpus],
            [c.text for c in corpus],
        )
        if val
        else None
    )
    return fine_tune(model, pairs, chunks, cfg, work, "cpu", validation=validation)


def dense_row(model: str, passage_words: int) -> str:
    """bench.shared_bench's row of `model`'s dense retriever: with passages when they are cut (`passage_words` > 0)."""
    return f"{model}, passages" if passage_words else model


def hybrid_row(dense: str, weight: float) -> str:
    """bench.shared_bench's row of the weighted hybrid of the dense row `dense` and BM25, the model's share `weight`."""
    return f"hybrid ({dense} + BM25, {weight:g}:{1 - weight:g})"


def alternate(rounds: int, names: Sequence[str]) -> Iterator[tuple[int, str]]:
    """(round, name) as A, B, A, B …: on a shared machine the load drifts, and alternating spreads that drift over
    every contender instead of charging it to whichever ran last. Report the best time of each."""
    for r in range(rounds):
        for name in names:
            yield r, name


def cpu_flags() -> str:
    """The bf16 instructions this CPU has, which decide whether bf16 autocast is native or emulated."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    have = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f") if f" {f}" in flags]
    return ", ".join(have) or "none of avx512f, avx512_bf16, amx_bf16"


def chars1000_chunks(pages: list[Page]) -> list[Chunk]:
    """The fixed outside chunking: 1000 characters, 100 overlap, per document."""
    from itertools import groupby

    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
    out = []
    for source, group in groupby(pages, key=lambda p: p.source):
        text = "\n\n".join(p.text for p in group)
        out += [Chunk(f"{source}#{i}", source, (), t, 0) for i, t in enumerate(splitter.split_text(text))]
    return out
