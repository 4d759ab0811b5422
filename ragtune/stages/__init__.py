"""The eight stages of `ragtune run`, one module each, in the order they run.

Each module's `run_stage(run)` does one stage's work in the run directory and
returns what the manifest records for it (a "summary" line and its figures).
The save stage's is `run_stage(run, summary, metrics)`: `save.summary(run, **infos)`
first gathers what the card and report show from the other stages' records.
Which Config fields each stage depends on is declared in pipeline.STAGE_SETTINGS.
`run` is what a stage may use of the run (the Pipeline provides it); stages never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

from ..config import Config


class Run(Protocol):
    cfg: Config
    run_dir: Path
    # The models loaded so far ("base", and "tuned" once the train stage has set it) and the
    # max_seq_length each had before the run raised it to fit the chunks.
    models: dict[str, Any]
    default_lengths: dict[str, int]
    # The key of the stage now running (training checkpoints carry it, to be resumed only by the same stage).
    key: str
    # What the train stage still has to write, (what, bytes), for a disk-full message.
    space: tuple[str, int] | None

    def path(self, name: str) -> Path: ...
    def model(self, which: str) -> Any: ...
    def progress_for(self, stage: str) -> Callable[[int, int], None]: ...
    def note(self, message: str) -> None: ...
    def is_disk_full(self, e: Exception) -> bool: ...
    def lexicon(self) -> dict[str, list[str]]: ...
