"""bench/train_memory.py on a finished tiny run: each arm trains the run's own pairs with the mini-batch size it is
given, in its own process, and reports a step's seconds, its peak memory and its resident memory as the steps go;
--trim adds each size with glibc's freed memory handed back after every step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ragtune.records import Page
from tests.support.runs import finished_tiny_run, good_docs

REPO = Path(__file__).resolve().parents[1]


def test_each_arm_trains_the_steps_it_is_given_in_a_process_of_its_own(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page]
) -> None:
    run = finished_tiny_run(tmp_path, good_docs(tmp_path / "docs", nist_pages), tiny_model_dir)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.train_memory",
            str(run),
            "--steps",
            "4",
            "--rounds",
            "1",
            "--mini-batch-sizes",
            "2",
            "--trim",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    arms = [line for line in lines if line.startswith("round 1, arm")]
    names = ["2", "2 trim"]
    assert [line.split(":")[0] for line in arms] == [f"round 1, arm {n}" for n in names]
    for line in arms:
        before, peak = (int(line.split(" MiB")[i].split()[-1]) for i in (0, 1))
        assert 0 < before <= peak
        # Resident memory after each quarter of the 4 steps: 4 figures, none above the peak.
        quarters = [int(x) for x in line.split("[")[1].split("]")[0].split(",")]
        assert len(quarters) == 4 and all(0 < q <= peak for q in quarters)
    table = lines[lines.index(next(line for line in lines if line.startswith("arm "))) + 1 :]
    assert [row.rsplit(maxsplit=4)[0] for row in table] == names
    # Each arm's step time against the first arm's: 1.00 for the first itself.
    assert table[0].split()[-1] == "1.00" and all(float(row.split()[-1]) > 0 for row in table[1:])


def test_a_failing_arm_is_one_message_not_a_table(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.train_memory", str(tmp_path / "no-run"), "--steps", "1", "--rounds", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1 and "arm 0 failed" in out.stderr and "step ratio" not in out.stdout
