"""The stages of `ragtune run`, one module each, listed in PIPELINE in the order they run.

Each module declares its stage as `STAGE = Stage(name, settings, outputs, run)` (ragtune.stages.base):
the Config fields its output depends on, the files it writes, and the function that does its work in
the run directory and returns what the manifest records (a "summary" line and its figures). The runner,
ragtune.pipeline, numbers and keys them from this list; adding a stage is one module and one line here.
`run` is what a stage may use of the run (the Pipeline provides it); stages never print.
"""

from __future__ import annotations

from . import chunk, evaluate, extract, generate, save, split, theme, train
from .base import Records, Run, Stage

PIPELINE: tuple[Stage, ...] = (
    extract.STAGE,
    chunk.STAGE,
    theme.STAGE,
    generate.STAGE,
    split.STAGE,
    train.STAGE,
    evaluate.STAGE,
    save.STAGE,
)

__all__ = ["PIPELINE", "Records", "Run", "Stage"]
