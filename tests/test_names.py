"""One name per idea: metrics.json keys named like the table rows, the test / validation / external evaluation set
names, and old names that keep working for one release (old run folders load, old commands give one line)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ragtune import Config, Pipeline
from ragtune.card import render_card, render_report
from ragtune.cli import main, parse_command_line
from ragtune.hub.upload import _card_for_upload
from ragtune.llamaindex_dataset import add_dataset_metrics
from ragtune.names import upgrade_metrics
from ragtune.runfiles import metrics_problem
from tests.support.runs import finished_tiny_run, good_docs

TABLES = ("base", "fine_tuned", "bm25", "hybrid", "served")
# What ragtune 0.3 wrote for each of today's keys.
OLD = {"base": "before", "fine_tuned": "after", "base_passages": "before_passages"}
OLD |= {"fine_tuned_passages": "after_passages", "evaluation_set": "eval_dataset", "test_set": "eval_set"}


def _old(entry: Any) -> Any:
    """`entry` in ragtune 0.3's names, at every depth it wrote them."""
    if not isinstance(entry, dict):
        return entry
    return {OLD.get(k, k): _old(v) for k, v in entry.items()}


def _has_old_names(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    return any(k in OLD.values() or _has_old_names(v) for k, v in entry.items())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages: list) -> Path:
    """One finished tiny run; tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("names")
    return finished_tiny_run(root, good_docs(root / "docs", nist_pages), tiny_model_dir)


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_tiny_runs_metrics_json_names_its_figures_like_the_table_rows(tiny_run: Path) -> None:
    metrics = _read(tiny_run / "metrics.json")
    assert set(TABLES) <= set(metrics)
    assert not _has_old_names(metrics), [k for k in metrics if k in OLD.values()]
    assert set(metrics["similarity"]) == {"base", "fine_tuned", "cutoff_map", "warn"}
    assert all(set(row["hit@5"]) == {"base", "fine_tuned"} for row in metrics["per_theme"].values())
    assert metrics["test_set"] == "held-out synthetic questions (by chunk)"
    # `served` is one of the measured rows, named by its mode.
    assert metrics["served"]["hit@5"] in {metrics[k]["hit@5"] for k in ("fine_tuned", "bm25", "hybrid")}
    # card.json's copy, which `push` renders the card from, carries the same names.
    # (The run's own costs, "stages" and "plan", join metrics.json after the save stage wrote card.json.)
    assert _read(tiny_run / "work" / "card.json")["metrics"] == {
        k: v for k, v in metrics.items() if k not in ("stages", "plan")
    }


def _as_written_by_0_3(run: Path) -> dict[str, Any]:
    """Rewrites RUN's metrics.json and card.json in ragtune 0.3's names; returns the new-format figures."""
    metrics = _read(run / "metrics.json")
    (run / "metrics.json").write_text(json.dumps(_old(metrics)), encoding="utf-8")
    card = _read(run / "work" / "card.json")
    (run / "work" / "card.json").write_text(json.dumps(card | {"metrics": _old(card["metrics"])}), encoding="utf-8")
    return metrics


def test_a_run_folder_with_an_old_format_metrics_json_still_loads(
    tiny_run: Path, tmp_path: Path, tiny_model_dir: Path, nist_pages: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    new = _as_written_by_0_3(run)
    assert _has_old_names(_read(run / "metrics.json"))
    assert metrics_problem(run / "metrics.json") is None

    # Run again with the same settings: nothing is evaluated again, and the result speaks today's names.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    cfg = Config(
        docs=good_docs(tmp_path / "docs", nist_pages),
        out=run,
        base_model=str(tiny_model_dir),
        **{"max_steps": 2, "batch_size": 4, "chunk_tokens": 64, "chunk_overlap": 8, "device": "cpu"},
        val_fraction=0,
    )
    result = Pipeline(cfg).run()
    assert "evaluate" in result.cached
    assert result.metrics["fine_tuned"] == new["fine_tuned"] and result.metrics["base"] == new["base"]
    assert f"{new['fine_tuned']['hit@5']:.3f}" in result.table()
    assert f"{new['base']['hit@5']:.3f} -> {new['fine_tuned']['hit@5']:.3f}" in repr(result)

    # The card and report render from the old names once loaded (the save stage and `push` upgrade what they
    # read); `push` renders the card from the old card.json.
    old = upgrade_metrics(_read(run / "metrics.json"))
    summary = _read(run / "work" / "card.json")["summary"]
    assert f"{new['fine_tuned']['mrr@10']:.3f}" in render_report(summary, old)
    assert f"value: {round(new['fine_tuned']['hit@5'], 4)}" in render_card(summary, old, "you/demo")
    pushed = _card_for_upload(run, "you/demo", None)
    assert pushed is not None and f"value: {round(new['fine_tuned']['hit@5'], 4)}".encode() in pushed
    assert main(["push", str(run), "you/demo", "--dry-run"]) == 0


def test_an_external_evaluation_set_rewrites_an_old_metrics_json_in_new_names(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    _as_written_by_0_3(run)
    qa = tmp_path / "qa.json"
    assert main(["export", str(run), "--llamaindex", str(qa)]) == 0
    assert next(iter(_read(qa)["queries"])) == "test-0"  # the held-out test split, by its name
    entry = add_dataset_metrics(run, qa, "cpu")
    saved = _read(run / "metrics.json")
    assert saved["evaluation_set"] == entry and set(entry) >= {"base", "fine_tuned"}
    assert not _has_old_names(saved)


def _deprecation_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "deprecated" in line]


def test_the_old_eval_dataset_command_works_with_one_deprecation_line(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qa = tmp_path / "qa.json"
    assert main(["export", str(tiny_run), "--llamaindex", str(qa)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tiny_run), str(qa), "--device", "cpu"]) == 0
    new = capsys.readouterr()
    assert _deprecation_lines(new.err) == []
    assert main(["eval-dataset", str(tiny_run), str(qa), "--device", "cpu"]) == 0
    old = capsys.readouterr()
    assert _deprecation_lines(old.err) == [
        "ragtune: `ragtune eval-dataset` is deprecated and will go in the next release; use `ragtune evaluate`"
    ]
    assert old.out == new.out  # the same figures


@pytest.mark.parametrize("split", [["--split", "eval"], ["--split=eval"]], ids=["separate", "joined"])
def test_export_split_eval_reads_the_test_split_with_one_deprecation_line(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], split: list[str]
) -> None:
    assert main(["export", str(tiny_run), "--llamaindex", str(tmp_path / "new.json"), "--split", "test"]) == 0
    assert _deprecation_lines(capsys.readouterr().err) == []
    assert main(["export", str(tiny_run), "--llamaindex", str(tmp_path / "old.json"), *split]) == 0
    assert _deprecation_lines(capsys.readouterr().err) == [
        "ragtune: --split eval is deprecated and will go in the next release; use --split test"
    ]
    assert _read(tmp_path / "old.json") == _read(tmp_path / "new.json")


def test_run_eval_dataset_is_the_evaluation_set_flag_with_one_deprecation_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse_command_line(["run", "docs", "--out", "runs/x", "--eval-dataset", "qa.json"])
    assert args.evaluation_set == Path("qa.json")
    assert _deprecation_lines(capsys.readouterr().err) == [
        "ragtune: --eval-dataset is deprecated and will go in the next release; use --evaluation-set"
    ]
    assert parse_command_line(["run", "docs", "--out", "runs/x", "--evaluation-set", "qa.json"]).evaluation_set
    assert _deprecation_lines(capsys.readouterr().err) == []


# --- one question-kind vocabulary ----------------------------------------------------------


def _kinds(path: Path) -> dict[str, int]:
    from ragtune.records import Pair, read_jsonl

    counts: dict[str, int] = {}
    for p in read_jsonl(path, Pair):
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return counts


def test_every_kind_a_run_writes_is_in_the_vocabulary_and_the_stage_line_counts_them(tiny_run: Path) -> None:
    from ragtune.names import QUESTION_KINDS

    written = _kinds(tiny_run / "work" / "pairs.jsonl")
    lexical = _kinds(tiny_run / "work" / "pairs_lexical.jsonl")
    assert {"keyphrase", "sentence", "cloze"} <= set(written) and set(lexical) == {"lexical"}
    assert set(written) | set(lexical) <= set(QUESTION_KINDS)
    generate = _read(tiny_run / "work" / "manifest.json")["stages"]["generate"]
    assert generate["per_kind"] == written
    # The line the console and the report show names each kind as the file does, with its count.
    for kind, n in written.items():
        assert f"{kind} {n}" in generate["summary"], generate["summary"]


def test_the_docs_name_each_kind_as_the_files_do() -> None:
    from ragtune.names import QUESTION_KINDS

    docs = (Path(__file__).parents[1] / "docs" / "how-it-works.md").read_text(encoding="utf-8")
    assert all(f"`{kind}`" in docs for kind in QUESTION_KINDS), [k for k in QUESTION_KINDS if f"`{k}`" not in docs]
    # The names the docs used before, for the same kinds.
    assert "term questions" not in docs and "its sentences themselves" not in docs
