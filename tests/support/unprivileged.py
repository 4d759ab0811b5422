"""Run ragtune as a user that file permissions apply to.

Tests run as root here, and root reads a chmod 000 file and writes into a
read-only folder. So a check of what ragtune does with an unreadable file
runs in a subprocess as `nobody` (setpriv drops to uid/gid 65534); run as an
ordinary user, the subprocess simply keeps that user. Its files live in a
folder under the system temp dir that `nobody` can reach (pytest's own
tmp_path is private to root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _drop_privileges() -> list[str]:
    """The command prefix that runs a program without root's power over permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot test permissions for real")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture(name="shared_tmp")
def shared_tmp_fixture() -> Iterator[Path]:
    """A temp folder that the unprivileged user can enter and write to, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ragtune-test-"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        # Give back permissions taken away by the test, so the folder can be removed.
        for root, dirs, _files in os.walk(folder):
            for d in dirs:
                path = Path(root) / d
                if not path.is_symlink():
                    path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def run_unprivileged(args: list[str], home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python ARGS` from this virtual environment as the unprivileged user.

    `home` (writable by that user) serves as HF_HOME and the working directory.
    """
    env = {
        **os.environ,
        "HF_HOME": str(home / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "HOME": str(home),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [*_drop_privileges(), sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=timeout,
        check=False,
    )


def copy_for_unprivileged(src: Path, dest: Path) -> Path:
    """A copy of `src` (a file or folder) that the unprivileged user can read."""
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    for root, _dirs, files in os.walk(dest):
        Path(root).chmod(0o755)
        for f in files:
            (Path(root) / f).chmod(0o644)
    return dest
