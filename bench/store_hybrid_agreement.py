"""Does the hybrid a run exports into Qdrant rank like `ragtune.Retriever`'s hybrid? On the run's held-out questions.

    python -m bench.store_hybrid_agreement RUN [--k 5] [--depth 100] [--fusion rrf dbsf]

Exports RUN (`ragtune.stores.export_run`, the same call as `ragtune export RUN --to qdrant`) into a
temporary embedded Qdrant folder, then asks every held-out question of the run
(RUN/work/pairs_test.jsonl) both sides and prints, per comparison, the mean top-K overlap (share of one
top K found in the other), the share of questions with the same top 1, and hit@K of each side (the
question's own chunk in its top K). RUN itself is only read.

The rows take the difference apart:
  - dense, Qdrant vs Retriever on the chunk vectors only: the store holds one vector per chunk, so this
    must be 1.000 (the export wrote the run's own vectors);
  - dense, Qdrant vs the run's Retriever: what passages (`passage_words`) add to ragtune's dense side;
  - hybrid, Qdrant's fusion vs Retriever hybrid, on chunk vectors only and as the run has it;
  - hybrid, ragtune's min-max fusion of Qdrant's own two prefetch lists (dense and BM25 sparse) vs
    Retriever hybrid on chunk vectors: 1.000 means the lists are the same and only the fusion differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.records import Pair, read_jsonl

Ranked = list[list[str]]


def overlap(a: Ranked, b: Ranked) -> float:
    """Mean share of one list's top K found in the other's."""
    return float(np.mean([len(set(x) & set(y)) / max(len(x), 1) for x, y in zip(a, b)]))


def same_top1(a: Ranked, b: Ranked) -> float:
    return float(np.mean([bool(x) and bool(y) and x[0] == y[0] for x, y in zip(a, b)]))


def hit_at(ranked: Ranked, targets: list[str]) -> float:
    return float(np.mean([t in r for r, t in zip(ranked, targets)]))


def chunk_vectors_only(retriever: Any) -> Any:
    """The run's Retriever with its passages dropped: one vector per chunk, as a store holds it.

    The run's index keeps each chunk's own vector in rows 0..n-1 (passages follow), so no re-encoding.
    """
    from ragtune.retrieval import DenseIndex

    n = retriever.index.n_chunks
    vectors = retriever.index.index.reconstruct_n(0, n)
    return dataclasses.replace(retriever, index=DenseIndex.from_vectors(vectors, np.arange(n)))


def qdrant_lists(client: Any, collection: str, vector: np.ndarray, query: str, depth: int) -> tuple[Any, Any]:
    """Qdrant's own dense and BM25 sparse lists for one question, as (scores, ids) arrays of one row each."""
    from qdrant_client import models

    from ragtune.stores.base import sparse_query
    from ragtune.stores.qdrant import SPARSE

    indices, values = sparse_query(query)
    dense = client.query_points(collection, query=vector.tolist(), limit=depth, with_payload=["chunk_id"]).points
    sparse = (
        client.query_points(
            collection,
            query=models.SparseVector(indices=indices, values=values),
            using=SPARSE,
            limit=depth,
            with_payload=["chunk_id"],
        ).points
        if indices
        else []
    )
    return [(np.array([[p.score for p in ps]]), [p.payload["chunk_id"] for p in ps]) for ps in (dense, sparse)]


def fused_top(dense: Any, lexical: Any, weight: float, k: int) -> list[str]:
    """ragtune's own score fusion (retrieval.ranking.fused_scores) of two (scores, chunk ids) lists."""
    from ragtune.retrieval.ranking import fused_scores

    ids = list(dict.fromkeys(dense[1] + lexical[1]))
    pos = {c: i for i, c in enumerate(ids)}
    as_positions = [(s, np.array([[pos[c] for c in cs]], dtype=np.int64)) for s, cs in (dense, lexical)]
    score = fused_scores(as_positions[0], as_positions[1], weight)[0]
    return [ids[i] for i in sorted(score, key=lambda c: -score[c])[:k]]


