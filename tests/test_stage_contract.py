"""The stage contract: every stage module declares a `STAGE`, the runner keys and runs whatever list it is
given, and adding a stage is one module plus one line in the list (shown with a toy stage after save)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest

import ragtune.stages
from ragtune import Pipeline
from ragtune.config import Config
from ragtune.fileio import write_json
from ragtune.pipeline import STAGE_SETTINGS, STAGES, stage_keys
from ragtune.records import Page
from ragtune.runfiles import RunFiles
from ragtune.stages import PIPELINE, Records, Run, Stage
from tests.test_pipeline import Recorder, tiny_config, write_docs


def test_every_stage_module_declares_its_stage_and_is_listed_once_in_order() -> None:
    modules = [m.name for m in pkgutil.iter_modules(ragtune.stages.__path__) if m.name != "base"]
    declared = {name: importlib.import_module(f"ragtune.stages.{name}").STAGE for name in modules}
    assert all(isinstance(stage, Stage) and stage.name == name for name, stage in declared.items())
    assert sorted(s.name for s in PIPELINE) == sorted(declared)
    assert PIPELINE == tuple(declared[name] for name in STAGES)
    # The names and settings the rest of ragtune reads are the stages' own.
    assert STAGE_SETTINGS == {s.name: s.settings for s in PIPELINE}


def test_stage_keys_stop_at_the_stage_keyed_by_what_earlier_stages_made() -> None:
    keys = stage_keys(Config(docs=Path("d")), [("a.pdf", 1, "x")], {})
    assert list(keys) == [s.name for s in PIPELINE if s.name != "save"]


# --- a toy stage, registered after save ------------------------------------------------------

TOY_FILE = "toy.json"


def toy_outputs(files: RunFiles) -> list[Path]:
    return [files.root / TOY_FILE]


def run_toy(run: Run, records: Records) -> dict[str, object]:
    """Reads what the earlier stages recorded and a file they wrote, and writes one of its own."""
    n_chunks = records["chunk"].n_chunks
    write_json(
        run.path(TOY_FILE),
        {
            "n_chunks": n_chunks,
            "hit@5": json.loads(run.files.metrics.read_text(encoding="utf-8"))["fine_tuned"]["hit@5"],
        },
    )
    return {"n_chunks": n_chunks, "summary": f"toy: {n_chunks} chunks"}


TOY = Stage("toy", (), toy_outputs, run_toy)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list[Page]) -> Config:
    root = tmp_path_factory.mktemp("toy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(root / "hf_home"))
        cfg = tiny_config(write_docs(root / "docs", nist_pages), root / "run", tiny_model_dir)
        recorder = Recorder()
        Pipeline(cfg, recorder, stages=PIPELINE + (TOY,)).run()
        assert recorder.started[-1] == ("toy", 9, 9) and recorder.ended[-1] == ("toy", False)
    return cfg


def test_a_toy_stage_after_save_runs_with_the_rest_and_is_recorded(toy_run: Config) -> None:
    manifest = json.loads((toy_run.out / "work" / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest["stages"]) == [*STAGES, "toy"]
    chunk_count = manifest["stages"]["chunk"]["n_chunks"]
    written = json.loads((toy_run.out / TOY_FILE).read_text(encoding="utf-8"))
    assert written["n_chunks"] == chunk_count == manifest["stages"]["toy"]["n_chunks"]
    assert set(manifest["stages"]["toy"]["outputs"]) == {TOY_FILE}
    # The toy is keyed after save, like any stage: with save's key before it.
    assert manifest["stages"]["toy"]["key"] not in {e["key"] for n, e in manifest["stages"].items() if n != "toy"}


def test_a_rerun_reuses_the_toy_and_redoes_only_it_when_its_output_is_gone(toy_run: Config) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(toy_run.out.parent / "hf_home"))
        again = Recorder()
        Pipeline(toy_run, again, stages=PIPELINE + (TOY,)).run()
        assert again.ended == [(name, True) for name in (*STAGES, "toy")]
        (toy_run.out / TOY_FILE).unlink()
        redo = Recorder()
        Pipeline(toy_run, redo, stages=PIPELINE + (TOY,)).run()
    assert redo.ended == [*((name, True) for name in STAGES), ("toy", False)]
    assert (toy_run.out / TOY_FILE).is_file()


def test_the_standard_list_reuses_a_run_made_with_the_toy(toy_run: Config) -> None:
    # The toy adds to the run; the eight stages' keys are the same with or without it.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(toy_run.out.parent / "hf_home"))
        recorder = Recorder()
        Pipeline(toy_run, recorder).run()
    assert recorder.ended == [(name, True) for name in STAGES]
