"""Faults a run has to survive: Ctrl-C or a signal, a full disk, kill -9 during training, two runs on one --out.

Each ends in one clear line (or a note), nothing already done is lost, and the
same command then completes. The disk is a real small tmpfs where this user
may mount one (root); tests/test_pipeline.py covers a full disk with a patched
writer everywhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import assert_one_error_line
from test_pipeline import Recorder, tiny_config, write_docs

from ragtune import Pipeline
from ragtune.cli import main
from ragtune.errors import DiskFullError, RagtuneError
from ragtune.pipeline import STAGES
from ragtune.records import Page
from tests.support.runs import good_docs, run_args, training_args
from tests.support.signals import ragtune_env, signal_when, start

REPO = Path(__file__).resolve().parents[1]
SEED = 20240615


def _args(docs: Path, out: Path, model_dir: Path, steps: int = 4) -> list[str]:
    return training_args(docs, out, model_dir, steps, "--validations", str(steps))


def _env(tmp_path: Path) -> dict[str, str]:
    return ragtune_env(tmp_path)


def _reused(err: str) -> list[str]:
    return [s for s in STAGES if any(f"] {s}" in line and "unchanged, reused" in line for line in err.splitlines())]


class Disk:
    """A mounted tmpfs that can be grown, as a user frees space."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, megabytes: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={megabytes}m", str(self.path)], check=True)

    def fill(self, leave: int) -> Path:
        """Take all but `leave` bytes of the free space, for real (fallocate), as another program would."""
        filler = self.path / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.posix_fallocate(fd, 0, max(1, shutil.disk_usage(self.path).free - leave))
        finally:
            os.close(fd)
        return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Disk]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield Disk(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def docs(tmp_path: Path, nist_pages: list[Page]) -> Path:
    return write_docs(tmp_path / "docs", nist_pages)


# --- a full disk ----------------------------------------------------------------------


def test_too_small_disk_stops_before_training_with_one_line(
    small_disk: Disk, docs: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_disk.path / "run"
    args = _args(docs, out, tiny_model_dir)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    # The model is 4 MB; a checkpoint holds it three times over (weights and AdamW's two moments).
    assert last.startswith(f"ragtune: error: not enough disk space in {out}: training (checkpoints of about 1"), err
    assert "MB, up to 3 at a time, and the " in last and " MB is free; free some space" in last
    assert not (out / "model").exists() and not (out / "work" / "checkpoints" / "checkpoint-1").exists()
    # Space is freed: the same command goes on from training, keeping the stages before it.
    small_disk.resize(200)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert _reused(err) == ["extract", "chunk", "theme", "generate", "split"], err
    assert (out / "model" / "model.safetensors").is_file()


def test_disk_filling_up_during_training(small_disk: Disk, docs: Path, tiny_model_dir: Path) -> None:
    small_disk.resize(200)
    cfg = tiny_config(docs, small_disk.path / "run", tiny_model_dir).replace(max_steps=4, evals=4, patience=0)
    filled: list[Path] = []

    class FillsTheDisk(Recorder):
        def stage_progress(self, name: str, done: int, total: int) -> None:
            super().stage_progress(name, done, total)
            if name == "train" and done == 1 and not filled:
                filled.append(small_disk.fill(leave=64_000))

    with pytest.raises(DiskFullError) as e:
        Pipeline(cfg, FillsTheDisk()).run()
    assert isinstance(e.value, RagtuneError)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"no space left on the disk of {cfg.out}"), msg
    assert "training (checkpoints of about" in msg and "needs about" in msg and "MB is free now" in msg
    # The checkpoint it was writing gave its space back: only complete ones, if any, are left.
    from ragtune.training.checkpoints import scan_checkpoints

    assert scan_checkpoints(cfg.out / "work" / "checkpoints")[1] == []
    filled[0].unlink()
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == ["extract", "chunk", "theme", "generate", "split"]
    assert result.summary["train"]["steps"] == 4


# --- kill -9 during training ----------------------------------------------------------


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        if line.startswith(prefix):
            return
        assert time.monotonic() < deadline, f"no {prefix!r} line in {timeout}s"
    pytest.fail(f"the run ended (code {proc.wait()}) before a {prefix!r} line")


def test_kill_9_at_a_random_moment_of_training_loses_nothing(
    tmp_path: Path, docs: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = _args(docs, out, tiny_model_dir, steps=8)
    rng = random.Random(SEED)
    killed_at = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragtune", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        # Training starts right after the split stage's line.
        _wait_for_line(proc, "[5/8] split", timeout=120)
        delay = rng.uniform(0.5, 6.0)
        time.sleep(delay)
        killed_at.append(round(delay, 2))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert not (out / "metrics.json").exists(), f"a run finished before its kill (after {killed_at} s)"
    # Whatever the kill left (a checkpoint cut off mid-write, a half-saved model, a lock file),
    # the same command completes.
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert _reused(err)[:5] == ["extract", "chunk", "theme", "generate", "split"], err
    train = json.loads((out / "work" / "manifest.json").read_text())["stages"]["train"]
    assert train["steps"] == 8, (killed_at, err)
    assert (out / "model" / "model.safetensors").is_file()
    assert (
        not (out / "work" / "checkpoints").exists()
        and not (out / "work" / "model.tmp").exists()
        and not (out / "work" / "run.lock").exists()
    )


# --- two runs on one --out ------------------------------------------------------------


def test_a_folder_another_run_is_claiming_waits_for_its_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from ragtune import rundir
    from ragtune.records import RunDirError

    # The other run has made work/ and writes its manifest a moment later (under load, the race the CI saw):
    # the check waits for it, so both runs meet at the lock instead of one calling the folder someone else's.
    out = tmp_path / "run"
    (out / "work").mkdir(parents=True)
    writer = threading.Timer(0.3, lambda: rundir.Manifest(out).save())
    writer.start()
    rundir.check_out_dir(out, "run")
    writer.join()
    # A work/ folder of the user's own, which no marker ever joins, is still refused once the wait is over.
    monkeypatch.setattr(rundir, "CLAIM_WAIT", 0.2)
    mine = tmp_path / "mine"
    (mine / "work").mkdir(parents=True)
    with pytest.raises(RunDirError, match="holds files ragtune did not write"):
        rundir.check_out_dir(mine, "run")


class _Clock:
    """rundir's `time`, with a monotonic clock that only sleeping moves: the total slept is the wait paid."""

    def __init__(self) -> None:
        self.now = self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds

    def __getattr__(self, name: str):
        return getattr(time, name)


def test_a_work_folder_of_the_users_own_is_refused_after_one_wait(
    tmp_path: Path,
    docs: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ragtune import rundir

    # No marker ever joins the user's own work/. A run checks --out three times before it writes (the CLI, the
    # pipeline, the claim); the first check refuses the folder after one wait, and nothing is written.
    clock = _Clock()
    monkeypatch.setattr(rundir, "time", clock)
    mine = tmp_path / "mine"
    (mine / "work").mkdir(parents=True)
    assert main(_args(docs, mine, tiny_model_dir)) == 1
    assert_one_error_line(capsys.readouterr().err, "holds files ragtune did not write (work)")
    assert clock.slept == pytest.approx(rundir.CLAIM_WAIT, abs=0.1)
    assert [p.relative_to(mine).as_posix() for p in mine.rglob("*")] == ["work"]


def test_concurrent_runs_on_one_out_one_stops_at_once(
    tmp_path: Path, docs: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = _args(docs, out, tiny_model_dir, steps=8)
    # Started together, both race for the run directory; the loser must stop, not clobber.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ragtune", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(tmp_path),
            cwd=tmp_path,
        )
        for _ in range(2)
    ]
    try:
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], results
    winner, loser = (0, 1) if procs[0].returncode == 0 else (1, 0)
    err = results[loser][1]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"ragtune: error: {out} is in use by another ragtune run "
        f"(pid {procs[winner].pid} on {socket.gethostname()}, since "
    ), err
    assert last.endswith("; wait for it to finish or use another --out directory")
    # The loser wrote nothing: the winner's run is whole, and the same command reuses all of it.
    assert main(args) == 0
    assert _reused(capsys.readouterr().err) == list(STAGES)


