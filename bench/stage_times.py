"""Time each stage of a full `ragtune run` and print the figures.

    python -m bench.stage_times [DOCS_DIR] [--out RUN_DIR] [ragtune run flags…]

Defaults to resources/ and a fresh temporary run directory, so every stage
runs (nothing is reused from an earlier run).
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from ragtune.cli import _config_from_args, _quiet_libraries, build_parser
from ragtune.names import BASE, FINE_TUNED
from ragtune.pipeline import Pipeline, SilentReporter


class TimingReporter(SilentReporter):
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        self.rows.append((name, seconds, summary))
        print(f"  {name:<9} {seconds:8.1f}s  {summary}", file=sys.stderr, flush=True)


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        argv = [str(Path(__file__).resolve().parents[1] / "resources")] + argv
    if "--out" not in argv:
        argv += ["--out", str(Path(tempfile.mkdtemp(prefix="ragtune-bench-")) / "run")]
    args = build_parser().parse_args(["run", *argv])
    _quiet_libraries()
    cfg = _config_from_args(args)
    import torch

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; docs {cfg.docs}",
        file=sys.stderr,
    )
    reporter = TimingReporter()
    start = time.perf_counter()
    result = Pipeline(cfg, reporter).run()
    total = time.perf_counter() - start
    print(f"{'stage':<10}{'seconds':>9}  summary")
    for name, seconds, summary in reporter.rows:
        print(f"{name:<10}{seconds:>9.1f}  {summary}")
    print(f"{'total':<10}{total:>9.1f}")
    m = result.metrics
    print(
        f"held-out hit@5 {m[BASE]['hit@5']:.3f} -> {m[FINE_TUNED]['hit@5']:.3f}, "
        f"MRR@10 {m[BASE]['mrr@10']:.3f} -> {m[FINE_TUNED]['mrr@10']:.3f} (BM25 hit@5 {m['bm25']['hit@5']:.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
