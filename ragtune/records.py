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
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TypeVar

from .errors import RunDirError
from .fileio import atomic_write_text

# 2: records only (1 had a header line).
FORMAT_VERSION = 2


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
    required = {
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    records = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RunDirError(f"{path}:{n}: unreadable {kind} record ({e.msg})") from None
        if n == 1 and isinstance(obj, dict) and "ragtune" in obj:
            raise RunDirError(
                f"{path} was written in format version {obj.get('version')!r} (a header line); this "
                f"ragtune reads version {FORMAT_VERSION}; rerun with a fresh --out directory"
            )
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
