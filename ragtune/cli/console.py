"""What every subcommand shares at the terminal: the --device help, whole-number flags, the check that an
output path can be written before any work, and the one line an OSError becomes.

Like the rest of cli/, this is the printing layer; nothing under ragtune/cli prints for it.
"""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

from ..errors import OutputError

DEVICE_HELP = "cpu, cuda, cuda:N or mps (auto: cuda or mps if available)"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _why_not_writable(folder: Path) -> str:
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "a read-only file system" if read_only else "permission denied"


def check_output(path: Path, flag: str, folder: bool = True) -> None:
    """Raise OutputError now, before any work, when `path` cannot be written as the output
    folder (`folder`) or file named by `flag`; later failures (a full disk) reach cli.main.

    Files are written via a temporary file and a rename, so what matters is that the
    nearest folder that exists takes new files.
    """
    path = Path(path)
    again = f"choose another {flag}"
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file, not a folder; {again}, or move the file away")
    if not folder and path.is_dir():
        raise OutputError(
            f"{flag} {path} is a folder; pass the path of the file to write, e.g. {path / 'dataset.json'}"
        )
    existing = next(p for p in ([path] if folder else []) + [*path.parents] if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        raise OutputError(f"{flag} {path}: {existing} is a file, so nothing can be written under it; {again}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(
            f"{flag} {path}: cannot write in {existing} ({_why_not_writable(existing)}); {again}, "
            "or make that folder writable"
        )


def os_error_line(e: OSError, output: tuple[str, Path] | None = None) -> str:
    """One line for an OSError no check caught (a full disk, a folder made read-only mid-run):
    the path, what went wrong, and what to do. `output` is the command's (flag, output path).

    >>> os_error_line(PermissionError(errno.EACCES, "Permission denied", "runs/x/model"), ("--out", Path("runs/x")))
    'runs/x/model: Permission denied; check its permissions, or choose another --out'
    >>> os_error_line(OSError(errno.ENOSPC, "No space left on device"), ("--out", Path("runs/x")))
    'runs/x: No space left on device; free some disk space, or choose another --out'
    """
    flag, out = output if output else ("", None)
    path = e.filename if e.filename is not None else out
    # Suggest another output path only when the failure is under it (not, say, in an input file).
    mine = (
        out is not None
        and path is not None
        and (os.path.abspath(path) + os.sep).startswith(os.path.abspath(out) + os.sep)
    )
    other = f", or choose another {flag}" if mine else ""
    hints = {
        errno.EACCES: "check its permissions" + other, errno.EPERM: "check its permissions" + other,
        errno.EROFS: "that file system is read-only" + other.replace(", or", ";"),
        errno.ENOSPC: "free some disk space" + other, errno.EDQUOT: "free some disk space" + other,
        errno.EEXIST: "a file is in the way of a folder; move it" + other,
        errno.ENOTDIR: "a file is in the way of a folder; move it" + other,
        errno.EISDIR: "a folder is in the way of a file; move it" + other,
    }  # fmt: skip
    where = f"{path}" + (f" -> {e.filename2}" if e.filename2 is not None else "")
    what = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    hint = hints.get(e.errno or 0)
    return (f"{where}: {what}" if path is not None else what) + (f"; {hint}" if hint else "")
