"""Trainer checkpoints: marking one complete once all of it is on the disk, finding the newest
complete one, and choosing where a rerun resumes (shared by `ragtune run` and `ragtune pairs`)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from ..fileio import atomic_write_text, write_json

# Written into a checkpoint folder once the Trainer has saved everything in it: the files and their
# sizes. A folder without it (cut off mid-write), or whose files no longer match it (a half-finished
# rotation), is never resumed from.
CHECKPOINT_MARKER = "ragtune_checkpoint.json"


def _checkpoint_files(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != CHECKPOINT_MARKER
    }


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        # Some file systems (FUSE, CIFS, vboxsf) cannot sync a directory; its files are synced already.
        if not (path.is_dir() and e.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise
    finally:
        os.close(fd)


def mark_complete(folder: Path, step: int) -> None:
    """Record that checkpoint `folder` is whole: its files and their sizes, in CHECKPOINT_MARKER.

    Its files are flushed to the disk first and the marker after them, so that after a power
    cut a marker never vouches for data that was still only in the page cache.
    """
    files = _checkpoint_files(folder)
    for rel in files:
        _fsync(folder / rel)
    for sub in sorted({(folder / rel).parent for rel in files}, key=lambda d: len(d.parts), reverse=True):
        _fsync(sub)
    write_json(folder / CHECKPOINT_MARKER, {"step": step, "files": files})
    _fsync(folder / CHECKPOINT_MARKER)
    _fsync(folder)


def checkpoint_problem(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None when it is complete.

    >>> checkpoint_problem(Path("/nonexistent/checkpoint-3"))
    'it was cut off mid-write (no ragtune_checkpoint.json)'
    """
    try:
        marker = json.loads((folder / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
        listed = marker["files"]
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        return f"it was cut off mid-write (no {Path(str(e.filename)).name})"
    except (OSError, ValueError, KeyError, TypeError):
        return "its trainer_state.json or ragtune_checkpoint.json is unreadable"
    if not isinstance(listed, dict) or not isinstance(state, dict) or "global_step" not in state:
        return "its trainer_state.json or ragtune_checkpoint.json is unreadable"
    if "model.safetensors" not in listed:
        return "it has no model weights (model.safetensors)"
    present = _checkpoint_files(folder)
    damaged = sorted(name for name, size in listed.items() if present.get(name) != size)
    if damaged:
        return f"{', '.join(damaged[:3])}{' …' if len(damaged) > 3 else ''} missing or cut short"
    return None


def scan_checkpoints(folder: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint in `folder` (or None), and every incomplete one with what is wrong."""
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    newest, broken = None, []
    for path in found:
        problem = checkpoint_problem(path)
        if problem is not None:
            broken.append((path, problem))
        elif newest is None:
            newest = path
    return newest, broken


def checkpoint_step(path: str | None) -> int | None:
    """The step a Trainer checkpoint folder was saved at.

    >>> checkpoint_step("runs/x/checkpoints/checkpoint-12"), checkpoint_step(None)
    (12, None)
    """
    return int(path.rsplit("-", 1)[1]) if path else None


def checkpoint_to_resume(folder: Path, key: str, marker: str, note: Callable[[str], None] | None = None) -> Path | None:
    """The newest complete checkpoint an interrupted run with the same `key` left in `folder`,
    or None, leaving an empty `folder` marked with `key` in the file `marker` (a run with other
    settings or inputs starts again, and its checkpoints are removed).

    A checkpoint cut off mid-write, or left half deleted, is removed with a note: the previous
    complete one is resumed from, or training starts again.
    """
    marker_path = folder / marker
    if marker_path.is_file() and marker_path.read_text(encoding="utf-8", errors="replace") == key:
        newest, broken = scan_checkpoints(folder)
        for path, problem in broken:
            shutil.rmtree(path, ignore_errors=True)
            if note is not None:
                then = f"resuming from {newest.name}" if newest is not None else "training starts again"
                note(f"{path.name} cannot be resumed from: {problem}; {then}")
        if newest is not None:
            return newest
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    atomic_write_text(marker_path, key)
    return None
