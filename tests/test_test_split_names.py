"""The held-out test questions have one name in a run folder: pairs_test.jsonl, labelled_test.jsonl, n_test.
A run folder written before that rename (pairs_eval.jsonl, n_eval) still loads and resumes with no stage redone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ragtune import Config, Pipeline
from ragtune.rundir import _entry_check, output_digest
from ragtune.runfiles import WORK, RunFiles
from tests.support.runs import finished_tiny_run, good_docs
from tests.test_run_folder import Recorder, _config_of

# New name -> the name a run folder held before the rename.
OLD_FILES = {"pairs_test.jsonl": "pairs_eval.jsonl", "labelled_test.jsonl": "labelled_eval.jsonl"}
OLD_COUNTS = {"n_test": "n_eval", "n_test_chunks": "n_eval_chunks"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir, nist_pages) -> Path:
    root = tmp_path_factory.mktemp("test_split_names")
    return finished_tiny_run(root, good_docs(root / "docs", nist_pages), tiny_model_dir, val_fraction=0.0)


def _with_old_names(run: Path, to: Path) -> Path:
    """A copy of `run` as ragtune wrote it before the rename: *_eval.jsonl files, the manifest's outputs naming
    them and the split record counting n_eval (with check digests, as that ragtune wrote them)."""
    shutil.copytree(run, to)
    for new, old in OLD_FILES.items():
        if (to / WORK / new).exists():
            (to / WORK / new).rename(to / WORK / old)
    card = to / WORK / "card.json"
    saved = json.loads(card.read_text())
    for new, old in OLD_COUNTS.items():
        saved["summary"][old] = saved["summary"].pop(new)
    card.write_text(json.dumps(saved))
    path = to / WORK / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["stages"]["save"]["outputs"][f"{WORK}/card.json"] = output_digest(card)
    for entry in manifest["stages"].values():
        entry["outputs"] = {_old_rel(rel): d for rel, d in entry["outputs"].items()}
        for new, old in OLD_COUNTS.items():
            if new in entry:
                entry[old] = entry.pop(new)
        entry.pop("check")
        entry["check"] = _entry_check(entry)
    path.write_text(json.dumps(manifest))
    return to


def _old_rel(rel: str) -> str:
    head, _, name = rel.rpartition("/")
    return f"{head}/{OLD_FILES.get(name, name)}" if head else OLD_FILES.get(name, name)


def test_a_run_writes_the_test_questions_under_their_name(tiny_run):
    files = RunFiles(tiny_run)
    assert files.split("test") == tiny_run / WORK / "pairs_test.jsonl" and files.split("test").is_file()
    assert not list(tiny_run.rglob("*_eval.jsonl"))
    split = json.loads(files.manifest.read_text())["stages"]["split"]
    assert split["n_test"] > 0 and split["n_test_chunks"] > 0 and "n_eval" not in split
    assert f"{WORK}/pairs_test.jsonl" in split["outputs"]
    summary = json.loads(files.card_json.read_text())["summary"]
    assert (summary["n_test"], summary["n_test_chunks"]) == (split["n_test"], split["n_test_chunks"])
    assert "n_eval" not in summary


def test_a_run_folder_with_the_old_names_resumes_without_redoing_a_stage(tiny_run, tmp_path):
    old = _with_old_names(tiny_run, tmp_path / "old" / tiny_run.name)
    assert (old / WORK / "pairs_eval.jsonl").is_file() and not (old / WORK / "pairs_test.jsonl").exists()
    cfg = Config(**{**_config_of(tiny_run), "out": old})
    recorder = Recorder()
    result = Pipeline(cfg, reporter=recorder).run()
    assert recorder.ran == [], f"redone: {recorder.ran}; notes: {recorder.notes}"
    assert result.metrics == json.loads((old / "metrics.json").read_text())
    assert any("renamed" in n for n in recorder.notes), recorder.notes
    # Renamed once, with the manifest: a second run has nothing to redo either.
    assert (old / WORK / "pairs_test.jsonl").is_file() and not (old / WORK / "pairs_eval.jsonl").exists()
    outputs = json.loads((old / WORK / "manifest.json").read_text())["stages"]["split"]["outputs"]
    assert f"{WORK}/pairs_test.jsonl" in outputs and f"{WORK}/pairs_eval.jsonl" not in outputs
    again = Recorder()
    Pipeline(cfg, reporter=again).run()
    assert again.ran == [], again.notes


def test_a_run_folder_with_the_old_names_loads_for_search_export_and_card(tiny_run, tmp_path):
    from ragtune.card import render_card
    from ragtune.llamaindex_dataset import export_llamaindex
    from ragtune.search import load_retriever

    old = _with_old_names(tiny_run, tmp_path / "old" / tiny_run.name)
    files = RunFiles(old)
    assert files.split("test") == old / WORK / "pairs_eval.jsonl"
    hits = load_retriever(old, "tuned", device="cpu").search("risks of generative AI", k=3)
    assert len(hits) == 3
    export = export_llamaindex(old, tmp_path / "test.json")
    n_test = json.loads((tiny_run / WORK / "manifest.json").read_text())["stages"]["split"]["n_test"]
    assert export.n_queries == n_test
    saved = json.loads(files.card_json.read_text())
    card = render_card(saved["summary"], saved["metrics"], "me/model")
    assert f"{n_test} held out" in card


def test_a_run_folder_from_before_work_with_the_old_names_moves_and_renames(tmp_path):
    """pairs_eval.jsonl at the top of a run folder (before work/) ends as work/pairs_test.jsonl."""
    from ragtune.rundir import move_to_work

    run = tmp_path / "run"
    run.mkdir()
    (run / "pairs_eval.jsonl").write_text("")
    (run / "labelled_eval.jsonl").write_text("")
    assert move_to_work(run) >= 2
    assert sorted(p.name for p in (run / WORK).iterdir()) == ["labelled_test.jsonl", "pairs_test.jsonl"]


def test_a_pairs_run_into_an_older_pairs_folder_leaves_one_test_split(tmp_path, tiny_model_dir):
    """A `ragtune pairs` folder of ragtune 0.3 held eval.jsonl: a rerun writes test.jsonl and drops the old copy,
    so the folder never holds two held-out splits."""
    from ragtune.pairs import PairsConfig, run_pairs
    from tests.test_pairs import labelled_csv

    out = tmp_path / "run"
    cfg = PairsConfig(
        pairs_files=(labelled_csv(tmp_path),), out=out, base_model=str(tiny_model_dir), max_steps=1, device="cpu"
    )
    run_pairs(cfg, log=lambda _: None)
    (out / "test.jsonl").rename(out / "eval.jsonl")
    metrics = run_pairs(cfg, log=lambda _: None).metrics
    assert (out / "test.jsonl").is_file() and not (out / "eval.jsonl").exists()
    assert metrics["n_test"] > 0 and "n_eval" not in metrics
