"""Typed records that flow between stages, and their JSONL form.

A JSONL file holds one record per line and nothing else, so pandas
(`read_json(lines=True)`) and datasets (`load_dataset("json")`) read it as it is:

    {"id": "c-1a2b…", "source": "a.pdf", "pages": [3], "text": "…", "n_tokens": 211, "themes": []}

The format version lives in the run's manifest.json (and index/retriever.json).
Reading checks every record's fields, so a foreign file, or one written by
ragtune 0.2 (whose first line was a `{"ragtune": kind, "version": 1}` header),
fails with a clear message instead of a KeyError.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TypeVar

from .errors import DiskFullError, RunDirError

# 2: records only (1 had a header line).
FORMAT_VERSION = 2


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
        raise DiskFullError(f"not enough disk space in {folder}: {what} needs about {megabytes(need)}, "
                            f"{megabytes(free)} is free; free some space (or use --out on a bigger disk) "
                            "and rerun the same command")


def file_digest(path: Path) -> str:
    """Size and BLAKE2b digest of a file's bytes, as recorded in the manifest for each stage output.

    A file that changed after its stage wrote it (truncated, overwritten) no longer matches.
    """
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"{path.stat().st_size}:{h.hexdigest()}"


@dataclass(frozen=True)
class Page:
    """One page of text from one source file (page numbers start at 1)."""

    source: str
    page: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A piece of a document sized to fit the model; pairs point at it by `id`."""

    id: str
    source: str
    pages: tuple[int, ...]
    text: str
    n_tokens: int
    themes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pair:
    """A synthetic (or labelled) question that should retrieve chunk `chunk_id`.

    `kind` says how the question was made (e.g. "keyphrase", "cloze") so that
    metrics can be broken down by question style.
    """

    query: str
    chunk_id: str
    generator: str
    kind: str = ""


@dataclass(frozen=True)
class LabelledPair:
    """Two texts and a similarity label in [0, 1]."""

    sentence1: str
    sentence2: str
    label: float


R = TypeVar("R")

_KINDS: dict[str, type] = {
    "page": Page,
    "chunk": Chunk,
    "pair": Pair,
    "labelled_pair": LabelledPair,
}


def _kind_of(cls: type) -> str:
    for name, c in _KINDS.items():
        if c is cls:
            return name
    raise ValueError(f"not a record type: {cls!r}")


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


def _to_json(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def _from_json(cls: type[R], obj: dict[str, Any]) -> R:
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in obj:
            value = obj[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def write_jsonl(path: Path, records: Iterable[Any], cls: type) -> int:
    """Write records of type `cls`, one JSON object a line; returns the count."""
    _kind_of(cls)
    lines = [json.dumps(_to_json(r), ensure_ascii=False) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def read_jsonl(path: Path, cls: type[R]) -> list[R]:
    """Read records written by `write_jsonl`, checking that each has the fields of `cls`."""
    kind = _kind_of(cls)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing") from None
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not a ragtune {kind} file (not UTF-8 text)") from None
    required = {f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunDirError(f"{path}:{n}: unreadable {kind} record ({e.msg})") from None
        if n == 1 and isinstance(obj, dict) and "ragtune" in obj:
            raise RunDirError(f"{path} was written in format version {obj.get('version')!r} (a header line); this "
                              f"ragtune reads version {FORMAT_VERSION}; rerun with a fresh --out directory")
        if not isinstance(obj, dict) or not required <= obj.keys():
            missing = sorted(required - obj.keys()) if isinstance(obj, dict) else sorted(required)
            what = f"not a ragtune {kind} file" if not records else f"unreadable {kind} record"
            raise RunDirError(f"{path}:{n}: {what} (missing {', '.join(missing)})")
        try:
            records.append(_from_json(cls, obj))
        except TypeError as e:
            raise RunDirError(f"{path}:{n}: unreadable {kind} record ({e})") from None
    return records


@dataclass
class SkipCounter:
    """Counts of things skipped or dropped, keyed by reason, with examples.

    Stages return one of these so nothing is dropped silently:

    >>> c = SkipCounter(); c.add("empty page", "a.pdf p3"); c.counts
    {'empty page': 1}
    """

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, example: str = "", n: int = 1) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n
        if example:
            ex = self.examples.setdefault(reason, [])
            if len(ex) < 5:
                ex.append(example)

    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "examples": {k: list(v) for k, v in self.examples.items()}}
