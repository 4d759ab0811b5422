"""What the Trainer calls back into while it trains: progress, stopping on a signal, and marking
each checkpoint complete once it is written."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from .checkpoints import mark_complete, scan_checkpoints

Progress = Callable[[int, int], None]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM; `saved` says whether a complete checkpoint is there to resume from
    (a second signal stops at once, possibly before any was written)."""

    def __init__(self, signum: int, saved: bool = True) -> None:
        super().__init__(
            f"training stopped by signal {signum}; "
            + ("a checkpoint was saved" if saved else "no checkpoint was saved")
        )
        self.signum = signum
        self.saved = saved


class StopOnSignal:
    """While training: the first SIGINT/SIGTERM asks the Trainer to save a
    checkpoint and stop after the current step; a second one stops at once."""

    def __init__(self, work_dir: Path | None = None) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        # Where the checkpoints go: a second signal says whether one is there to resume from.
        self.work_dir = work_dir

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            # A second signal: stop now; a rerun resumes from the last checkpoint saved, if any.
            saved = self.work_dir is not None and scan_checkpoints(self.work_dir)[0] is not None
            raise TrainingInterrupted(signum, saved=saved)
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def callback(self) -> StopAfterStep:
        return StopAfterStep(self)


class StopAfterStep(TrainerCallback):
    """Saves a checkpoint and ends training after the step in which `stopper` caught a signal."""

    def __init__(self, stopper: StopOnSignal) -> None:
        self.stopper = stopper

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.stopper.signum is not None:
            control.should_save = True
            control.should_training_stop = True


class MarkComplete(TrainerCallback):
    """Marks each checkpoint complete (`mark_complete`) once the Trainer has written it."""

    # on_save runs right after the Trainer has written (and rotated) a checkpoint.
    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        # Under torchrun every rank gets on_save; only the one that wrote the checkpoint marks it.
        if state.is_world_process_zero and folder.is_dir():
            mark_complete(folder, state.global_step)


class ReportProgress(TrainerCallback):
    """Hands the steps done and the steps in all to `progress`, the Trainer's only way to report."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.progress:
            self.progress(state.global_step, state.max_steps)


class StopAtDeadline(TrainerCallback):
    """Ends training once the next step would end past `deadline` (a time.perf_counter() value), saving the
    last step and, where training is validated, scoring it: a time budget holds even when steps run slower
    than the plan measured them (a busy machine, longer questions). `stopped_at` is the step it stopped at."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.began: float | None = None
        self.steps = 0
        self.stopped_at: int | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.began is None:
            self.began = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.steps += 1
        now = time.perf_counter()
        # The mean step so far, validation and checkpoints included (they run between steps).
        step = (now - (self.began or now)) / self.steps
        if now + step > self.deadline and state.global_step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = getattr(args.eval_strategy, "value", args.eval_strategy) != "no"
            self.stopped_at = state.global_step
