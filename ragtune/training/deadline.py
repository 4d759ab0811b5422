"""When budgeted training must end, and how many steps fit before then at the pace training really runs.

A time budget's plan prices a training step from a short warm-up. On a shared machine that price can be off by
2x either way: a run planned at 28 s a step whose steps took 13-16 s ended 11 minutes inside its 30-minute
budget. Training that runs slower is cut at the deadline (callbacks.StopAtDeadline); training that runs faster
takes more steps in the same time (`stretched_steps`), with the learning-rate schedule stretched to match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """Training ends by `at` (a time.perf_counter() value); run faster than planned, it may take more steps
    than planned, up to `most_steps` (0: never more)."""

    at: float
    most_steps: int = 0


# Of the time left, the share more steps may take: the steps measured so far may be a quiet spell.
STRETCH_SHARE = 0.9


def stretched_steps(
    planned: int,
    done: int,
    step_seconds: float,
    checkpoint_seconds: float,
    checkpoints_left: int,
    seconds_left: float,
    most: int,
) -> int:
    """The steps training takes in all when, after `done` of `planned` steps, a step takes `step_seconds`, each
    of the `checkpoints_left` checkpoints still to come `checkpoint_seconds`, and `seconds_left` remain before
    the deadline: as many as STRETCH_SHARE of the time left holds, at most `most`, never fewer than planned
    (the deadline cuts training that runs slower).

    >>> stretched_steps(30, 9, step_seconds=14.0, checkpoint_seconds=20.0, checkpoints_left=3, seconds_left=700.0, most=354)
    49
    >>> stretched_steps(30, 9, 14.0, 20.0, 3, 700.0, most=40)
    40
    >>> stretched_steps(30, 9, 28.0, 20.0, 3, 500.0, most=354)
    30
    """
    room = STRETCH_SHARE * seconds_left - checkpoints_left * checkpoint_seconds
    fit = done + math.floor(room / step_seconds) if step_seconds > 0 else planned
    return max(planned, min(most, fit))
