"""An output path that cannot be written is one `ragtune: error:` line naming it and what to do.

`run --out`, `pairs --out` and `export --llamaindex` are checked before any work
(so no training is lost to a bad path); an OSError that no check foresees, such
as a full disk, still ends in one line from cli.main. Tests run as root, which
writes into read-only folders, so the read-only cases run as `nobody`
(tests/support/unprivileged.py); the full disk is a real 4 KiB tmpfs where mounting is
allowed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import assert_one_error_line
from test_pairs import labelled_csv

from ragtune.cli import main
from ragtune.records import Chunk, Page, Pair, write_jsonl
from tests.support.runs import good_docs, pairs_args, run_args
from tests.support.unprivileged import run_unprivileged, shared_tmp_fixture  # noqa: F401 (the shared_tmp fixture)


def finished_run(folder: Path, n: int = 40) -> Path:
    """Just what `export` reads from a run directory: its chunks and held-out questions."""
    chunks = [
        Chunk(id=f"c{i}", source="a.txt", pages=(1,), text=f"Zero trust chunk {i}. " * 20, n_tokens=60)
        for i in range(n)
    ]
    write_jsonl(folder / "chunks.jsonl", chunks, Chunk)
    write_jsonl(folder / "pairs_eval.jsonl", [Pair(f"what is chunk {i}?", f"c{i}", "template") for i in range(n)], Pair)
    return folder


def read_only_folder(parent: Path) -> Path:
    folder = parent / "ro"
    folder.mkdir()
    folder.chmod(0o555)  # root-owned: `nobody` may enter it but not write in it
    return folder


# --- a file where a folder should be, a folder where a file should be (as root) --------


def test_run_out_that_is_a_file(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("keep me", encoding="utf-8")
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), out, tiny_model_dir)) == 1
    assert assert_one_error_line(capsys.readouterr().err) == (
        f"ragtune: error: --out {out} is a file, not a folder; choose another --out, or move the file away"
    )
    assert out.read_text(encoding="utf-8") == "keep me"


def test_run_out_under_a_file(
    tmp_path: Path, tiny_model_dir: Path, nist_pages: list[Page], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    out = tmp_path / "notes.txt" / "run"
    assert main(run_args(good_docs(tmp_path / "docs", nist_pages), out, tiny_model_dir)) == 1
    assert assert_one_error_line(capsys.readouterr().err) == (
        f"ragtune: error: --out {out}: {tmp_path / 'notes.txt'} is a file, so nothing can be written under it; "
        "choose another --out"
    )


def test_pairs_out_that_is_a_file(tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.bin"
    out.write_bytes(b"keep me")
    code = main(pairs_args(labelled_csv(tmp_path), out, tiny_model_dir))
    assert code == 1
    err = capsys.readouterr().err
    # Refused before the base model is even loaded, let alone trained.
    assert err.strip().splitlines() == [
        f"ragtune: error: --out {out} is a file, not a folder; choose another --out, or move the file away"
    ]
    assert out.read_bytes() == b"keep me"


def test_export_onto_a_folder_or_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = finished_run(tmp_path / "run")
    assert main(["export", str(run), "--llamaindex", str(tmp_path)]) == 1
    assert assert_one_error_line(capsys.readouterr().err) == (
        f"ragtune: error: --llamaindex {tmp_path} is a folder; pass the path of the file to write, "
        f"e.g. {tmp_path / 'dataset.json'}"
    )
    target = run / "chunks.jsonl" / "eval.json"
    assert main(["export", str(run), "--llamaindex", str(target)]) == 1
    assert assert_one_error_line(capsys.readouterr().err) == (
        f"ragtune: error: --llamaindex {target}: {run / 'chunks.jsonl'} is a file, so nothing can be written under "
        "it; choose another --llamaindex"
    )
    # An earlier export is simply replaced; a file ragtune did not write is not (tests/test_data_safety.py).
    assert main(["export", str(run), "--llamaindex", str(tmp_path / "old.json")]) == 0
    assert main(["export", str(run), "--llamaindex", str(tmp_path / "old.json")]) == 0
    (tmp_path / "mine.json").write_text("{}", encoding="utf-8")
    assert main(["export", str(run), "--llamaindex", str(tmp_path / "mine.json")]) == 1
    assert (tmp_path / "mine.json").read_text(encoding="utf-8") == "{}"


# --- read-only folders (as nobody) -------------------------------------------------------


@pytest.mark.parametrize("under", [False, True], ids=["the_folder", "a_new_folder_in_it"])
def test_run_out_in_a_read_only_folder(shared_tmp: Path, nist_pages: list[Page], under: bool) -> None:
    ro = read_only_folder(shared_tmp)
    out = ro / "run" if under else ro
    docs = good_docs(shared_tmp / "docs", nist_pages)
    ran = run_unprivileged(["-m", "ragtune", *run_args(docs, out, shared_tmp / "no_model_needed")], shared_tmp)
    assert ran.returncode == 1
    assert assert_one_error_line(ran.stderr) == (
        f"ragtune: error: --out {out}: cannot write in {ro} (permission denied); choose another --out, "
        "or make that folder writable"
    )


def test_pairs_out_in_a_read_only_folder(shared_tmp: Path) -> None:
    ro = read_only_folder(shared_tmp)
    ran = run_unprivileged(
        [
            "-m",
            "ragtune",
            "pairs",
            str(labelled_csv(shared_tmp)),
            "--out",
            str(ro / "run"),
            "--max-steps",
            "1",
            "--device",
            "cpu",
        ],
        shared_tmp,
    )
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        f"ragtune: error: --out {ro / 'run'}: cannot write in {ro} (permission denied); choose another --out, "
        "or make that folder writable"
    ]


def test_export_into_a_read_only_folder(shared_tmp: Path) -> None:
    run = finished_run(shared_tmp / "run")
    ro = read_only_folder(shared_tmp)
    ran = run_unprivileged(["-m", "ragtune", "export", str(run), "--llamaindex", str(ro / "eval.json")], shared_tmp)
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines() == [
        f"ragtune: error: --llamaindex {ro / 'eval.json'}: cannot write in {ro} (permission denied); "
        "choose another --llamaindex, or make that folder writable"
    ]


# --- what no check can see coming: a full disk ----------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 KiB file system, full after one page."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(disk)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_one_line_naming_the_output(
    tiny_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = finished_run(tmp_path / "run", n=200)  # about 90 KB of JSON
    target = tiny_disk / "eval.json"
    assert main(["export", str(run), "--llamaindex", str(target)]) == 1
    assert assert_one_error_line(capsys.readouterr().err) == (
        f"ragtune: error: {target}: No space left on device; free some disk space, or choose another --llamaindex"
    )
    # The write goes through a temporary file, and none is left behind.
    assert list(tiny_disk.iterdir()) == []
