"""Time the offline question generator on a run's chunks, for two checkouts side by side.

    python -m bench.generate_speed RUN_DIR [--repo CHECKOUT] [--rounds 3]

Each round runs `OfflineGenerator.generate` on RUN_DIR/chunks.jsonl in a fresh
process with this checkout's ragtune, then (with --repo) with CHECKOUT's, in
turn, and prints each time, the pair count and the median ratio this / CHECKOUT.
Make CHECKOUT with `git worktree add /tmp/old COMMIT`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CHILD = """
import random, sys, time
from pathlib import Path
from ragtune.generators import OfflineGenerator
from ragtune.records import Chunk, read_jsonl
chunks = list(read_jsonl(Path(sys.argv[1]) / "chunks.jsonl", Chunk))
t = time.perf_counter()
pairs = OfflineGenerator().generate(chunks, random.Random(13))
print(time.perf_counter() - t, len(pairs), len(chunks))
"""


def time_once(repo: Path, run_dir: Path) -> tuple[float, int, int]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(run_dir)], env=env, cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1]), int(out[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--repo", type=Path, help="a second checkout to time against")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not (args.run_dir / "work" / "chunks.jsonl").is_file():
        print(f"error: no chunks.jsonl in {args.run_dir}", file=sys.stderr)
        return 2
    ratios = []
    for i in range(args.rounds):
        t, n_pairs, n_chunks = time_once(HERE, args.run_dir)
        line = f"round {i + 1}: this {t:.2f}s ({n_pairs} pairs from {n_chunks} chunks)"
        if args.repo:
            t_other, n_other, _ = time_once(args.repo.resolve(), args.run_dir)
            ratios.append(t / t_other)
            line += f", {args.repo} {t_other:.2f}s ({n_other} pairs), ratio {t / t_other:.2f}"
        print(line, flush=True)
    if ratios:
        print(f"median ratio this / {args.repo}: {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