def compare(
    run_dir: Path, k: int, depth: int, fusions: list[str]
) -> tuple[list[tuple[str, Ranked, Ranked]], list[Pair], float]:
    """(label, Qdrant side, ragtune side) per comparison, the held-out pairs asked and the hybrid weight."""
    import qdrant_client

    from ragtune.retrieval import embed
    from ragtune.search import load_retriever
    from ragtune.stores import export_run
    from ragtune.stores.qdrant import hybrid_search

    pairs = read_jsonl(run_dir / "work" / "pairs_test.jsonl", Pair)
    run = load_retriever(run_dir, "tuned", device="cpu")
    flat = chunk_vectors_only(run)
    queries = [p.query for p in pairs]
    vectors = embed(run.model, queries)
    w = run.hybrid_weight
    with tempfile.TemporaryDirectory() as tmp:
        export_run(run_dir, "qdrant", Path(tmp) / "q", "docs", device="cpu")
        client = qdrant_client.QdrantClient(path=str(Path(tmp) / "q"))
        try:
            q_dense: Ranked = []
            q_minmax: Ranked = []
            q_hybrid: dict[str, Ranked] = {f: [] for f in fusions}
            for q, v in zip(queries, vectors):
                dense, lexical = qdrant_lists(client, "docs", v, q, depth)
                q_dense.append(dense[1][:k])
                q_minmax.append(fused_top(dense, lexical, w, k))
                for f in fusions:
                    points = hybrid_search(client, "docs", v, q, k, w, depth=depth, fusion=f)
                    q_hybrid[f].append([p.payload["chunk_id"] for p in points])
        finally:
            client.close()

    def ranked(r: Any, mode: str) -> Ranked:
        return [[h.chunk_id for h in r.search(q, k, mode=mode)] for q in queries]

    r_dense, f_dense = ranked(run, "dense"), ranked(flat, "dense")
    r_hybrid, f_hybrid = ranked(run, "hybrid"), ranked(flat, "hybrid")
    rows = [
        ("dense: Qdrant vs Retriever, chunk vectors only", q_dense, f_dense),
        (f"dense: Qdrant vs Retriever as run (passage_words {run_passage_words(run_dir)})", q_dense, r_dense),
    ]
    for f in fusions:
        rows.append((f"hybrid: Qdrant {f} vs Retriever, chunk vectors only", q_hybrid[f], f_hybrid))
        rows.append((f"hybrid: Qdrant {f} vs Retriever as run", q_hybrid[f], r_hybrid))
    rows.append(("hybrid: min-max fusion of Qdrant's lists vs Retriever, chunk vectors", q_minmax, f_hybrid))
    return rows, pairs, w


def run_passage_words(run_dir: Path) -> int:
    from ragtune.retrieval.stored import read_settings

    return int(read_settings(run_dir / "index").get("passage_words", 0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a finished run folder (only read)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--depth", type=int, default=100, help="each list's length before fusion (Retriever uses 100)")
    ap.add_argument("--fusion", nargs="+", choices=("rrf", "dbsf"), default=["rrf", "dbsf"])
    args = ap.parse_args()
    rows, pairs, weight = compare(args.run, args.k, args.depth, args.fusion)
    targets = [p.chunk_id for p in pairs]
    print(
        f"{args.run}: {len(pairs)} held-out questions, top {args.k}, lists of {args.depth}, "
        f"hybrid weight {weight} (dense share)"
    )
    head = f"{'comparison':<72} {'overlap':>7} {'top-1':>6} {'hit Qdrant':>10} {'hit ragtune':>11}"
    print(head)
    for label, store_side, ragtune_side in rows:
        print(
            f"{label:<72} {overlap(store_side, ragtune_side):7.3f} {same_top1(store_side, ragtune_side):6.3f} "
            f"{hit_at(store_side, targets):10.3f} {hit_at(ragtune_side, targets):11.3f}"
        )


if __name__ == "__main__":
    main()
