"""A damaged run folder, model folder or Hub reply ends in one line that says what to do, and a rerun repairs it.

Issue 29, items 12, 13, 14, 17 and 20. Each damaged file is built from a real tiny run (the
fixtures of test_search and test_pipeline), real FAISS and bm25s files, and a real Hub look-alike.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ragtune import Pipeline, Retriever
from ragtune.cli import main
from ragtune.errors import HubError, ModelError, RagtuneError
from ragtune.models import load_model
from ragtune.pipeline import STAGES
from ragtune.search import search
from tests import test_hub, test_pipeline, test_search
from tests.test_cli import assert_one_error_line
from tests.test_hub import TOKEN, make_run, push_fast
from tests.test_pipeline import Finished, Recorder
from tests.test_pipeline import copy_run as copy_finished
from tests.test_search import QUERY, copy_run

# Their fixtures, used here too: a fake Hub, and the finished tiny runs of test_pipeline and test_search.
hubserver = test_hub.hubserver
finished = test_pipeline.finished
run_dir = test_search.run_dir


def _cut(path: Path) -> None:
    """Cut a file to half its size, as a crash or a full disk leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00\xff\xfe garbage \x89PNG" * 40)


# What to damage in a finished run, and how: (relative path, damage).
SEARCH_DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    "retriever-json-cut": ("index/retriever.json", _cut),
    "retriever-json-list": ("index/retriever.json", lambda p: p.write_text("[1, 2]", encoding="utf-8")),
    "retriever-json-wrong-type": (
        "index/retriever.json",
        lambda p: p.write_text('{"chunk_weight": "heavy"}', encoding="utf-8"),
    ),
    "faiss-cut": ("index/index.faiss", _cut),
    "rows-garbage": ("index/rows.npy", _garbage),
    "bm25-params-cut": ("index/bm25/params.index.json", _cut),
    "bm25-vocab-garbage": ("index/bm25/vocab.index.json", _garbage),
    "bm25-array-garbage": ("index/bm25/data.csc.index.npy", _garbage),
    "safetensors-cut": ("model/model.safetensors", _cut),
    "chunks-cut": ("index/chunks.jsonl", _cut),
}


# --- item 12: search on a damaged index or model ---------------------------------------


