"""The run directory's own files: manifest.json (what each stage recorded) and run.lock (one run at a time),
and the rule that guards every --out: ragtune deletes or overwrites only what it wrote itself.

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
from .fileio import file_digest, read_json, write_json
from .records import FORMAT_VERSION, RunDirError
from .runfiles import OLD_NAMES, WORK, RunFiles, is_old_top_name

# 2: JSONL files without a header line (their format version is recorded here), passage index, BM25 index.
MANIFEST_VERSION = 2
# The commands that write a run directory, by kind; each kind's marker file is written as the run claims the folder.
RUN_COMMANDS = {"run": "`ragtune run`", "pairs": "`ragtune pairs`"}
PAIRS_MARKER = "run.json"
# What a file manager drops into any folder it shows; such a folder still counts as empty.
_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
# A marker is a small JSON file; anything bigger is not one of ragtune's.
_MARKER_MAX_BYTES = 4 << 20


def _small_json(path: Path) -> Any:
    try:
        if not path.is_file() or path.stat().st_size > _MARKER_MAX_BYTES:
            return None
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _has_marker(folder: Path, kind: str, strict: bool = True) -> bool:
    """Whether `folder` holds the marker of a `kind` run. Not `strict`, any manifest.json counts
    (Manifest then says whether it can be used: damaged, or from another version). A folder
    that cannot be read holds none."""
    try:
        if kind == "run":
            path = RunFiles(folder).manifest  # under work/, or at the top of a folder from before work/
            if not strict:
                return path.exists() or path.is_symlink()
            data = _small_json(path)
            return isinstance(data, dict) and (
                "ragtune_manifest" in data or {"ragtune_version", "stages"} <= data.keys()
            )
        data = _small_json(folder / PAIRS_MARKER)
        # A pairs run cut off before its end (before this marker was written early) left only its trainer folder.
        return (isinstance(data, dict) and data.get("ragtune") == "pairs-run") or (
            folder / "trainer.tmp" / "ragtune_pairs_key"
        ).is_file()
    except OSError:
        return False


def run_kind(folder: Path) -> str | None:
    """ "run" or "pairs" when `folder` is a run directory ragtune wrote, else None.

    Extraction skips such folders inside DOCS, so a run never reads another run's reports.
    """
    return next((kind for kind in RUN_COMMANDS if _has_marker(folder, kind)), None)


def check_out_dir(out: Path, kind: str, docs: Path | None = None) -> None:
    """Raise RunDirError unless a `kind` run ("run" or "pairs") may write into `out`.

    ragtune deletes or overwrites only what it wrote itself, so `out` must be new,
    empty, or a run of the same kind (one that holds that kind's marker); and it may
    be neither DOCS, nor inside DOCS, nor hold DOCS. Called before any work, and
    again by `claim_out_dir` as the run starts writing.
    """
    out = Path(out)
    if docs is not None:
        _check_apart(out, Path(docs))
    if not out.is_dir():
        return  # new (or a file, which check_output and mkdir refuse in their own words)
    if _has_marker(out, kind, strict=False):
        return
    other = next((k for k in RUN_COMMANDS if k != kind and _has_marker(out, k, strict=False)), None)
    if other is not None:
        raise RunDirError(
            f"{out} holds a {RUN_COMMANDS[other]} directory; choose another --out for {RUN_COMMANDS[kind]}"
        )
    try:
        found = sorted(name for name in os.listdir(out) if name not in _CLUTTER)
    except OSError as e:
        raise RunDirError(f"cannot list --out {out} ({e.strerror or type(e).__name__}); choose another --out") from None
    if found and not _being_claimed(out, kind, found):
        shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
        raise RunDirError(
            f"--out {out} holds files ragtune did not write ({shown}); choose a new or empty folder "
            "for --out, so that none of them is overwritten or deleted"
        )


# How long a check waits for the marker of a run that is claiming the folder at this moment: two runs started
# together on one --out must meet at the run lock, where the later one hears that the folder is in use, not that
# it holds files ragtune did not write (seen under load: the other run had made work/ and not yet its manifest).
CLAIM_WAIT = 5.0


def _being_claimed(out: Path, kind: str, found: list[str]) -> bool:
    """Whether another `kind` run is claiming `out` right now: `found` is only what a claim writes before its
    marker (work/ for a run, the marker's temporary file for a pairs run), and the marker appears within
    CLAIM_WAIT seconds."""
    first = (
        (lambda n: n == WORK) if kind == "run" else (lambda n: n.startswith(f".{PAIRS_MARKER}.") and n.endswith(".tmp"))
    )
    if not all(first(name) for name in found):
        return False
    deadline = time.monotonic() + CLAIM_WAIT
    while time.monotonic() < deadline:
        if _has_marker(out, kind, strict=False):
            return True
        time.sleep(0.05)
    return _has_marker(out, kind, strict=False)


def _check_apart(out: Path, docs: Path) -> None:
    """--out may not be DOCS, lie inside it, or hold it: a run would delete the user's files, or read its own."""
    o, d = out.resolve(), docs.resolve()
    outside = f"choose an --out outside DOCS, e.g. {d.parent / 'ragtune-run'}"
    if o == d:
        raise RunDirError(
            f"--out {out} is DOCS itself, where ragtune would replace model/, checkpoints/ and its reports; {outside}"
        )
    if o.is_relative_to(d):
        raise RunDirError(
            f"--out {out} lies inside DOCS ({docs}), so every later run would read its reports as documents; {outside}"
        )
    if d.is_relative_to(o):
        raise RunDirError(
            f"DOCS ({docs}) lies inside --out {out}, where ragtune replaces files of its own; choose "
            "an --out that does not hold DOCS"
        )


def check_out_file(path: Path, flag: str, keys: frozenset[str]) -> None:
    """Raise RunDirError when `path` is a file ragtune would overwrite but did not write: one
    that is not a JSON object with all of `keys` (the shape of what ragtune writes there)."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()) or path.is_dir():
        return  # new, or a folder, which the caller refuses in its own words
    data = _small_json(path)
    if not (isinstance(data, dict) and keys <= data.keys()):
        raise RunDirError(
            f"{flag} {path} is a file ragtune did not write; choose a new file name, so that it is not overwritten"
        )


def claim_out_dir(out: Path, kind: str, docs: Path | None = None) -> None:
    """Check `out` (see `check_out_dir`), make it, and mark it as a `kind` run before anything
    else is written, so that a run cut off before its end can be rerun into it."""
    check_out_dir(out, kind, docs)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "run" and not _has_marker(out, "run", strict=False):
        Manifest(out).save()
    elif kind == "pairs" and not _has_marker(out, "pairs"):
        write_json(out / PAIRS_MARKER, {"ragtune": "pairs-run", "ragtune_version": __version__})


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


def move_to_work(run_dir: Path) -> int:
    """Move what a run folder from before work/ holds at its top (pages.jsonl, pairs_*.jsonl, checkpoints/, ...)
    under work/, give the files an older ragtune named otherwise their new names (pairs_eval.jsonl ->
    pairs_test.jsonl), and rename them in its manifest, so that its stages are reused; returns how many moved.

    A name already under work/ stays where it is (work/ wins). The manifest moves last: a move cut off
    halfway leaves it naming the old places, and the stages whose files moved run again.
    """
    try:
        names = sorted(n for n in os.listdir(run_dir) if is_old_top_name(n) and n not in ("run.lock", "manifest.json"))
    except OSError:
        return 0
    work = run_dir / WORK
    moved = 0
    for name in names:
        if not (work / name).exists():
            work.mkdir(exist_ok=True)
            os.replace(run_dir / name, work / name)
            moved += 1
    for new, old in OLD_NAMES.items():
        if (work / old).exists() and not (work / new).exists():
            os.replace(work / old, work / new)
            moved += 1
    old_manifest = run_dir / "manifest.json"
    if old_manifest.is_file() and not (work / "manifest.json").exists():
        data = read_json(old_manifest)
        for entry in data.get("stages", {}).values() if isinstance(data, dict) else ():
            _rename_outputs(entry)
        work.mkdir(exist_ok=True)
        write_json(work / "manifest.json", data)
        old_manifest.unlink()
        moved += 1
    elif (work / "manifest.json").is_file():
        _rename_old_outputs(work / "manifest.json")
    return moved


def _rename_old_outputs(path: Path) -> None:
    """Rewrite work/manifest.json where its outputs still name a file by its old name (`OLD_NAMES`)."""
    try:
        data = read_json(path)
    except RunDirError:
        return  # Manifest names the damage when it reads the file
    entries = list(data.get("stages", {}).values()) if isinstance(data, dict) else []
    before = json.dumps(entries)
    for entry in entries:
        _rename_outputs(entry)
    if json.dumps(entries) != before:
        write_json(path, data)


def _new_rel(rel: str) -> str:
    """Where a manifest's output path lies now: under work/, and by its new name."""
    parts = rel.split("/")
    if is_old_top_name(parts[0]):
        parts.insert(0, WORK)
    if len(parts) == 2 and parts[0] == WORK:
        parts[1] = {old: new for new, old in OLD_NAMES.items()}.get(parts[1], parts[1])
    return "/".join(parts)


def _rename_outputs(entry: Any) -> None:
    """Point a manifest entry's outputs at work/ and the new names; its check digest stays valid only where it
    was valid."""
    if not isinstance(entry, dict) or not isinstance(entry.get("outputs"), dict):
        return
    valid = "check" in entry and entry["check"] == _entry_check(entry)
    entry["outputs"] = {_new_rel(rel): digest for rel, digest in entry["outputs"].items()}
    if valid:
        entry["check"] = _entry_check(entry)


class Manifest:
    """run_dir/manifest.json: format version, ragtune version, and per-stage keys and timings."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunFiles(run_dir).manifest
        self.run_dir = run_dir
        self.data: dict[str, Any] = {
            "ragtune_manifest": MANIFEST_VERSION,
            "ragtune_version": __version__,
            "jsonl_format": FORMAT_VERSION,
            "stages": {},
        }
        if self.path.exists():
            try:
                old = read_json(self.path)
            except RunDirError as e:
                raise RunDirError(f"{e}; use a new --out directory or delete this one") from None
            if not isinstance(old, dict) or old.get("ragtune_manifest") != MANIFEST_VERSION:
                version = old.get("ragtune_version", "unknown") if isinstance(old, dict) else "unknown"
                raise RunDirError(
                    f"{run_dir} was made by an incompatible ragtune version ({version}); "
                    "use a new --out directory or delete this one"
                )
            stages = old.get("stages", {})
            if not isinstance(stages, dict) or not all(
                isinstance(e, dict) and isinstance(e.get("key"), str) and isinstance(e.get("outputs", {}), dict)
                for e in stages.values()
            ):
                raise RunDirError(
                    f"{self.path} is damaged (a stage entry is not what ragtune writes); "
                    "use a new --out directory or delete this one"
                )
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
        self.save()

    def save(self) -> None:
        self.data["ragtune_version"] = __version__
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        self.path = RunFiles(run_dir).lock
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock, or raise RunDirError naming the run that holds it; returns a
        note when it took over a stale lock file, else None."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
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
                raise RunDirError(
                    f"{self.run_dir} is in use by another ragtune run ({holder}); wait for it to "
                    "finish or use another --out directory"
                )
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
        return (
            f"took over a stale {self.path.name} left by a run that ended without releasing it ({self._describe(left)})"
        )

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
