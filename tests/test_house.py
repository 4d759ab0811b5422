"""The house keeping of issue 27: what a run reads, and how often."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ragtune.config import Config
from ragtune.pipeline import _docs_fingerprint, stage_keys
from ragtune.rundir import Manifest
from tests.support.runs import finished_tiny_run, good_docs

# Opens of files under WATCHED[0] (set while a test watches), counted by path. Audit hooks cannot be
# removed once added, so one hook is added for the whole session and does nothing while no test watches.
WATCHED: list[Path] = []
OPENED: Counter[str] = Counter()
_HOOKED: list[bool] = []


def _count_opens(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and WATCHED and isinstance(args[0], (str, bytes, Path)):
        path = Path(args[0].decode() if isinstance(args[0], bytes) else args[0])
        if path.is_relative_to(WATCHED[0]):
            OPENED[path.name] += 1


def opens_during(folder: Path, action: Any) -> Counter[str]:
    """How many times each file under `folder` was opened while `action()` ran."""
    if not _HOOKED:
        sys.addaudithook(_count_opens)
        _HOOKED.append(True)
    OPENED.clear()
    WATCHED[:] = [folder.resolve()]
    try:
        action()
    finally:
        WATCHED.clear()
    return Counter(OPENED)


def test_a_run_reads_each_document_once(tmp_path: Path, nist_pages, tiny_model_dir: Path) -> None:
    """The extract key hashes the documents: a fresh run reads each one once, for its pages and its digest
    together, and a rerun that reuses every stage reads each once to see that nothing changed."""
    docs = good_docs(tmp_path / "docs", nist_pages)
    names = sorted(p.name for p in docs.iterdir())
    fresh = opens_during(docs, lambda: finished_tiny_run(tmp_path, docs, tiny_model_dir))
    assert fresh == {name: 1 for name in names}
    # The key made of the digests extraction returned is the one hashing the folder gives (the extract
    # stage's settings are the defaults here).
    cfg = Config(docs=docs)
    keys = stage_keys(cfg, _docs_fingerprint(cfg), {})
    assert Manifest(tmp_path / "run").data["stages"]["extract"]["key"] == keys["extract"]
    again = opens_during(docs, lambda: finished_tiny_run(tmp_path, docs, tiny_model_dir))
    assert again == {name: 1 for name in names}


def test_config_json_resolves_the_model_and_device_once_a_run(tmp_path: Path, monkeypatch) -> None:
    """A budgeted run writes config.json twice (before and after its plan): the device and base model it
    records are resolved once, so both writes say the same and the second costs no second look."""
    import ragtune.pipeline as pipeline
    from ragtune import Pipeline, __version__

    looked: list[str] = []
    real = pipeline.pick_device
    monkeypatch.setattr(pipeline, "pick_device", lambda device: looked.append(device) or real(device))
    cfg = Config(docs=tmp_path / "docs", out=tmp_path / "run", device="cpu")
    run = Pipeline(cfg)
    first = run.resolved_config()
    run.cfg = cfg.replace(max_steps=7)  # as a plan changes it
    second = run.resolved_config()
    assert looked == ["cpu"]
    assert first["device"] == second["device"] == "cpu" and first["ragtune_version"] == __version__
    assert second == cfg.replace(max_steps=7).to_dict() | {
        k: first[k] for k in ("base_model", "device", "ragtune_version")
    }


def test_each_stage_result_reads_back_its_manifest_record_whole(
    tmp_path: Path, nist_pages, tiny_model_dir: Path
) -> None:
    """A reused stage hands later stages its result read back from the manifest: every recorded field comes back,
    in the order it was written, so a reused stage reads as a fresh one and a rewritten record stays the same."""
    from ragtune.stages import PIPELINE

    run = finished_tiny_run(tmp_path, good_docs(tmp_path / "docs", nist_pages), tiny_model_dir)
    entries = Manifest(run).data["stages"]
    for stage in PIPELINE:
        assert stage.result is not None, stage.name
        entry = entries[stage.name]
        again = stage.result.from_record(entry).record()
        # The manifest adds the key, the stage's time, its outputs and a check; the train stage's own "seconds"
        # (training's) takes the place of the stage's time.
        recorded = {k: v for k, v in entry.items() if k not in ("key", "seconds", "outputs", "check") or k in again}
        assert again == recorded, stage.name
        assert [k for k in again if k != "seconds"] == [k for k in recorded if k != "seconds"], stage.name