# --- Ctrl-C and signals -----------------------------------------------------------------------


def test_ctrl_c_stops_with_one_line_and_exit_130(
    tmp_path: Path,
    tiny_model_dir: Path,
    nist_pages: list[Page],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ragtune.pipeline import Pipeline

    def interrupted(self: Pipeline) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Pipeline, "run", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), tmp_path / "run", tiny_model_dir)) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "ragtune: interrupted (SIGINT); rerun the same command to resume from the last finished stage."
    )
    # main() puts back the SIGTERM handler it found.
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_during_push_says_what_the_hub_kept(tmp_path: Path) -> None:
    # Issue 16: Ctrl-C during `push` talked about resuming stages.
    import time

    from test_hub import TOKEN, make_run

    from tests.support.loopback import SilentServer

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN")}
    cmd = [sys.executable, "-m", "ragtune", "push", str(make_run(tmp_path)), "alice/minilm"]
    with SilentServer() as hub:  # connects, then never answers: the upload is in flight when Ctrl-C comes
        env |= {
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(tmp_path / "hf_home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        proc = start(cmd, env, tmp_path)
        deadline = time.monotonic() + 120
        while hub.accepted == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.accepted, proc.communicate()[1] if proc.poll() is not None else "push never connected"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "ragtune: interrupted (SIGINT); a repo changes on the Hub only when its upload finishes, so none is left "
        "half-pushed; rerun the same command to push."
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_outside_training_stops_with_one_line(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], sig: signal.Signals
) -> None:
    docs = good_docs(tmp_path / "docs", nist_pages)
    cmd = [sys.executable, "-m", "ragtune", *run_args(docs, tmp_path / "run", tiny_model_dir)]
    # Sent as chunking starts, while the model loads (the extract stage's own line, not its progress lines).
    code, err = signal_when(
        cmd,
        ragtune_env(tmp_path),
        tmp_path,
        sig,
        lambda line: line.startswith("[1/8] extract") and "pages with text" in line,
    )
    assert code == 128 + sig, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"ragtune: interrupted ({sig.name}); rerun the same command to resume from the last finished stage."
    )
    # The finished stage is kept for the rerun.
    assert "extract" in json.loads((tmp_path / "run" / "work" / "manifest.json").read_text())["stages"]
