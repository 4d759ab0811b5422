"""What a stage is (`Stage`) and what it may use of the run it is part of (`Run`)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from ..config import Config
from ..extract import Listing
from ..runfiles import RunFiles
from ..training.deadline import Deadline

# Do not record: a result's field that only the runner or a later stage of the same run reads.
UNRECORDED = {"recorded": False}
# Recorded only when set: a field older manifests, or some runs, do not have.
OPTIONAL = {"optional": True}

R = TypeVar("R", bound="StageResult")


class StageResult:
    """What a stage made, as a dataclass: its manifest record is its fields in order ("summary" among them),
    but those marked UNRECORDED, and those marked OPTIONAL that are None. A stage reused from the manifest
    is read back with `from_record`, so that later stages read the same fields either way."""

    def record(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("recorded", True) and not (f.metadata.get("optional") and value is None):
                out[f.name] = value
        return out

    @classmethod
    def from_record(cls: type[R], record: dict[str, Any]) -> R:
        """The result a manifest record holds; a field an older record lacks is None."""
        recorded = [f.name for f in fields(cls) if f.metadata.get("recorded", True)]  # type: ignore[arg-type]
        return cls(**{name: record.get(name) for name in recorded})


# What the stages that ran (or were reused) before made, by stage name: a stage's StageResult, or for a
# stage that returns a plain dict (as a stage added from outside may), its manifest record.
Records = dict[str, Any]


class Run(Protocol):
    cfg: Config
    run_dir: Path
    files: RunFiles
    # The documents the run reads, listed once before the run directory was claimed.
    listing: Listing

    # The key of the stage now running, which the runner sets (training checkpoints carry it, to be
    # resumed only by the same stage); "" while a stage keyed by the documents it reads runs.
    @property
    def key(self) -> str: ...

    def path(self, name: str) -> Path: ...
    # "base" or "tuned", loaded once per run, with the max_seq_length the chunks need.
    def model(self, which: str) -> Any: ...
    # The max_seq_length that model has of its own, before the run raised it to fit the chunks.
    def default_length(self, which: str) -> int: ...
    def progress_for(self, stage: str) -> Callable[[int, int], None]: ...
    # When training ends to keep --time-budget, and how many more steps it may take (None: no budget).
    def training_deadline(self) -> Deadline | None: ...
    def note(self, message: str) -> None: ...
    # Whether `e` means the disk filled up; `need` is (what, bytes) the stage still had to write.
    def is_disk_full(self, e: Exception, need: tuple[str, int] | None = None) -> bool: ...
    # The one-line DiskFullError for `e`, saying what was needed when known.
    def disk_full_error(self, e: Exception, need: tuple[str, int] | None = None) -> Exception: ...
    def lexicon(self) -> dict[str, list[str]]: ...


def _none(files: RunFiles) -> list[Path]:
    return []


def _no_problem(files: RunFiles) -> str | None:
    return None


@dataclass(frozen=True)
class Stage:
    """One stage of `ragtune run`, as the runner (ragtune.pipeline) needs to know it.

    The runner keys the stage with the key of the stage before it and `settings` (the Config fields its
    output depends on), and reuses its record while `outputs` are still the files it wrote.
    """

    name: str
    settings: tuple[str, ...]
    # The files whose size and digest the manifest records: a rerun redoes the stage when one changed.
    outputs: Callable[[RunFiles], list[Path]]
    # Does the work: returns its StageResult (or a dict: the manifest record as it is), whose record holds a
    # "summary" line and its figures. Records are the earlier stages'; under this stage's own name, what
    # `inputs` made, when it has that hook.
    run: Callable[[Run, Records], Any]
    # Outputs the user or a later command may change (the model card): they only have to exist.
    edited: Callable[[RunFiles], list[Path]] = _none
    # What is wrong with the outputs besides their digests (None: nothing).
    problem: Callable[[RunFiles], str | None] = _no_problem
    # More files `run` wrote, named after it ran: their digests are recorded and checked too.
    written: Callable[[RunFiles], list[Path]] = _none
    # What the key hashes in place of the settings, made from the earlier stages' records (the save
    # stage: the run summary); None keys the stage by its settings.
    inputs: Callable[[Run, Records], Any] | None = None
    # Its record's "skipped" counts the user's input files: the reporter's input_skipped hears of them.
    input_skips: bool = False
    # The StageResult its run returns, to read its manifest record back with when it is reused.
    result: type[StageResult] | None = None
    # The models (Run.model's names) it saves anew: once it ran, the runner drops the copy it holds in
    # memory, so that later stages load what was saved.
    replaces: tuple[str, ...] = ()
