"""Every run records the seconds and peak memory of each stage in metrics.json's "stages" (ragtune.stagecosts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune import Config, Pipeline
from ragtune.stagecosts import peak_rss_mib, reset_peak
from ragtune.stages import PIPELINE
from tests.support.runs import finished_tiny_run, good_docs

STAGES = [s.name for s in PIPELINE]


def test_the_peak_is_measured_from_the_reset() -> None:
    if not reset_peak():
        pytest.skip("this system cannot reset the peak resident set")
    before = peak_rss_mib()
    block = bytearray(300 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page, so that it is resident
    during = peak_rss_mib()
    del block
    reset_peak()
    after = peak_rss_mib()
    assert during - before >= 250
    assert during - after >= 250


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, nist_pages) -> Path:
    root = tmp_path_factory.mktemp("costs")
    return finished_tiny_run(root, good_docs(root / "docs", nist_pages), tiny_model_dir)


def test_every_stage_has_its_seconds_and_peak_memory(tiny_run: Path) -> None:
    stages = json.loads((tiny_run / "metrics.json").read_text())["stages"]
    assert list(stages) == STAGES
    manifest = json.loads((tiny_run / "work" / "manifest.json").read_text())["stages"]
    for name, row in stages.items():
        # The train stage's manifest entry holds the trainer's own seconds, within the stage's.
        if name == "train":
            assert row["seconds"] >= manifest[name]["seconds"] > 0
        else:
            assert row["seconds"] == pytest.approx(manifest[name]["seconds"], abs=0.01)
        # At least the interpreter, torch and the loaded tiny model.
        assert row["peak_rss_mib"] > 50
        assert row["cpu_seconds"] >= 0
        assert "reused" not in row
    # The models are loaded by then: training holds at least what extraction did.
    assert stages["train"]["peak_rss_mib"] >= stages["extract"]["peak_rss_mib"]


def test_a_rerun_keeps_the_figures_of_the_stages_it_reused(tiny_run: Path, tiny_model_dir: Path) -> None:
    first = json.loads((tiny_run / "metrics.json").read_text())["stages"]
    cfg_dict = json.loads((tiny_run / "config.json").read_text())
    # A new evaluation setting reruns evaluate and save only.
    cfg = Config(
        docs=Path(cfg_dict["docs"]),
        out=tiny_run,
        base_model=str(tiny_model_dir),
        max_steps=2,
        batch_size=4,
        chunk_tokens=64,
        chunk_overlap=8,
        device="cpu",
        val_fraction=0,
        ks=(1, 5, 10),
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HOME", str(tiny_run.parent / "hf_home"))
        result = Pipeline(cfg).run()
    assert set(result.timings) == {"evaluate", "save"}
    stages = json.loads((tiny_run / "metrics.json").read_text())["stages"]
    assert list(stages) == STAGES
    for name in STAGES[: STAGES.index("evaluate")]:
        assert stages[name] == first[name] | {"reused": True}
    assert "reused" not in stages["evaluate"] and "reused" not in stages["save"]


def test_the_card_widget_reads_only_the_chunks_it_may_show(monkeypatch: pytest.MonkeyPatch) -> None:
    # The save stage's key is made with the widget on every run: checking every chunk for garbled text
    # cost 20 ms a chunk (15 s of a 764-chunk run's save stage, bench/stage_profile.py), reruns included.
    from ragtune import garbled
    from ragtune.card import card_widget
    from ragtune.records import Chunk, Pair

    sentences = [
        "Incident response teams should document every event.",
        "Organizations should map their risks before deployment.",
        "Privacy controls limit the personal information a system collects.",
        "Testing should measure the accuracy of the system.",
    ]
    chunks = [
        Chunk(f"c{i}", "f.pdf", (1,), f"{sentences[i % 4]} The review number {i} covers data and models.", 20)
        for i in range(600)
    ]
    asked: list[str] = []
    real = garbled.reads_clean

    def counted(text: str) -> bool:
        asked.append(text)
        return real(text)

    monkeypatch.setattr(garbled, "reads_clean", counted)
    widget = card_widget(chunks, [Pair("How is the review number 7 scoped?", "c7", "offline")])
    assert widget is not None and len(set(widget["sentences"])) == 3
    assert len(asked) <= 20
