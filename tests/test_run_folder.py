"""The run folder a user opens: what they need at its top, the stages' own files under work/, and run
folders from before work/ (every file at the top) still loading and resuming without redoing a stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ragtune import Config, Pipeline
from ragtune.rundir import _entry_check
from ragtune.runfiles import WORK, RunFiles
from tests.support.runs import finished_tiny_run, good_docs

# What a user needs at the top of a run folder (plots/: report.html shows them).
USER_FACING = {"model", "index", "report.html", "report.md", "metrics.json", "config.json", "plots", WORK}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir, nist_pages) -> Path:
    root = tmp_path_factory.mktemp("run_folder")
    # val_fraction as the CLI gives it (a float): config.json records 0.0, and an int 0 would key differently.
    return finished_tiny_run(root, good_docs(root / "docs", nist_pages), tiny_model_dir, val_fraction=0.0)


def _as_before_work(run: Path, to: Path) -> Path:
    """A copy of `run` laid out as ragtune wrote run folders before work/: every file at the top, and the
    manifest's outputs named there (with their check digests, as that ragtune wrote them)."""
    shutil.copytree(run, to)
    # plan.json came with work/: a run from before has none, and plans again.
    (to / WORK / "plan.json").unlink(missing_ok=True)
    for entry in sorted((to / WORK).iterdir()):
        entry.rename(to / entry.name)
    (to / WORK).rmdir()
    manifest = json.loads((to / "manifest.json").read_text())
    for entry in manifest["stages"].values():
        entry["outputs"] = {rel.removeprefix(f"{WORK}/"): d for rel, d in entry["outputs"].items()}
        entry.pop("check")
        entry["check"] = _entry_check(entry)
    (to / "manifest.json").write_text(json.dumps(manifest))
    return to


class Recorder:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.ran: list[str] = []

    def stage_start(self, name: str, index: int, total: int) -> None:
        pass

    def stage_progress(self, name: str, done: int, total: int) -> None:
        pass

    def stage_end(self, name: str, summary: str, seconds: float, cached: bool) -> None:
        if not cached:
            self.ran.append(name)

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_the_top_of_a_run_folder_holds_only_what_a_user_opens(tiny_run):
    top = {p.name for p in tiny_run.iterdir()}
    assert top <= USER_FACING, f"not for the user, yet at the top: {sorted(top - USER_FACING)}"
    assert {"model", "index", "report.html", "metrics.json", "config.json"} <= top
    files = RunFiles(tiny_run)
    for path in (files.pages, files.chunks, files.split("test"), files.card_json, files.manifest, files.base_vectors):
        assert path.exists() and path.relative_to(tiny_run).parts[0] == WORK, path


def test_a_run_folder_from_before_work_is_resumed_without_redoing_a_stage(tiny_run, tmp_path):
    old = _as_before_work(tiny_run, tmp_path / "old" / tiny_run.name)
    assert (old / "pages.jsonl").is_file() and not (old / WORK).exists()
    cfg = Config(**{**_config_of(tiny_run), "out": old})
    recorder = Recorder()
    result = Pipeline(cfg, reporter=recorder).run()
    assert recorder.ran == [], f"redone: {recorder.ran}; notes: {recorder.notes}"
    assert any("under" in n and WORK in n for n in recorder.notes), recorder.notes
    top = {p.name for p in old.iterdir()}
    assert top <= USER_FACING, sorted(top - USER_FACING)
    assert (old / WORK / "pages.jsonl").is_file() and result.metrics == json.loads((old / "metrics.json").read_text())
    # A second run has nothing left to move, and says nothing of it.
    again = Recorder()
    Pipeline(cfg, reporter=again).run()
    assert again.ran == [] and not any(WORK in n for n in again.notes), again.notes


def test_a_run_folder_from_before_work_loads_as_it_is(tiny_run, tmp_path):
    """search, --compare and the exports read the old places while nothing moved them."""
    from ragtune.llamaindex_dataset import export_llamaindex
    from ragtune.search import load_retriever

    old = _as_before_work(tiny_run, tmp_path / "old" / tiny_run.name)
    files = RunFiles(old)
    assert files.chunks == old / "chunks.jsonl" and files.manifest == old / "manifest.json"
    assert files.base_vectors == old / "embeddings" / "base"
    hits = load_retriever(old, "base", device="cpu").search("risks of generative AI", k=3)
    assert len(hits) == 3
    export_llamaindex(old, tmp_path / "eval.json")
    assert json.loads((tmp_path / "eval.json").read_text())["queries"]


def _config_of(run: Path) -> dict:
    """The settings a run was made with, as Config takes them (from its own config.json)."""
    from ragtune.config import Config as C

    saved = json.loads((run / "config.json").read_text())
    fields = C.__dataclass_fields__
    kinds = {name: str(f.type) for name, f in fields.items()}
    out = {}
    for name, value in saved.items():
        if name not in fields:
            continue
        if kinds[name].startswith("tuple"):
            value = tuple(Path(v) if "Path" in kinds[name] else v for v in value)
        elif kinds[name].startswith("Path"):
            value = Path(value) if value else None
        out[name] = value
    return out


# --- config.json: what the run really used, and fed back with --config ----------------------


