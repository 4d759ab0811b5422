"""Time (wall and CPU) and peak memory of each stage, for metrics.json's "stages".

Peak memory is the process's peak resident set (VmHWM) since the stage started: Linux lets a process
reset that peak (/proc/self/clear_refs, 5). Elsewhere the peak since the process started is recorded,
and "peak_rss_since" says so.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Start measuring the peak resident set afresh; False where the system cannot (the peak is then the process's)."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def status_mib(field: str) -> float:
    """A memory field of this process's /proc/self/status in MiB: VmRSS, resident now; VmHWM, its peak since
    reset_peak(). OSError where there is no /proc, LookupError where it has no such field."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise LookupError(f"no {field} in {_STATUS}")


def peak_rss_mib() -> float:
    """The peak resident set in MiB, since the last reset_peak() where it worked."""
    try:
        return status_mib("VmHWM")
    except (OSError, LookupError):
        pass  # no /proc: getrusage below gives the peak since the process started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kB on Linux, in bytes on macOS.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class StageCosts:
    """Seconds and peak resident MiB of each stage that ran, in order."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float | bool | str]] = {}
        self._reset = False
        self._cpu = 0.0

    def start(self) -> None:
        self._reset = reset_peak()
        self._cpu = time.process_time()

    def end(self, name: str, seconds: float) -> None:
        self.rows[name] = {
            "seconds": round(seconds, 2),
            # CPU seconds of this process (all its threads): on a shared machine they grow with the work,
            # where wall seconds also grow with what else runs.
            "cpu_seconds": round(time.process_time() - self._cpu, 2),
            "peak_rss_mib": round(peak_rss_mib(), 1),
            "peak_rss_since": "stage start" if self._reset else "process start",
        }

    def merged(self, earlier: dict | None, names: list[str]) -> dict[str, dict]:
        """This run's rows, and for the stages it reused, the row an earlier run recorded, marked "reused"."""
        earlier = earlier if isinstance(earlier, dict) else {}
        out: dict[str, dict] = {}
        for name in names:
            if name in self.rows:
                out[name] = self.rows[name]
            elif isinstance(earlier.get(name), dict):
                out[name] = {**earlier[name], "reused": True}
        return out
