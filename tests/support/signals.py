"""Run `python -m ragtune …` in a child process and signal it when its stderr shows a given line."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]


def ragtune_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a child ragtune: offline, its own HF_HOME, this checkout importable."""
    return {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    }


def start(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    # A shell's background job ignores SIGINT and the child would inherit that; Ctrl-C reaches a foreground one.
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def signal_when(
    cmd: list[str],
    env: dict[str, str],
    cwd: Path,
    sig: signal.Signals,
    when: Callable[[str], bool],
    timeout: float = 120,
) -> tuple[int, str]:
    """Run `cmd`, send `sig` at the first stderr line for which `when(line)` is true, and wait.

    Returns the exit code and all of stderr. A child that ends before the line shows up
    was never signalled: the returned code then says how it ended on its own.
    """
    proc = start(cmd, env, cwd)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if when(line):
            proc.send_signal(sig)
            break
    err = "".join(seen) + proc.stderr.read()
    return proc.wait(timeout=timeout), err