def test_config_json_records_the_base_model_and_device_the_run_used(tmp_path, nist_pages):
    from ragtune.models import bundled_model_path, pick_device

    cfg = Config(docs=good_docs(tmp_path / "docs", nist_pages), out=tmp_path / "run")
    assert cfg.base_model == "" and cfg.device == ""
    saved = Pipeline(cfg).resolved_config()
    assert saved["base_model"] == str(bundled_model_path().resolve()) and Path(saved["base_model"]).is_dir()
    assert saved["device"] == pick_device("") and saved["device"] in ("cpu", "cuda", "mps")
    assert saved["ragtune_version"]
    # Read back, the bundled model's folder is the default again: the same stage keys, no local path in a card.
    assert Config(docs=cfg.docs, base_model=saved["base_model"]).base_model == ""


def test_a_runs_config_json_is_accepted_by_config(tiny_run, tiny_model_dir):
    from ragtune.config_file import load_config_file

    saved = json.loads((tiny_run / "config.json").read_text())
    assert saved["base_model"] == str(Path(tiny_model_dir).resolve()) and saved["device"] == "cpu"
    notes: list[str] = []
    values = load_config_file(tiny_run / "config.json", notes=notes)
    assert "docs" not in values and "ragtune_version" not in values
    assert len(notes) == 1 and "docs, ragtune_version" in notes[0], notes
    again = Config(docs=Path(saved["docs"]), **values)
    assert again.to_dict() == Config(**_config_of(tiny_run)).to_dict()


def test_run_with_its_own_config_json_reuses_every_stage(tiny_run, tmp_path, capsys):
    from ragtune.cli import main

    copy = tmp_path / "copy" / tiny_run.name
    shutil.copytree(tiny_run, copy)
    docs = json.loads((copy / "config.json").read_text())["docs"]
    before = json.loads((copy / WORK / "manifest.json").read_text())["stages"]
    assert main(["run", docs, "--config", str(copy / "config.json"), "--out", str(copy)]) == 0
    err = capsys.readouterr().err
    assert "left out docs, ragtune_version" in err and "error" not in err, err
    assert json.loads((copy / WORK / "manifest.json").read_text())["stages"] == before


# --- metrics.json: 4 digits, and per_theme names its metric ------------------------------------


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)


def test_metrics_json_holds_figures_of_four_digits_and_per_theme_names_its_metric(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    floats = list(_floats(metrics))
    assert len(floats) > 30 and all(round(v, 4) == v for v in floats), [v for v in floats if round(v, 4) != v][:5]
    assert metrics["per_theme"]
    for theme, row in metrics["per_theme"].items():
        assert set(row) == {"n", "hit@5"} and set(row["hit@5"]) == {"base", "fine_tuned"}, (theme, row)


def test_an_older_metrics_json_per_theme_is_still_read():
    from ragtune.metrics import theme_figures
    from ragtune.names import upgrade_metrics
    from ragtune.plots import themes_plot

    new = {
        "privacy": {"n": 4, "hit@5": {"base": 0.5, "fine_tuned": 0.75}},
        "safety": {"n": 2, "hit@5": {"base": 1.0, "fine_tuned": 0.5}},
    }
    # ragtune 0.3 wrote {"n", "before", "after"}; readers see it through upgrade_metrics.
    written = {
        t: {"n": r["n"], "before": r["hit@5"]["base"], "after": r["hit@5"]["fine_tuned"]} for t, r in new.items()
    }
    old = upgrade_metrics({"per_theme": written})["per_theme"]
    assert (
        [theme_figures(r) for r in old.values()]
        == [theme_figures(r) for r in new.values()]
        == [(4, 0.5, 0.75), (2, 1.0, 0.5)]
    )
    png = themes_plot(old)
    assert png is not None and png.startswith(b"\x89PNG") and png == themes_plot(new)


def test_a_run_tagged_with_the_old_default_lexicon_resumes_with_it(tiny_run, tmp_path):
    """A run made before themes were derived was keyed and tagged with the AI-governance lexicon: it keeps it,
    rather than redoing its theme stage and every stage after it (training included)."""
    from ragtune.pipeline import _docs_fingerprint, stage_keys
    from ragtune.themes import DEFAULT_LEXICON

    old = tmp_path / "old" / tiny_run.name
    shutil.copytree(tiny_run, old)
    cfg = Config(**{**_config_of(tiny_run), "out": old})
    keys = stage_keys(cfg, _docs_fingerprint(cfg), DEFAULT_LEXICON)
    path = old / WORK / "manifest.json"
    manifest = json.loads(path.read_text())
    for name, entry in manifest["stages"].items():
        if name == "theme":
            del entry["lexicon"], entry["themes_from"]
        entry["key"] = keys.get(name, entry["key"])
        entry.pop("check")
        entry["check"] = _entry_check(entry)
    path.write_text(json.dumps(manifest))
    assert Pipeline(cfg).lexicon() == DEFAULT_LEXICON
    recorder = Recorder()
    Pipeline(cfg, reporter=recorder).run()
    # save is keyed by the summary, which now names where the themes came from.
    assert set(recorder.ran) <= {"save"}, recorder.ran
    # A new run derives them.
    assert Pipeline(cfg.replace(out=tmp_path / "new")).lexicon() == {}
