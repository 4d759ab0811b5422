"""What the Trainer calls back into while it trains: progress, stopping on a signal, and marking
each checkpoint complete once it is written."""

from __future__ import annotations

import math
import signal
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from .checkpoints import mark_complete, scan_checkpoints
from .deadline import Deadline, stretched_steps

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
    """Ends training once the next step would end past the deadline, saving the last step and, where training
    is validated, scoring it: a time budget holds even when steps run slower than the plan measured them (a
    busy machine, longer questions). `stopped_at` is the step it stopped at.

    Steps that run faster than planned stretch training instead: once the first checkpoint is written (its cost
    is then known), the steps that fit before the deadline at the pace measured (`stretched_steps`, at most the
    deadline's `most_steps` and the configured epochs) become the steps to train, with the learning
    rate's schedule and the checkpoints spread over them. `stretched_from` is then the steps that were planned.

    The Trainer's loop runs the epochs its max_steps hold and no more, so a stretch could not go past the last
    epoch of the planned steps (with 22 steps an epoch, none at all from 66 planned). run_trainer therefore sets
    the Trainer out for the deadline's most steps and gives the planned ones as `hold_to`: from its first step
    training holds to those, with their schedule and checkpoints, until it stretches. (The Trainer's own
    "Total optimization steps" log line and train_samples_per_second still count the steps set out for.)"""

    def __init__(self, deadline: Deadline, hold_to: int = 0) -> None:
        self.deadline = deadline
        self.hold_to = hold_to
        self.began: float | None = None
        self.steps = 0
        # The end of the first step (which pays for allocations once) and of the last one, and the seconds that
        # went to checkpoints (scoring and saving, between a step's end and the next one's beginning).
        self.first_end = self.last_end = 0.0
        self.checkpointing = 0.0
        self.saves = 0
        self.saving = False
        self.stopped_at: int | None = None
        self.stretched_from: int | None = None
        self.decided = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if 0 < self.hold_to < state.max_steps:
            # ragtune's schedule is transformers' linear one. A schedule of another make would keep the end and the
            # warm-up of the steps set out for (and never stretch); the steps hold all the same.
            _stretch_schedule(kw.get("lr_scheduler"), self.hold_to, args.get_warmup_steps(self.hold_to))
            _set_steps(args, state, self.hold_to)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        now = time.perf_counter()
        if self.began is None:
            self.began = now
        if self.saving:
            self.checkpointing += now - self.last_end
            self.saving = False

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.saves += 1
        self.saving = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.steps += 1
        now = self.last_end = time.perf_counter()
        if self.steps == 1:
            self.first_end = now
        # The mean step so far, validation and checkpoints included (they run between steps).
        step = (now - (self.began or now)) / self.steps
        if now + step > self.deadline.at and state.global_step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = getattr(args.eval_strategy, "value", args.eval_strategy) != "no"
            self.stopped_at = state.global_step
        elif (
            not self.decided and self.saves and not self.saving and self.steps > 1 and not control.should_training_stop
        ):
            # (Decided on the last step, after the Trainer's flow has ended training, a stretch would not be trained.)
            self.decided = True
            self._stretch(args, state, now, kw.get("lr_scheduler"), kw.get("train_dataloader"))

    def _stretch(self, args: Any, state: Any, now: float, scheduler: Any, dataloader: Any) -> None:
        """Take as many steps as fit before the deadline at the pace so far (see the class)."""
        # The Trainer's loop ends with the epochs it computed from the steps it was set out for (run_trainer): no
        # more steps than those hold.
        per_epoch = len(dataloader) // max(1, args.gradient_accumulation_steps) if dataloader is not None else 0
        # Nor more epochs than the run was set to train (the Trainer rounds them up to whole ones).
        most = min(
            self.deadline.most_steps,
            int(state.num_train_epochs) * per_epoch,
            math.ceil(args.num_train_epochs * per_epoch),
        )
        if most <= state.max_steps:
            return
        # A step's pace since the first one ended, loading its batch included; checkpoints apart.
        pace = (now - self.first_end - self.checkpointing) / (self.steps - 1)
        share = args.save_steps if args.save_steps and args.save_steps < 1 else 0
        # The checkpoints still to come: the rest of the shares, and the last step's when it falls between them.
        left = max(1, round(1 / share) - self.saves + 1) if share else 1
        checkpoint = self.checkpointing / self.saves
        steps = stretched_steps(
            state.max_steps, state.global_step, pace, checkpoint, left, self.deadline.at - now, most
        )
        if steps > state.max_steps and _stretch_schedule(scheduler, steps):
            self.stretched_from = state.max_steps
            _set_steps(args, state, steps)


def _set_steps(args: Any, state: Any, steps: int) -> None:
    """Train `steps` in all, with checkpoints and logging set as a share of the steps that share of these."""
    state.max_steps = steps
    for kind in ("logging", "eval", "save"):
        part = getattr(args, f"{kind}_steps")
        if part is not None and 0 < part < 1:
            setattr(state, f"{kind}_steps", math.ceil(steps * part))


def _stretch_schedule(scheduler: Any, steps: int, warmup: int | None = None) -> bool:
    """Set the Trainer's learning-rate schedule (transformers' partial(lambda, num_training_steps=...) in a
    LambdaLR) to end at `steps`, and where given its warm-up at `warmup` steps; False, changing nothing, for a
    schedule of another make."""
    scheduler = getattr(scheduler, "scheduler", scheduler)  # accelerate's wrapper, where there is one
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if not lambdas or not all(isinstance(f, partial) and "num_training_steps" in f.keywords for f in lambdas):
        return False
    if warmup is not None and not all("num_warmup_steps" in f.keywords for f in lambdas):
        return False
    keywords = {"num_training_steps": steps} | ({"num_warmup_steps": warmup} if warmup is not None else {})
    scheduler.lr_lambdas = [partial(f.func, *f.args, **(f.keywords | keywords)) for f in lambdas]
    return True
