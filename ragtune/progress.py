"""How a run shows what it is doing: a stage line each, and a progress bar with an ETA in between.

`ProgressReporter` draws the bars with tqdm.auto, so they work in a terminal and in a
Jupyter notebook alike; `Pipeline(cfg, progress=True)` uses it, and so does the CLI.
Off a terminal (a CI log, a file) it writes a plain line with the time left at most every 30 s instead.

A stage reports progress through the callback `Pipeline.progress_for(stage)` hands its
work: `progress(done, total)`, in any unit (files, chunks, steps, texts).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

from .extract.skips import SKIP_EXCLUDED, describe_skips

Progress = Callable[[int, int], None]

# The unit each stage counts its progress in, for the bar.
UNITS = {
    "extract": "file",
    "chunk": "doc",
    "generate": "chunk",
    "split": "chunk",
    "train": "step",
    "evaluate": "text",
    "save": "file",
}


class ProgressReporter:
    """One line per stage (its time and summary), and while it runs a tqdm bar with rate and ETA."""

    def __init__(self, stream: Any = None, mininterval: float | None = None, verbose: bool = False) -> None:
        """`mininterval`: seconds between redraws (default 0.5 on a terminal, 30 in a log); `verbose`: also warn
        about the files left out on purpose (excluded), which the extract stage's line only counts."""
        self.stream = stream if stream is not None else sys.stderr
        self.verbose = verbose
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mininterval = mininterval if mininterval is not None else (0.5 if self.tty else 30.0)
        self._bar: Any = None
        self._started: float | None = None
        self._last = 0.0
        self._logged = False
        self.prefix = ""

    def stage_start(self, name: str, index: int, total: int) -> None:
        self.prefix = f"[{index}/{total}] {name:<9}"

    def stage_progress(self, name: str, done: int, total: int) -> None:
        if not (self.tty or _notebook_widgets()):
            self._log_line(name, done, total)
            return
        if self._bar is None or self._bar.total != total:
            self._close()
            from tqdm.auto import tqdm

            # tqdm is off when TQDM_DISABLE is set (the CLI quiets other libraries' bars that way): this one is ours.
            self._bar = tqdm(
                total=total,
                desc=self.prefix.rstrip(),
                unit=UNITS.get(name, "it"),
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
                disable=False,
                mininterval=self.mininterval,
            )
        self._bar.update(done - self._bar.n)

    def _log_line(self, name: str, done: int, total: int) -> None:
        """Off a terminal (a CI log): a plain line with the rate and time left, at most every `mininterval` s."""
        now = time.monotonic()
        if self._started is None or done == 0:
            self._started, self._last, self._logged = now, now, False
            return
        # The first step is shown at once (the stage is moving), then one line every `mininterval` seconds.
        if (self._logged and now - self._last < self.mininterval) or done >= total:
            return
        self._last, self._logged = now, True
        elapsed = now - self._started
        left = elapsed / done * (total - done)
        self.write(
            f"{self.prefix} {done}/{total} {UNITS.get(name, 'it')}s, {_clock(elapsed)} elapsed, "
            f"about {_clock(left)} left"
        )

    def stage_abort(self, name: str) -> None:
        """The stage raised: clear its bar so the error line stands alone."""
        self._close()

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        self._close()
        when = "unchanged, reused" if cached else f"{seconds:6.1f}s"
        self.write(f"{self.prefix} {when:>18}  {summary}")

    def input_skipped(self, skipped: dict[str, Any]) -> None:
        """One counted warning line per reason a file, page or line of the input was skipped; the files left out
        on purpose (excluded) only when verbose, since the extract stage's line counts them."""
        if not self.verbose:
            skipped = {**skipped, "counts": {r: n for r, n in skipped.get("counts", {}).items() if r != SKIP_EXCLUDED}}
        for line in describe_skips(skipped):
            self.write(f"warning: {line}")

    def note(self, message: str) -> None:
        """One line about something the run repaired or redid (a skipped checkpoint, a changed file)."""
        self._close()
        self.write(f"note: {message}")

    def plan(self, line: str) -> None:
        """The run's plan and estimated time, before it generates questions and trains."""
        self._close()
        self.write(line)

    def write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def _close(self) -> None:
        self._started = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _notebook_widgets() -> bool:
    """In a Jupyter kernel with ipywidgets, tqdm.auto draws a live bar; without them it would only warn."""
    if "ipykernel" not in sys.modules:
        return False
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def _clock(seconds: float) -> str:
    """
    >>> _clock(75), _clock(3725)
    ('1:15', '1:02:05')
    """
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Parts:
    """Several pieces of one stage's work (encode the chunks, then the questions, ...) shown as one bar.

    >>> seen = []
    >>> parts = Parts(lambda done, total: seen.append((done, total)), total=5)
    >>> first, second = parts.part(), parts.part()
    >>> first(3, 3); second(2, 2); seen
    [(3, 5), (5, 5)]
    """

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def part(self) -> Progress:
        start: list[int | None] = [None]

        def report(done: int, _total: int) -> None:
            if start[0] is None:
                start[0] = self.done
            self.done = start[0] + done
            self.progress(min(self.done, self.total), self.total)

        return report