@pytest.mark.parametrize("case", list(SEARCH_DAMAGE))
def test_search_on_a_damaged_run_is_one_line_that_says_to_rerun(
    run_dir: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rel, damage = SEARCH_DAMAGE[case]
    broken = copy_run(run_dir, tmp_path)
    damage(broken / rel)
    with pytest.raises(RagtuneError, match="ragtune run"):
        Retriever.load(broken, device="cpu")
    assert main(["search", str(broken), QUERY, "--device", "cpu"]) == 1
    assert_one_error_line(
        capsys.readouterr().err,
        Path(rel).name if "bm25" not in rel else "bm25",
        f"ragtune run {run_dir.parent / 'docs'} --out {broken}",
    )


# --- item 12: a rerun repairs a damaged index ------------------------------------------


@pytest.mark.parametrize(
    "rel", ["index/bm25/vocab.index.json", "index/bm25/data.csc.index.npy", "index/rows.npy", "index/retriever.json"]
)
def test_a_rerun_repairs_a_damaged_index_instead_of_trusting_it(finished: Finished, tmp_path: Path, rel: str) -> None:
    cfg = copy_finished(finished, tmp_path)
    good = (cfg.out / rel).read_bytes()
    _garbage(cfg.out / rel)
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert "evaluate" not in result.cached and result.cached == list(STAGES[:6])
    # bm25/ is recorded as one folder.
    changed = "index/bm25" if "bm25" in rel else rel
    assert rec.notes == [f"{changed} changed since the evaluate stage wrote it; redoing the evaluate stage"]
    assert (cfg.out / rel).read_bytes() == good
    assert [h.chunk_id for h in search(cfg.out, QUERY, k=3, device="cpu", mode="hybrid")]
    assert Pipeline(cfg).run().cached == list(STAGES)


@pytest.mark.parametrize("rel", ["model/tokenizer.json", "model/modules.json", "model/1_Pooling/config.json"])
def test_a_rerun_retrains_a_model_whose_other_files_were_damaged(finished: Finished, tmp_path: Path, rel: str) -> None:
    cfg = copy_finished(finished, tmp_path)
    _garbage(cfg.out / rel)
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == list(STAGES[:5])
    assert rec.notes == [f"{rel} changed since the train stage wrote it; redoing the train stage"]
    assert [h.chunk_id for h in search(cfg.out, QUERY, k=3, device="cpu")]
    # The card (the save stage's, which a user may edit) is not the train stage's to check.
    (cfg.out / "model" / "README.md").write_text("my own card\n", encoding="utf-8")
    assert Pipeline(cfg).run().cached == list(STAGES)


def test_a_rerun_rebuilds_a_deleted_bm25_folder(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_finished(finished, tmp_path)
    shutil.rmtree(cfg.out / "index" / "bm25")
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == list(STAGES[:6])
    assert (cfg.out / "index" / "bm25" / "params.index.json").is_file()


# --- item 13: metrics.json empty or cut short --------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"{}", b'{"before": {"hit@1": 0.5', b"[]", b'{"before": 1, "after": "x"}'],
    ids=["empty-object", "truncated", "list", "wrong-types"],
)
def test_a_rerun_repairs_a_damaged_metrics_file(finished: Finished, tmp_path: Path, content: bytes) -> None:
    cfg = copy_finished(finished, tmp_path)
    good = json.loads((cfg.out / "metrics.json").read_text(encoding="utf-8"))
    (cfg.out / "metrics.json").write_bytes(content)
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == list(STAGES[:6])
    assert len(rec.notes) == 1 and rec.notes[0].startswith("metrics.json is damaged (")
    assert rec.notes[0].endswith("); redoing the evaluate stage")
    assert result.metrics["fine_tuned"] == good["fine_tuned"]
    assert json.loads((cfg.out / "metrics.json").read_text(encoding="utf-8"))["fine_tuned"] == good["fine_tuned"]


@pytest.mark.parametrize("content", [b"{}", b'{"before": {"hit@1": 0.5'], ids=["empty-object", "truncated"])
def test_commands_reading_a_damaged_metrics_file_say_how_to_fix_it(
    run_dir: Path, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = copy_run(run_dir, tmp_path)
    (broken / "metrics.json").write_bytes(content)
    assert main(["push", str(broken), "alice/tiny", "--timeout", "1"]) == 1
    assert_one_error_line(
        capsys.readouterr().err, "metrics.json", f"ragtune run {run_dir.parent / 'docs'} --out {broken}"
    )


# --- item 14: damaged base-model folders ---------------------------------------------------


def _model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _weights(folder: Path) -> Path:
    return next(folder.rglob("model.safetensors"))


def _config(folder: Path) -> Path:
    return next(p for p in folder.rglob("config.json") if "model_type" in p.read_text(encoding="utf-8"))


def _set_model_type(folder: Path) -> None:
    path = _config(folder)
    config = json.loads(path.read_text(encoding="utf-8"))
    config["model_type"] = "no-such-architecture"
    path.write_text(json.dumps(config), encoding="utf-8")


def _bad_tokenizer(folder: Path) -> None:
    for p in folder.rglob("tokenizer.json"):
        p.write_text('{"version": "1.0", "model": {"type": "Nonsense"}}', encoding="utf-8")
    for p in folder.rglob("vocab.txt"):
        p.write_bytes(b"")


def _climb_out(folder: Path) -> None:
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    modules[-1]["path"] = "../../../outside"
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (folder.parent / "outside").mkdir(exist_ok=True)


def _empty(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


MODEL_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage-weights": (lambda f: _garbage(_weights(f)), "model.safetensors"),
    "cut-weights": (lambda f: _cut(_weights(f)), "model.safetensors"),
    "unknown-model-type": (_set_model_type, "no-such-architecture"),
    "bad-tokenizer": (_bad_tokenizer, "tokenizer"),
    "dotdot-in-modules": (_climb_out, ".."),
    "empty-folder": (_empty, "empty"),
}


@pytest.mark.parametrize("case", list(MODEL_DAMAGE))
def test_a_damaged_base_model_folder_is_one_line(
    tiny_model_dir: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    damage, named = MODEL_DAMAGE[case]
    folder = _model_copy(tiny_model_dir, tmp_path)
    damage(folder)
    with pytest.raises(ModelError, match=f"model '{folder}'") as e:
        load_model(str(folder), "cpu")
    assert named in str(e.value) and "\n" not in str(e.value)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Risk management for generative AI systems. " * 200, encoding="utf-8")
    assert (
        main(
            [
                "run",
                str(docs),
                "--out",
                str(tmp_path / "run"),
                "--base-model",
                str(folder),
                "--device",
                "cpu",
                "--max-steps",
                "1",
            ]
        )
        == 1
    )
    assert_one_error_line(capsys.readouterr().err, str(folder), named)


def test_modules_json_that_climbs_out_of_the_folder_is_refused_before_anything_loads(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = _model_copy(tiny_model_dir, tmp_path)
    _climb_out(folder)
    with pytest.raises(ModelError, match=r"refused to load model .*modules\.json.*outside the model folder"):
        load_model(str(folder), "cpu")


def test_base_model_pointing_at_a_finished_run_suggests_or_takes_its_model_folder(run_dir: Path) -> None:
    from ragtune.models import resolve_base_model

    # Loading the run folder itself as a model says which folder holds the model ...
    with pytest.raises(
        ModelError,
        match=re.escape("ragtune run folder, not a model") + ".*" + re.escape(f"--base-model {run_dir / 'model'}"),
    ):
        load_model(str(run_dir), "cpu")
    # ... and the one model resolver that --base-model, similarity and eval-dataset go through takes its model/.
    assert resolve_base_model(str(run_dir)) == str((run_dir / "model").resolve())


# --- item 17: Hub replies, tokens and manifest entries -------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        lambda info: [info["path"]],
        lambda info: {"path": info["path"], "uploadMode": 5, "shouldIgnore": False, "oid": None},
        lambda info: {"uploadMode": "regular"},
    ],
    ids=["list", "mode-number", "no-path"],
)
def test_a_wrong_shape_preupload_reply_is_one_line(
    hubserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], entry: Callable
) -> None:
    import tests.support.hubserver

    monkeypatch.setattr(tests.support.hubserver, "_preupload_entry", lambda repo, info: entry(info))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(HubError, match=rf"^{hubserver.url} answered with JSON that is not a Hub API reply"):
        push_fast(make_run(tmp_path), "alice/minilm")
    assert main(["push", str(make_run(tmp_path / "again")), "alice/minilm", "--timeout", "5"]) == 1
    assert_one_error_line(capsys.readouterr().err, "not a Hub API reply", "HF_ENDPOINT")
    assert hubserver.state.repos["alice/minilm"].files == {}


@pytest.mark.parametrize("token", ["hf_abcé123", "hf_abc\u201d", "\ufeffhf_abc123"])
def test_a_non_ascii_token_is_one_line_that_never_shows_it(
    hubserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], token: str
) -> None:
    monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(HubError, match="HF_TOKEN holds a character that is not ASCII"):
        push_fast(make_run(tmp_path), "alice/minilm")
    assert main(["push", str(make_run(tmp_path / "again")), "alice/minilm", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert_one_error_line(err, "HF_TOKEN", "copy the token again")
    assert token not in err and token[3:] not in err
    assert not hubserver.state.repos


def _edit_entry(cfg_out: Path, stage: str, edit: Callable[[dict[str, Any]], None]) -> None:
    path = cfg_out / "work" / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest["stages"][stage])
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_a_manifest_entry_without_its_check_is_redone(finished: Finished, tmp_path: Path) -> None:
    cfg = copy_finished(finished, tmp_path)
    # Without its check nothing vouches for the entry: here, a wrong type where the summary reads it.
    _edit_entry(cfg.out, "theme", lambda e: (e.pop("check"), e.update(per_theme="security")))
    rec = Recorder()
    result = Pipeline(cfg, rec).run()
    assert result.cached == ["extract", "chunk"]
    assert (
        len(rec.notes) == 1 and rec.notes[0].endswith("; redoing the theme stage") and "manifest.json" in rec.notes[0]
    )
    assert result.summary["themes"] == finished.result.summary["themes"]


@pytest.mark.parametrize(
    ("stage", "edit"),
    [
        ("chunk", lambda e: e.update(max_seq_length="long")),
        ("chunk", lambda e: e.update(max_seq_length="long", check=5)),
    ],
    ids=["seq-length-string", "check-number"],
)
def test_a_manifest_entry_with_a_wrong_type_is_one_line_or_redone(
    finished: Finished,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    stage: str,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    cfg = copy_finished(finished, tmp_path)
    _edit_entry(cfg.out, stage, edit)
    code = main(
        [
            "run",
            str(cfg.docs),
            "--out",
            str(cfg.out),
            "--base-model",
            cfg.base_model,
            "--device",
            "cpu",
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--chunk-tokens",
            "64",
            "--chunk-overlap",
            "8",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    assert f"redoing the {stage} stage" in err


# --- item 20: a second Ctrl-C in training ---------------------------------------------------


class _DoubleInterrupt(Recorder):
    """Sends this process two SIGINTs at the first training step, before any checkpoint is written."""

    def stage_progress(self, name: str, done: int, total: int) -> None:
        super().stage_progress(name, done, total)
        if name == "train" and done >= 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)


def test_a_second_ctrl_c_before_any_checkpoint_does_not_promise_one(finished: Finished, tmp_path: Path) -> None:
    from ragtune.cli import _after_interrupt, build_parser

    cfg = copy_finished(finished, tmp_path).replace(max_steps=3)
    with pytest.raises(KeyboardInterrupt) as e:
        Pipeline(cfg, _DoubleInterrupt()).run()
    assert not any(p.name.startswith("checkpoint-") for p in (cfg.out / "work" / "checkpoints").rglob("checkpoint-*"))
    args = build_parser().parse_args(["run", str(cfg.docs), "--out", str(cfg.out)])
    message = _after_interrupt(args, e.value)
    assert "checkpoint" not in message and "last finished stage" in message, message
    assert "no checkpoint was saved" in str(e.value)
