"""Training's peak memory and speed with and without gradient caching (`--mini-batch-size`), side by side.

    python -m bench.train_memory RUN_DIR [--mini-batch-sizes 0,8] [--steps 12] [--rounds 2] [--trim]

Each arm trains a fresh copy of the run's base model `--steps` steps on the run's own training pairs (generated
questions and lexical spans) with `ragtune.training.trainer.fine_tune` and the run's Config, changing only
`mini_batch_size` (0: off). No validation, early stop or WiSE mix, which cost the same in every arm. Each arm runs in
a process of its own, so its peak resident memory (getrusage's ru_maxrss) is its own; the arms alternate (0, 8, 0, 8
…) so that a drift in the machine's load is spread over both. Prints, per arm and round, the seconds of training
(the fine_tune call: its set-up, steps and checkpoints, not loading), the seconds a step (from the end of the first
step to the end of the last, checkpoints included), the memory before training and its peak, then each arm's
medians and its step time's ratio to the first arm's, round by round.

--trim adds, for each mini-batch size, an arm that hands the memory glibc's malloc holds free back to the system
after every step (malloc_trim(0)), so that the peak it reports is what training holds in use, not what its heap
keeps from earlier steps. Every arm also reports its resident memory after each quarter of its steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import alternate, load_run, run_seq_length
from ragtune.stagecosts import status_mib


def one_arm(run: Path, mini_batch_size: int, steps: int, trim: bool = False) -> dict[str, Any]:
    """Train in this process and say what it took (the child's side)."""
    import ctypes

    from ragtune.models import load_model, resolve_base_model
    from ragtune.training.trainer import fine_tune

    cfg, chunk_list, pairs, _ = load_run(run, None)  # no third-party questions: nothing is scored
    cfg = dataclasses.replace(cfg, mini_batch_size=mini_batch_size, max_steps=steps, patience=0, wise=False)
    model = load_model(resolve_base_model(cfg.base_model), "cpu")
    model.max_seq_length = run_seq_length(run)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ends: list[float] = []  # when each step ended
    resident: list[float] = []  # resident MiB after each step
    malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim if trim else None

    def step_ended(*_: Any) -> None:
        if malloc_trim is not None:
            malloc_trim(0)
        ends.append(time.perf_counter())
        resident.append(status_mib("VmRSS"))

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        fine_tune(
            model,
            pairs,
            {c.id: c for c in chunk_list},
            cfg,
            Path(work),
            "cpu",
            step_ended,
        )
    seconds = time.perf_counter() - start
    # The kernel updates the high-water mark getrusage reads lazily, so a reading taken after a step can be above it.
    peak = max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *resident])
    # A step's price: from the end of the first step (which pays for allocations once) to the end of the last.
    step = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else seconds
    return {
        "seconds": round(seconds, 2),
        "step_seconds": round(step, 3),
        "rss_before_mib": round(before),
        "peak_rss_mib": round(peak),
        "rss_by_quarter_mib": [round(resident[min(len(resident) - 1, q * len(resident) // 4)]) for q in (1, 2, 3, 4)]
        if resident
        else [],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--mini-batch-sizes", default="0,8", help="comma-separated; 0 is gradient caching off")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--trim", action="store_true", help="also each size with malloc_trim(0) after every step")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child: train this arm ("8", or "8 trim")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one is not None:
        size, _, trim = args.one.partition(" ")
        print(json.dumps(one_arm(args.run_dir, int(size), args.steps, trim == "trim")))
        return 0
    sizes = [int(s) for s in args.mini_batch_sizes.split(",")]
    arms = [str(s) for s in sizes] + ([f"{s} trim" for s in sizes] if args.trim else [])
    print(
        f"# {args.run_dir}: {args.steps} steps per arm, arms {arms} (mini-batch size), {args.rounds} rounds", flush=True
    )
    results: dict[str, list[dict[str, Any]]] = {a: [] for a in arms}
    for r, arm in alternate(args.rounds, arms):
        child = subprocess.run(
            [sys.executable, "-m", "bench.train_memory", str(args.run_dir), "--one", arm, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            print(f"train_memory: arm {arm} failed:\n{child.stderr[-2000:]}", file=sys.stderr)
            return 1
        got = json.loads(child.stdout.strip().splitlines()[-1])
        results[arm].append(got)
        print(
            f"round {r + 1}, arm {arm}: {got['seconds']:.1f} s training ({got['step_seconds']:.2f} s a "
            f"step after the first), memory {got['rss_before_mib']} MiB before, peak {got['peak_rss_mib']} MiB, "
            f"resident after each quarter of the steps {got['rss_by_quarter_mib']} MiB; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    first = arms[0]
    print(f"\n{'arm':<16}{'median s':>10}{'s a step':>10}{'peak MiB':>10}   step ratio to {first}, by round")
    for arm in arms:
        runs = results[arm]
        ratios = [a["step_seconds"] / b["step_seconds"] for a, b in zip(runs, results[first])]
        print(
            f"{arm:<16}{statistics.median(r['seconds'] for r in runs):>10.1f}"
            f"{statistics.median(r['step_seconds'] for r in runs):>10.2f}"
            f"{max(r['peak_rss_mib'] for r in runs):>10}   {'  '.join(f'{x:.2f}' for x in ratios)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
