"""The run directory's own files: manifest.json (what each stage recorded) and run.lock (one run at a time).

Each stage's entry in the manifest holds its key, its timing, what it reported and
the digest of every output it wrote, so a rerun can tell a stage whose outputs are
still its own from one whose outputs were changed, cut short or deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from . import __version__
from .records import FORMAT_VERSION, RunDirError, file_digest, read_json, write_json

# 2: JSONL files without a header line (their format version is recorded here), passage index, BM25 index.
MANIFEST_VERSION = 2


def hash_parts(*parts: Any) -> str:
    """A short digest of JSON-able parts, in order: the stage keys and the manifest entries' checks."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def output_digest(path: Path) -> str:
    """file_digest of a file; of a folder (such as index/bm25/), a digest of every file's name and file_digest."""
    if not path.is_dir():
        return file_digest(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return hash_parts(*[(p.relative_to(path).as_posix(), file_digest(p)) for p in files])


def rerun_command(run_dir: Path) -> str:
    """The `ragtune run` command that redoes `run_dir`, with its DOCS folder when config.json names one.

    >>> rerun_command(Path("/nonexistent/run"))
    '`ragtune run DOCS --out /nonexistent/run`'
    """
    try:
        docs = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("docs")
    except (OSError, ValueError, AttributeError):
        docs = None
    return f"`ragtune run {docs if isinstance(docs, str) and docs else 'DOCS'} --out {run_dir}`"


def _entry_check(entry: dict[str, Any]) -> str:
    """A stage entry's own digest: an entry edited or damaged after it was written no longer matches it."""
    return hash_parts({k: v for k, v in entry.items() if k != "check"})


class Manifest:
    """run_dir/manifest.json: format version, ragtune version, and per-stage keys and timings."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "manifest.json"
        self.run_dir = run_dir
        self.data: dict[str, Any] = {"ragtune_manifest": MANIFEST_VERSION, "ragtune_version": __version__,
                                     "jsonl_format": FORMAT_VERSION, "stages": {}}
        if self.path.exists():
            try:
                old = read_json(self.path)
            except RunDirError as e:
                raise RunDirError(f"{e}; use a new --out directory or delete this one") from None
            if not isinstance(old, dict) or old.get("ragtune_manifest") != MANIFEST_VERSION:
                version = old.get("ragtune_version", "unknown") if isinstance(old, dict) else "unknown"
                raise RunDirError(f"{run_dir} was made by an incompatible ragtune version ({version}); "
                                  "use a new --out directory or delete this one")
            stages = old.get("stages", {})
            if not isinstance(stages, dict) or not all(
                    isinstance(e, dict) and isinstance(e.get("key"), str) and isinstance(e.get("outputs", {}), dict)
                    for e in stages.values()):
                raise RunDirError(f"{self.path} is damaged (a stage entry is not what ragtune writes); "
                                  "use a new --out directory or delete this one")
            self.data["stages"] = stages

    def stale_output(self, stage: str, key: str, outputs: list[Path]) -> str | None:
        """Why the recorded `stage` cannot be reused ("" when it never ran or its
        settings changed; a sentence when an output went missing or changed), or None."""
        entry = self.data["stages"].get(stage)
        if not entry or entry.get("key") != key:
            return ""
        digests = entry.get("outputs", {})  # absent in manifests from before digests were recorded
        # Without its check nothing vouches for the entry (an edit that dropped it, or a ragtune from
        # before checks): redo the stage rather than trust what a later step reads from it.
        if "check" not in entry:
            return f"its entry in {self.path.name} has no check digest"
        if entry["check"] != _entry_check(entry):
            return f"its entry in {self.path.name} was changed since it was written"
        # The declared outputs, then any other file the stage recorded (such as the model folder's tokenizer).
        named = [p.relative_to(self.run_dir).as_posix() for p in outputs]
        for rel in named + [r for r in digests if r not in named]:
            p = self.run_dir / rel
            if not p.exists():
                return f"{rel} is missing"
            if rel in digests:
                try:
                    same = output_digest(p) == digests[rel]
                except OSError as e:
                    return f"{rel} cannot be read ({e.strerror or e})"
                if not same:
                    return f"{rel} changed since the {stage} stage wrote it"
        return None

    def record(self, stage: str, key: str, seconds: float, info: dict[str, Any], outputs: list[Path]) -> None:
        digests = {p.relative_to(self.run_dir).as_posix(): output_digest(p) for p in outputs if p.exists()}
        entry = {"key": key, "seconds": round(seconds, 3), **info, "outputs": digests}
        self.data["stages"][stage] = entry | {"check": _entry_check(entry)}
        self.data["ragtune_version"] = __version__
        write_json(self.path, self.data)

    def info(self, stage: str) -> dict[str, Any]:
        return self.data["stages"].get(stage, {})


class RunLock:
    """run_dir/run.lock: one ragtune run at a time in a run directory.

    The file names its holder (pid, host, start time); the lock itself is an
    flock on it, which the system drops however the holder ends, kill -9
    included. A lock file left behind by a run that is gone is stale: the
    next run takes it over and says so.

    >>> import tempfile; lock = RunLock(Path(tempfile.mkdtemp()))
    >>> lock.acquire(), lock.path.exists(), lock.release(), lock.path.exists()
    (None, True, None, False)
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "run.lock"
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock, or raise RunDirError naming the run that holds it; returns a
        note when it took over a stale lock file, else None."""
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
            except OSError:
                # No flock on this file system: the holder counts as alive while its pid runs on this host.
                held = _holder_alive(_read_fd(fd))
            if held:
                # The holder writes its name just after it takes the lock: give it a moment.
                for _ in range(50):
                    if _read_fd(fd).strip():
                        break
                    time.sleep(0.02)
                holder = self._describe(_read_fd(fd))
                os.close(fd)
                raise RunDirError(f"{self.run_dir} is in use by another ragtune run ({holder}); wait for it to "
                                  "finish or use another --out directory")
            # The holder before us removes the file as it lets go: lock the file that is there now.
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        left = _read_fd(fd)
        mine = json.dumps({"pid": os.getpid(), "host": _host(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode() + b"\n", 0)
        self._fd = fd
        if not left.strip():
            return None
        return (f"took over a stale {self.path.name} left by a run that ended without releasing it "
                f"({self._describe(left)})")

    def release(self) -> None:
        if self._fd is None:
            return
        # Remove the file while still holding it, so that a waiting run sees it gone and retries.
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def _describe(self, text: str) -> str:
        try:
            holder = json.loads(text)
            return f"pid {int(holder['pid'])} on {holder['host']}, since {holder['started']}"
        except (ValueError, KeyError, TypeError):
            return f"see {self.path}"


def _host() -> str:
    import socket

    return socket.gethostname()


def _holder_alive(text: str) -> bool:
    """Whether the lock file `text` names a process running on this host (not this one)."""
    try:
        holder = json.loads(text)
        pid, host = int(holder["pid"]), holder["host"]
    except (ValueError, KeyError, TypeError):
        return False
    if host != _host() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    return True


def _read_fd(fd: int) -> str:
    return os.pread(fd, 4096, 0).decode("utf-8", errors="replace")
