"""Files written whole or not at all: atomic writes, JSON read and write, file digests, and free disk space.

Every file a run leaves goes through `atomic_write_text` / `atomic_write_bytes`, so a crash mid-write
leaves the old file (or none), never a truncated one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import DiskFullError, RunDirError


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it came from, is a full disk or quota.

    Python raises OSError(ENOSPC); safetensors wraps the same error in its own
    exception, whose message ends "No space left on device (os error 28)".

    >>> is_disk_full(OSError(28, "No space left on device")), is_disk_full(OSError(2, "No such file"))
    (True, False)
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(s in str(exc) for s in ("No space left on device", "os error 28", "Disk quota exceeded")):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(folder: Path) -> int | None:
    """Free space on the disk holding `folder` (or its nearest existing parent); None when it cannot be told."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def megabytes(n: int) -> str:
    """
    >>> megabytes(1_500_000), megabytes(2_500_000_000)
    ('2 MB', '2.5 GB')
    """
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(1, round(n / 1e6))} MB"


def check_free_space(folder: Path, need: int, what: str) -> None:
    """Raise DiskFullError when the disk holding `folder` has less than `need` bytes free for `what`."""
    free = free_bytes(folder)
    if free is not None and free < need:
        raise DiskFullError(
            f"not enough disk space in {folder}: {what} needs about {megabytes(need)}, "
            f"{megabytes(free)} is free; free some space (or use --out on a bigger disk) "
            "and rerun the same command"
        )


def file_digest(path: Path) -> str:
    """Size and BLAKE2b digest of a file's bytes, as recorded in the manifest for each stage output.

    A file that changed after its stage wrote it (truncated, overwritten) no longer matches.
    """
    return f"{path.stat().st_size}:{_hashed(path, hashlib.blake2b(digest_size=16)).hexdigest()}"


def sha256_digest(path: Path) -> str:
    """The first 16 hex digits of a file's sha256: what the stage keys hold for each document and pairs file.

    The manifest's `file_digest` is another format, and both are kept: changing either would make every
    old run dir redo its stages.
    """
    return _hashed(path, hashlib.sha256()).hexdigest()[:16]


def _hashed(path: Path, h: Any) -> Any:
    """`h` updated with the file's bytes, read a block at a time: a file may be larger than memory."""
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file and a rename.

    A crash mid-write leaves the old file (or none), never a truncated one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file 0600 whatever the umask; a run's files are for other users and servers too.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write_text` for bytes (a PNG, say)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing") from None
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path} is not valid JSON ({e.msg}, line {e.lineno})") from None
