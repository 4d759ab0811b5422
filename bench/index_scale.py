"""Exact (IndexFlatIP) against approximate (HNSW) search at 100k rows: build time, memory, query time, recall.

    python -m bench.index_scale [--rows 100000] [--dim 384] [--queries 500] [--rounds 5]

The corpus is synthetic: unit vectors around 1,000 centres (a clustered
structure like real chunk embeddings, where a topic holds many near chunks).
Each query is a noisy copy of a known row. Recall@10 is the share of the exact
index's top 10 the HNSW index also returns; found@10 is the share of queries
whose known row is in the top 10.

Both indexes are built through ragtune.retrieval.build_index and searched
through DenseIndex.search, in one process, in alternating rounds (flat, HNSW,
flat, ...), so the speed ratio compares like with like on a shared machine.
Memory is measured per index in a fresh child process, once the vectors exist:
the peak RSS during the build (VmHWM, reset through /proc/self/clear_refs just
before it) and the RSS the built index keeps, each less the RSS before it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ragtune.retrieval import DenseIndex
from ragtune.stagecosts import status_mib

REPO = Path(__file__).resolve().parents[1]

CENTRES = 1000
K = 10
KINDS = {"flat": None, "hnsw": 0}  # approx_rows: None always exact, 0 always approximate


def corpus(rows: int, dim: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows x dim unit vectors, query vectors, the row each query copies), built in float32 blocks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CENTRES, dim)).astype(np.float32)
    vecs = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, 10_000):
        n = min(10_000, rows - start)
        block = centres[rng.integers(0, CENTRES, n)] + rng.normal(size=(n, dim)).astype(np.float32)
        vecs[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    targets = rng.choice(rows, queries, replace=False)
    q = vecs[targets] + 0.5 * rng.normal(size=(queries, dim)).astype(np.float32) / np.sqrt(dim)
    return vecs, (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), targets


def reset_peak() -> float:
    """Start a new peak-RSS window (Linux: 5 to clear_refs resets VmHWM); the RSS now, in MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_mib("VmRSS")


def child(kind: str, rows: int, dim: int) -> None:
    """Build one index in this (fresh) process and print its memory figures as JSON."""
    vecs, _, _ = corpus(rows, dim, 1)
    before = reset_peak()
    t = time.perf_counter()
    index = DenseIndex.from_vectors(vecs, np.arange(rows), approx_rows=KINDS[kind])
    build_s = time.perf_counter() - t
    peak, kept = status_mib("VmHWM") - before, status_mib("VmRSS") - before
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp))
        size = (Path(tmp) / "index.faiss").stat().st_size
    print(
        json.dumps(
            {
                "kind": kind,
                "build_s": build_s,
                "vectors_mb": vecs.nbytes / 2**20,
                "peak_rise_mb": peak,
                "kept_mb": kept,
                "file_mb": size / 2**20,
            }
        )
    )


def memory(rows: int, dim: int) -> dict[str, dict]:
    out = {}
    for kind in KINDS:
        done = subprocess.run(
            [sys.executable, "-m", __spec__.name, "--child", kind, "--rows", str(rows), "--dim", str(dim)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--child", choices=sorted(KINDS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.rows, args.dim)
        return

    vecs, queries, targets = corpus(args.rows, args.dim, args.queries)
    print(
        f"{args.rows} rows x {args.dim} dims around {CENTRES} centres, {args.queries} queries "
        f"(noisy copies of known rows), top {K}"
    )
    indexes, build = {}, {}
    for kind, approx in KINDS.items():
        t = time.perf_counter()
        indexes[kind] = DenseIndex.from_vectors(vecs, np.arange(args.rows), approx_rows=approx)
        build[kind] = time.perf_counter() - t
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    found = {}
    for _ in range(args.rounds):
        for kind, index in indexes.items():
            t = time.perf_counter()
            found[kind] = index.search(queries, K)[1]
            times[kind].append((time.perf_counter() - t) / args.queries)
    exact = found["flat"]
    recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(found["hnsw"].tolist(), exact.tolist())])

    # Save/load round trip of the HNSW index: the same results after loading.
    with tempfile.TemporaryDirectory() as tmp:
        indexes["hnsw"].save(Path(tmp))
        back = DenseIndex.load(Path(tmp))
        same = back.search(queries, K)[1].tolist() == found["hnsw"].tolist()

    mem = memory(args.rows, args.dim)
    print(
        f"{'index':<6}{'build s':>9}{'ms/query':>10}{'found@10':>10}{'recall@10':>11}"
        f"{'build peak MB':>15}{'kept MB':>9}{'file MB':>9}"
    )
    for kind in KINDS:
        hit = np.mean([t in row for t, row in zip(targets.tolist(), found[kind].tolist())])
        r = 1.0 if kind == "flat" else recall
        print(
            f"{kind:<6}{build[kind]:>9.1f}{1000 * statistics.median(times[kind]):>10.3f}{hit:>10.3f}{r:>11.3f}"
            f"{mem[kind]['peak_rise_mb']:>15.0f}{mem[kind]['kept_mb']:>9.0f}{mem[kind]['file_mb']:>9.0f}"
        )
    ratio = statistics.median(times["flat"]) / statistics.median(times["hnsw"])
    print(f"query speed, HNSW over flat (median of {args.rounds} alternating rounds): {ratio:.1f}x")
    print(
        f"vectors alone: {mem['flat']['vectors_mb']:.0f} MB; HNSW save/load round trip gives the same results: {same}"
    )


if __name__ == "__main__":
    main()
